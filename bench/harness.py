#!/usr/bin/python3
"""The side-by-side benchmark behind bench/run.sh.

Starts one nginx as the fast upstream, then speedmon (recording on and off), nginx as a
keep-alive reverse proxy and HAProxy, one worker each, and drives every one with the same
wrk settings in alternating rounds (the order rotates each round, so drift hits all
alike). Then: a 100 MB response to a slow reader, /metrics scrapes under load (default
config and 100 upstreams x 8 routes), node_exporter's scrape beside speedmon's, idle RSS,
and the Google Benchmark micro-benchmarks. Prints tables; never asserts a timing.

Environment: BENCH_ROUNDS (3), BENCH_DURATION (5, seconds per 1 KiB run),
BENCH_SHORT_DURATION (3, the other scenarios), BENCH_SCRAPES (200, idle comparison),
BENCH_SCRAPE_INTERVAL (0.05 s, under load), BENCH_SLOW_SECONDS (10),
BENCH_LONG=1 (5 rounds, 15 s / 10 s runs, 30 s slow reader), BENCH_KEEP_TMP=1,
SPEEDMON_BIN, MICROBENCH_BIN, BENCH_STAGES (a comma list of rounds, slow, scrapes, idle,
micro: only those run), SPEEDMON_BEFORE_BIN (a build of an earlier commit: it joins
the throughput and latency rounds as "speedmon-before", recording on, so a change is
measured before and after in one run).
"""
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG = os.environ.get("BENCH_LONG") == "1"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5 if LONG else 3))
DURATION = int(os.environ.get("BENCH_DURATION", 15 if LONG else 5))
SHORT = int(os.environ.get("BENCH_SHORT_DURATION", 10 if LONG else 3))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", 200))
SLOW_SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", 30 if LONG else 10))
SLOW_RATE = 1_000_000
SCRAPE_INTERVAL = float(os.environ.get("BENCH_SCRAPE_INTERVAL", 0.05))
SPEEDMON = os.environ.get("SPEEDMON_BIN", os.path.join(ROOT, "build/release/app/speedmon"))
MICROBENCH = os.environ.get("MICROBENCH_BIN",
                            os.path.join(ROOT, "build/release/bench/speedmon_microbench"))
CONNS = 64

BEFORE = os.environ.get("SPEEDMON_BEFORE_BIN", "")
# BENCH_STAGES=idle,scrapes runs only those stages (rounds, slow, scrapes, idle, micro).
STAGES = [x for x in os.environ.get("BENCH_STAGES", "").split(",") if x]
TARGETS = (["direct", "speedmon"] + (["speedmon-before"] if BEFORE else []) +
           ["speedmon-norec", "nginx", "haproxy"])
PROXIES = TARGETS[1:]
SPEEDMONS = ("speedmon", "speedmon-norec") + (("speedmon-before",) if BEFORE else ())


def binary(t):
    return BEFORE if t == "speedmon-before" else SPEEDMON
# (key, title, path, connections, seconds). c1000 runs last in a round: its pools and
# buffers would otherwise sit in the peak RSS of the runs after it.
SCENARIOS = [
    ("1k", f"1 KiB JSON, wrk -t1 -c{CONNS} -d{DURATION}s", "/1k.json", CONNS, DURATION),
    ("20k", f"20 KiB, wrk -t1 -c{CONNS} -d{SHORT}s", "/20k.bin", CONNS, SHORT),
    ("1m", f"1 MiB, wrk -t1 -c{CONNS} -d{SHORT}s", "/1m.bin", CONNS, SHORT),
    ("c1", f"1 KiB at one connection, wrk -t1 -c1 -d{SHORT}s", "/1k.json", 1, SHORT),
    ("c1000", f"1 KiB, 1000 keep-alive connections, wrk -t1 -c1000 -d{SHORT}s", "/1k.json",
     1000, SHORT),
]


class Bench:
    def __init__(self, tmp):
        self.tmp = tmp
        for d in ("logs", "tmp", "www", "conf"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        self.procs = bl.Procs(os.path.join(tmp, "logs"))
        self.ports = bl.Ports()
        self.port = {}  # target -> port
        self.admin = {}  # speedmon target -> admin port
        self.conf = {}  # target -> config path
        self.listeners = {}  # speedmon config -> listener ports, one per upstream
        self.routes = {}  # speedmon config -> route prefixes
        self.bugs = []  # speedmon crashes, hangs, errors: (what, config, command, detail)
        self.notes = []
        self.hwm_reset_ok = True
        if not os.access(SPEEDMON, os.X_OK):
            raise SystemExit(f"no speedmon binary at {SPEEDMON}: build it (scripts/build.sh release)")
        self.default_conf = subprocess.run([SPEEDMON, "--print-default-config"], check=True,
                                           capture_output=True, text=True).stdout

    # ---- files and processes ------------------------------------------------------------

    def write(self, rel, text):
        path = os.path.join(self.tmp, rel)
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_www(self):
        www = os.path.join(self.tmp, "www")
        body = '{"status":"ok","screen":"'
        body += "x" * (1024 - len(body) - 2) + '"}'
        assert len(body) == 1024
        self.write("www/1k.json", body)
        for name, size in (("20k.bin", 20 * 1024), ("1m.bin", 1024 * 1024),
                           ("100m.bin", 100 * 1000 * 1000)):
            with open(os.path.join(www, name), "wb") as f:
                block = bytes(range(256)) * 4096  # 1 MiB, not sparse: the page cache serves it
                left = size
                while left:
                    n = min(left, len(block))
                    f.write(block[:n])
                    left -= n

    def start_upstream(self):
        self.port["direct"] = self.ports.get()
        conf = self.write("conf/upstream.conf", bl.nginx_upstream_conf(self.tmp,
                                                                       self.port["direct"]))
        self.procs.start("upstream", ["nginx", "-e", f"{self.tmp}/logs/upstream-error.log",
                                      "-p", self.tmp, "-c", conf])
        self.must_answer("upstream", self.port["direct"], "/1k.json")

    def prepare_configs(self):
        up = self.port["direct"]
        for t in PROXIES:
            self.port[t] = self.ports.get()
        for t in SPEEDMONS:
            self.admin[t] = self.ports.get()
            self.listeners[t] = [self.port[t]] + [self.ports.get() for _ in range(3)]
            # Each build from its own default config: an earlier one refuses newer keys.
            default = self.default_conf if binary(t) == SPEEDMON else subprocess.run(
                [binary(t), "--print-default-config"], check=True, capture_output=True,
                text=True).stdout
            self.conf[t] = self.write(f"conf/{t}.toml", bl.speedmon_default_conf(
                default, self.admin[t], self.listeners[t], up, t != "speedmon-norec"))
            self.routes[t] = bl.route_prefixes(default)
        self.conf["nginx"] = self.write("conf/nginx-proxy.conf",
                                        bl.nginx_proxy_conf(self.tmp, self.port["nginx"], up))
        self.conf["haproxy"] = self.write("conf/haproxy.cfg",
                                          bl.haproxy_conf(self.port["haproxy"], up))
        self.admin["wide"] = self.ports.get()
        self.listeners["wide"] = [self.ports.get() for _ in range(100)]
        self.port["wide"] = self.listeners["wide"][0]
        text = bl.speedmon_wide_conf(self.admin["wide"], self.listeners["wide"], up, 8)
        self.conf["wide"] = self.write("conf/speedmon-100x8.toml", text)
        self.routes["wide"] = bl.route_prefixes(text)
        for t in SPEEDMONS + ("wide",):
            p = subprocess.run([binary(t), "--check-config", "--config", self.conf[t]],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"{t} config rejected:\n{p.stdout}{p.stderr}")

    def argv(self, t):
        if t in SPEEDMONS or t == "wide":
            return [binary(t), "--config", self.conf[t]]
        if t == "nginx":
            return ["nginx", "-e", f"{self.tmp}/logs/nginx-proxy-error.log", "-p", self.tmp,
                    "-c", self.conf[t]]
        if t == "haproxy":
            return ["haproxy", "-db", "-f", self.conf[t]]
        raise KeyError(t)

    def must_answer(self, name, port, path):
        ok, last = bl.wait_http(port, path)
        if not ok:
            raise RuntimeError(f"{name} on :{port} never answered {path} with 200 "
                               f"(last: {last})\n{self.procs.log_tail(name)}")

    def start(self, t):
        self.procs.start(t, self.argv(t))
        self.must_answer(t, self.port[t], "/1k.json")

    def pids(self, t):
        if t == "direct":
            return []
        return bl.process_tree(self.procs.pid(t)) if t == "nginx" else [self.procs.pid(t)]

    def stop(self, t):
        rc = self.procs.stop(t)
        if t in SPEEDMONS + ("wide",) and rc not in (0, None):
            self.bug(f"{t} exited with {rc} on SIGTERM", t, "kill -TERM <pid>",
                     self.procs.log_tail(t))

    def prime(self, t):
        bad = bl.prime_cells(self.listeners[t], self.routes[t])
        if bad:
            self.bug(f"{t}: {bad} priming requests did not answer 200", t,
                     "GET <route prefix>/prime on every listener", self.procs.log_tail(t))

    def bug(self, what, t, command, detail):
        self.bugs.append((what, self.conf.get(t, "-"), command, detail))

    # ---- one wrk run ---------------------------------------------------------------------

    def measure(self, t, path, conns, seconds):
        pids = self.pids(t)
        self.hwm_reset_ok &= bl.reset_peak_rss(pids)
        ticks0 = bl.cpu_ticks(pids)
        r = bl.run_wrk(f"http://127.0.0.1:{self.port[t]}{path}", conns, seconds)
        ticks = bl.cpu_ticks(pids) - ticks0
        r["cpu_s"] = ticks / bl.CLK_TCK if pids else None
        r["hwm_kb"] = bl.status_kb(pids, "VmHWM") if pids else None
        r["errors"] = bl.errors_of(r)
        if t != "direct" and not self.procs.alive(t):
            r["errors"] += 1
            self.bug(f"{t} died during `{r['cmd']}` (exit {self.procs.returncode(t)})", t,
                     r["cmd"], self.procs.log_tail(t))
            self.procs.stop(t)
            self.start(t)
        elif t in SPEEDMONS + ("wide",) and r["errors"]:
            self.bug(f"{t}: errors under `{r['cmd']}`", t, r["cmd"], r["raw"])
        return r

    # ---- the rounds ----------------------------------------------------------------------

    def rounds(self):
        results = {s[0]: {t: [] for t in TARGETS} for s in SCENARIOS}
        for rnd in range(ROUNDS):
            order = TARGETS[rnd % len(TARGETS):] + TARGETS[:rnd % len(TARGETS)]
            print(f"# round {rnd + 1}/{ROUNDS}: order {', '.join(order)}", flush=True)
            for t in PROXIES:
                self.start(t)
            for t in order:  # connections to the upstream, first page faults
                bl.run_wrk(f"http://127.0.0.1:{self.port[t]}/1k.json", CONNS, 1)
            for key, _, path, conns, seconds in SCENARIOS:
                for t in order:
                    r = self.measure(t, path, conns, seconds)
                    results[key][t].append(r)
                    print(f"#   {key:5s} {t:15s} {r['rps'] or 0:10.0f} req/s"
                          f"  errors {r['errors']}", flush=True)
            for t in PROXIES:
                self.stop(t)
        return results

    def slow_reader(self):
        out = {}
        for t in ("speedmon", "nginx", "haproxy"):
            self.start(t)
            time.sleep(0.5)
            cmd = ["/usr/bin/python3", os.path.join(ROOT, "bench/slow_reader.py"),
                   "--port", str(self.port[t]), "--path", "/100m.bin", "--rate",
                   str(SLOW_RATE), "--seconds", str(SLOW_SECONDS)]
            for pid in self.pids(t):
                cmd += ["--pid", str(pid)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=SLOW_SECONDS + 60)
            try:
                out[t] = json.loads(p.stdout)
            except ValueError:
                out[t] = {"error": (p.stdout + p.stderr)[-500:]}
            ok = out[t].get("status_line", "").startswith("HTTP/1.1 200")
            if t == "speedmon" and (not ok or out[t].get("ended") != "time"
                                    or not self.procs.alive(t)):
                self.bug("speedmon: slow reader did not get a steady 200 stream", t,
                         " ".join(cmd), json.dumps(out[t]) + "\n" + self.procs.log_tail(t))
            self.stop(t)
        return out

    def scrapes_under_load(self):
        """Per config, with every cell primed: alternate wrk without and with a scrape loop
        (one scrape every SCRAPE_INTERVAL, alternating plain and gzip)."""
        out = {}
        for name, t in (("default (4 upstreams x 11 routes)", "speedmon"),
                        ("100 upstreams x 8 routes", "wide")):
            self.start(t)
            self.prime(t)
            bl.run_wrk(f"http://127.0.0.1:{self.port[t]}/1k.json", CONNS, 1)
            quiet, loaded, scrapes = [], [], {"plain": [], "gzip": [], "healthz": []}
            errors = []
            main_ns = {"quiet": 0, "loaded": 0}
            pid = self.procs.pid(t)
            for _ in range(ROUNDS):
                ns0 = bl.main_thread_cpu_ns(pid)
                quiet.append(self.measure(t, "/1k.json", CONNS, DURATION))
                ns1 = bl.main_thread_cpu_ns(pid)
                loop = bl.ScrapeLoop(self.admin[t], SCRAPE_INTERVAL)
                loop.start()
                loaded.append(self.measure(t, "/1k.json", CONNS, DURATION))
                loop.halt.set()
                loop.join()
                ns2 = bl.main_thread_cpu_ns(pid)
                main_ns["quiet"] += ns1 - ns0
                main_ns["loaded"] += ns2 - ns1
                if loop.error:
                    errors.append(loop.error)
                for k in scrapes:
                    scrapes[k] += loop.results[k]
            bad = [s for k in scrapes for s in scrapes[k] if s[2] != 200]
            if errors or bad:
                self.bug(f"{t}: /metrics failed under load", t,
                         f"curl http://127.0.0.1:{self.admin[t]}/metrics during wrk",
                         f"{errors} non-200: {len(bad)}")
            n = len(scrapes["plain"]) + len(scrapes["gzip"])
            # The main thread's time beyond a quiet run's (health checks, sysprobe), per
            # /metrics scrape; the /healthz scrapes cost next to nothing.
            cpu = (main_ns["loaded"] - main_ns["quiet"]) / n if n else None
            out[name] = {"quiet": quiet, "loaded": loaded, "scrapes": scrapes, "cpu_ns": cpu,
                         "rss_kb": bl.status_kb(self.pids(t), "VmRSS")}
            self.stop(t)
        return out

    def idle_and_node_exporter(self):
        """Idle RSS of speedmon (default config), then speedmon's scrape beside
        prometheus-node-exporter's, alternating, with nothing else running. With
        SPEEDMON_BEFORE_BIN the earlier build runs beside it, measured the same way."""
        out = {"idle_rss_kb": {}, "rss_after_scrapes_kb": {}, "cpu_per_scrape_us": {}}
        mine = [t for t in SPEEDMONS if t != "speedmon-norec"]
        contenders = {}
        for t in mine:
            self.procs.start(t, self.argv(t))
            self.must_answer(t, self.port[t], "/1k.json")
        time.sleep(3)  # first health checks and sysprobe samples
        for t in mine:
            out["idle_rss_kb"][t] = bl.status_kb([self.procs.pid(t)], "VmRSS")
            self.prime(t)
            contenders[t] = bl.Scraper(self.admin[t])
            contenders[f"{t} gzip"] = bl.Scraper(self.admin[t], gzip=True)
            contenders[f"{t} /healthz (floor)"] = bl.Scraper(self.admin[t], path="/healthz")
        # What this client pays to fetch a body of the scrape's size at all: the upstream
        # nginx serving a static file as large as the current build's plain scrape.
        size = len(urllib.request.urlopen(f"http://127.0.0.1:{self.admin['speedmon']}/metrics",
                                          timeout=10).read())
        with open(os.path.join(self.tmp, "www", "scrape-size.txt"), "wb") as f:
            f.write(b"x" * size)
        contenders["nginx static file, the scrape's size (floor)"] = bl.Scraper(
            self.port["direct"], path="/scrape-size.txt")
        ne_port = self.ports.get()
        ne = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
        if ne:
            self.procs.start("node-exporter", [ne, f"--web.listen-address=127.0.0.1:{ne_port}"])
            self.must_answer("node-exporter", ne_port, "/metrics")
            contenders["node_exporter"] = bl.Scraper(ne_port)
            contenders["node_exporter gzip"] = bl.Scraper(ne_port, gzip=True)
        else:
            self.notes.append("prometheus-node-exporter not installed: no comparison")
        times = {k: [] for k in contenders}
        cpu = {t: 0 for t in mine}
        for _ in range(SCRAPES):
            for k, s in contenders.items():
                t = k.split(" ")[0]
                before = bl.main_thread_cpu_ns(self.procs.pid(t)) if k in cpu else 0
                times[k].append(s.scrape())
                if k in cpu:  # plain scrapes only: the main thread's CPU for one scrape
                    cpu[k] += bl.main_thread_cpu_ns(self.procs.pid(t)) - before
        for s in contenders.values():
            s.close()
        out["scrapes"] = times
        for t in mine:
            out["cpu_per_scrape_us"][t] = cpu[t] / SCRAPES / 1000
            out["rss_after_scrapes_kb"][t] = bl.status_kb([self.procs.pid(t)], "VmRSS")
            self.stop(t)
        if ne:
            out["node_exporter_rss_kb"] = bl.status_kb([self.procs.pid("node-exporter")],
                                                       "VmRSS")
            self.procs.stop("node-exporter")
        self.procs.start("wide", self.argv("wide"))
        self.must_answer("wide", self.admin["wide"], "/healthz")
        time.sleep(3)
        out["idle_rss_100x8_kb"] = bl.status_kb([self.procs.pid("wide")], "VmRSS")
        self.stop("wide")
        return out


# ---- tables --------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "-"


def fmt_size(n):
    if n < 1024:
        return f"{n:.0f} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line(r) for r in rows])


def throughput_table(res, with_transfer):
    nginx_rps = med(r["rps"] for r in res["nginx"])
    haproxy_rps = med(r["rps"] for r in res["haproxy"])
    headers = ["target", "req/s median (min–max)", "p50", "p99", "CPU s/10k req",
               "peak RSS", "vs nginx", "vs HAProxy", "errors"]
    if with_transfer:
        headers.insert(2, "MiB/s")
    rows = []
    for t in TARGETS:
        runs = res[t]
        rps = [r["rps"] or 0 for r in runs]
        cpu = [r["cpu_s"] / r["requests"] * 1e4 for r in runs
               if r["cpu_s"] is not None and r["requests"]]
        hwm = med(r["hwm_kb"] for r in runs)
        row = [t, f"{med(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f})",
               fmt_us(med(r["p50_us"] for r in runs)), fmt_us(med(r["p99_us"] for r in runs)),
               f"{med(cpu):.3f}" if cpu else "-",
               f"{hwm / 1024:.1f} MB" if hwm is not None else "-",
               fmt_ratio(med(rps), nginx_rps), fmt_ratio(med(rps), haproxy_rps),
               sum(r["errors"] for r in runs)]
        if with_transfer:
            row.insert(2, f"{med(r['transfer_bps'] for r in runs) / 1024 / 1024:,.0f}")
        rows.append(row)
    return table(headers, rows)


def latency_table(res):
    d50 = med(r["p50_us"] for r in res["direct"])
    d99 = med(r["p99_us"] for r in res["direct"])
    rows = []
    for t in TARGETS:
        p50 = med(r["p50_us"] for r in res[t])
        p99 = med(r["p99_us"] for r in res[t])
        rows.append([t, f"{med(r['rps'] for r in res[t]):,.0f}", fmt_us(p50), fmt_us(p99),
                     "-" if t == "direct" else f"{p50 - d50:+.0f} µs",
                     "-" if t == "direct" else f"{p99 - d99:+.0f} µs",
                     sum(r["errors"] for r in res[t])])
    return table(["target", "req/s", "p50", "p99", "added p50", "added p99", "errors"], rows)


def scrape_row(name, samples):
    secs = [s[0] * 1e6 for s in samples]
    return [name, len(secs), fmt_us(pct(secs, 50)), fmt_us(pct(secs, 99)), fmt_us(max(secs)),
            fmt_size(med(s[1] for s in samples))]


def busiest():
    """Other processes' %CPU over one second (top's second sample), busiest first: what
    else was running when the numbers were taken."""
    out = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-o", "%CPU", "-w", "200"],
                         capture_output=True, text=True).stdout
    rows = out[out.rfind("PID USER"):].splitlines()[1:]
    busy = []
    for row in rows:
        f = row.split()
        if len(f) >= 12 and f[0].isdigit() and int(f[0]) != os.getpid() and float(f[8]) >= 1:
            busy.append(f"{f[11]} {f[8]} %")
    return busy[:6] or ["none above 1 %"]


def print_rounds(results):
    for key, title, *_ in SCENARIOS:
        print(f"\n### {title}\n")
        if key == "c1":
            print(latency_table(results[key]))
        else:
            print(throughput_table(results[key], with_transfer=key in ("20k", "1m")))


def print_slow(slow):
    print(f"\n### 100 MB response to a slow reader ({SLOW_RATE / 1e6:.0f} MB/s for "
          f"{SLOW_SECONDS:.0f} s; RSS sampled every 100 ms)\n")
    rows = []
    for t, r in slow.items():
        if "error" in r:
            rows.append([t, "-", "-", "-", "-", r["error"][:60]])
        else:
            rows.append([t, f"{r['baseline_rss_kb'] / 1024:.1f} MB",
                         f"{r['peak_rss_kb'] / 1024:.1f} MB", f"{r['growth_kb'] / 1024:+.1f} MB",
                         f"{r['bytes_read'] / 1e6:.1f} MB", f"{r['status_line']}, {r['ended']}"])
    print(table(["proxy", "RSS before", "peak RSS", "growth", "read", "response"], rows))


def print_scrapes(scr):
    print(f"\n### /metrics under load (wrk -t1 -c{CONNS} -d{DURATION}s on the proxy, {ROUNDS} "
          f"runs without and {ROUNDS} with scrapes, one every {SCRAPE_INTERVAL * 1000:.0f} ms "
          f"cycling plain, gzip and /healthz; every upstream x route cell primed)\n")
    rows, lrows = [], []
    for name, r in scr.items():
        rows.append(scrape_row(f"{name}, plain", r["scrapes"]["plain"]))
        rows.append(scrape_row(f"{name}, gzip", r["scrapes"]["gzip"]))
        rows.append(scrape_row(f"{name}, /healthz (floor)", r["scrapes"]["healthz"]))
        q, lo = med(x["rps"] for x in r["quiet"]), med(x["rps"] for x in r["loaded"])
        cpu = r["cpu_ns"]
        lrows.append([name, fmt_us(cpu / 1000) if cpu is not None else "-",
                      f"{cpu / 15e9 * 100:.4f} %" if cpu is not None else "-",
                      f"{q:,.0f}", f"{lo:,.0f}", f"{(lo / q - 1) * 100:+.1f} %",
                      fmt_us(med(x["p99_us"] for x in r["quiet"])),
                      fmt_us(med(x["p99_us"] for x in r["loaded"])),
                      f"{r['rss_kb'] / 1024:.1f} MB"])
    print(table(["config", "scrapes", "p50", "p99", "max", "size"], rows))
    print("")
    print(table(["config", "CPU per scrape", "of a core at 1/15 s", "req/s without scrapes",
                 "req/s with", "change", "p99 without", "p99 with", "RSS after"], lrows))


def print_idle(idle):
    print(f"\n### Idle: speedmon's scrape (default config, cells primed) beside "
          f"prometheus-node-exporter's, {SCRAPES} each, interleaved, no load\n")
    print(table(["exporter", "scrapes", "p50", "p99", "max", "size"],
                [scrape_row(k, v) for k, v in idle["scrapes"].items()]))
    print()
    for t, kb in idle["idle_rss_kb"].items():
        print(f"- {t}: idle RSS (default config, 3 s after start) {kb / 1024:.1f} MB; after "
              f"priming and {SCRAPES * 3} requests to the admin port "
              f"{idle['rss_after_scrapes_kb'][t] / 1024:.1f} MB; main-thread CPU per plain "
              f"scrape (schedstat, includes the send) {idle['cpu_per_scrape_us'][t]:.0f} µs")
    print(f"- speedmon, 100 upstreams x 8 routes: idle RSS "
          f"{idle['idle_rss_100x8_kb'] / 1024:.1f} MB")
    if "node_exporter_rss_kb" in idle:
        print(f"- node_exporter RSS after its scrapes: "
              f"{idle['node_exporter_rss_kb'] / 1024:.1f} MB")


def print_micro(micro):
    print("\n### Micro-benchmarks (speedmon_microbench --benchmark_min_time=0.2)\n")
    print("```\n" + micro.rstrip() + "\n```")


def run_micro():
    if not os.path.exists(MICROBENCH):
        raise RuntimeError(f"no {MICROBENCH} (libbenchmark-dev missing at configure time?)")
    p = subprocess.run([MICROBENCH, "--benchmark_min_time=0.2"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{MICROBENCH} exited {p.returncode}: {p.stderr[-300:]}")
    return p.stdout


def header(started, load0, busy, bench):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    commit = os.environ.get("BENCH_COMMIT") or subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
        text=True).stdout.strip()
    dirty = os.environ.get("BENCH_DIRTY", "")
    if dirty:
        commit += f" + uncommitted changes in {dirty.replace(',', ', ')}"
    if os.environ.get("BENCH_SKIP_BUILD") == "1":
        commit += " (BENCH_SKIP_BUILD: the binaries may be older)"
    print("\n## speedmon side-by-side benchmark\n")
    print(f"- date: {started:%Y-%m-%d %H:%M} UTC, {time.time() - started.timestamp():.0f} s; "
          f"built from commit {commit or '?'}")
    print(f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.release()}")
    print(f"- load average at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f}; other "
          f"processes' CPU at start: {', '.join(busy)}; at end: {', '.join(busiest())}")
    print(f"- rounds: {ROUNDS}, order rotating; wrk -t1 --latency --timeout 10s; "
          f"1 worker per proxy; upstream: nginx, 1 worker")
    if not bench.hwm_reset_ok:
        print("- peak RSS could not be reset per run (clear_refs): it is the peak since start")


def main():
    def on_signal(signum, _frame):
        # Once: a second signal (run.sh's TERM after the terminal's INT) must not cut the
        # cleanup in the finally block short.
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="speedmon-bench.")
    bench = None
    done = []  # (printer, data) of the stages that finished
    failed = []
    try:
        busy = busiest()
        bench = Bench(tmp)
        bench.make_www()
        bench.start_upstream()
        bench.prepare_configs()
        # A stage that fails (a port taken, a tool missing) is reported; the others still
        # run and print, so a 25-minute run is not lost to its last step.
        stages = (("rounds", "rounds", bench.rounds, print_rounds),
                  ("slow", "slow reader", bench.slow_reader, print_slow),
                  ("scrapes", "scrapes under load", bench.scrapes_under_load, print_scrapes),
                  ("idle", "idle and node_exporter", bench.idle_and_node_exporter, print_idle),
                  ("micro", "micro-benchmarks", run_micro, print_micro))
        for key, name, run, printer in stages:
            if STAGES and key not in STAGES:
                continue
            try:
                data = run()
            except Exception as e:  # noqa: BLE001 - reported below, the run goes on
                failed.append(f"stage {name} failed: {type(e).__name__}: {e}")
                for proc in [p for p in bench.procs.live if p != "upstream"]:
                    bench.procs.stop(proc)
                continue
            if data:
                done.append((printer, data))
    finally:
        if bench is not None:
            bench.procs.stop_all()
        if bench is not None and bench.bugs:
            keep = tempfile.mkdtemp(prefix="speedmon-bench-failure.")
            shutil.copytree(os.path.join(tmp, "conf"), os.path.join(keep, "conf"))
            shutil.copytree(os.path.join(tmp, "logs"), os.path.join(keep, "logs"))
            bench.notes.append(f"configs and logs of the failures kept in {keep}")
            bench.bugs = [(w, c.replace(tmp, keep), cmd, d) for w, c, cmd, d in bench.bugs]
        if os.environ.get("BENCH_KEEP_TMP") == "1":
            print(f"# temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    header(started, load0, busy, bench)
    for printer, data in done:
        printer(data)
    for n in bench.notes + failed:
        print(f"- note: {n}")
    if bench.bugs:
        print("\n### SPEEDMON FAILURES (bugs: reproduce with the config and command)\n")
        for what, conf, cmd, detail in bench.bugs:
            print(f"- {what}\n  config: {conf}\n  command: {cmd}\n  detail: "
                  + detail.strip().replace("\n", "\n    ")[:2000])
        return 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
