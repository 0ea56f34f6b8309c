"""Building blocks of bench/harness.py: processes stopped by pid whatever happens, free
loopback ports, /proc readers (CPU ticks, RSS), the wrk runner and its parser, a
keep-alive scrape client, and the config files of every contender.

Single-threaded except the scrape loop, which runs beside wrk on its own thread.
Stdlib only; run with /usr/bin/python3.
"""
import ctypes
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If the harness itself is SIGKILLed, the kernel still stops what it started.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # Out of the terminal's process group: Ctrl-C reaches run.sh and the harness, which
    # stop each process by pid in order (nginx's master before its worker is orphaned).
    os.setpgrp()


class Procs:
    """Every process the harness starts, stopped by pid (never by name) in stop_all()."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.live = {}  # name -> Popen

    def start(self, name, argv, env=None):
        if name in self.live:
            raise RuntimeError(f"{name} already running")
        log = open(os.path.join(self.logdir, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent, env=env)
        log.close()
        self.live[name] = p
        return p

    def pid(self, name):
        return self.live[name].pid

    def alive(self, name):
        return name in self.live and self.live[name].poll() is None

    def returncode(self, name):
        return self.live[name].poll() if name in self.live else None

    def stop(self, name, timeout=5.0):
        p = self.live.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        return p.returncode

    def stop_all(self):
        for name in list(self.live)[::-1]:
            self.stop(name)

    def log_tail(self, name, lines=20):
        try:
            with open(os.path.join(self.logdir, f"{name}.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""


class Ports:
    """Distinct free loopback ports for listeners, chosen below the kernel's ephemeral
    range: a port the kernel hands out with bind(0) can be taken minutes later by an
    outgoing connection (wrk -c1000 opens a thousand), and the listener that was to use it
    then fails with "Address already in use"."""

    def __init__(self):
        self.used = set()
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                low = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            low = 32768
        self.candidates = list(range(max(1024, low - 12000), low))
        random.shuffle(self.candidates)

    def get(self):
        while self.candidates:
            port = self.candidates.pop()
            if port in self.used:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            self.used.add(port)
            return port
        raise RuntimeError("no free loopback port below the ephemeral range")


# ---- /proc ----------------------------------------------------------------------------

def _stat_fields(pid):
    """/proc/PID/stat after the command name (which may hold spaces), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def children(pid):
    """Direct children of pid, found by scanning /proc (works without CONFIG_PROC_CHILDREN)."""
    out = []
    for entry in os.listdir("/proc"):
        fields = _stat_fields(entry) if entry.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def process_tree(pid):
    """pid and its children: nginx is a master plus a worker."""
    return [pid] + children(pid)


def cpu_ticks(pids):
    """utime + stime summed over pids (all threads), in clock ticks."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def main_thread_cpu_ns(pid):
    """Time on CPU of a process's main thread (tid == pid), in ns (schedstat): speedmon's
    main thread serves /metrics, its workers proxy."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def status_kb(pids, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) summed over pids; gone pids count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f
                               if line.startswith(key + ":")), 0)
        except OSError:
            pass
    return total


def reset_peak_rss(pids):
    """Resets VmHWM to the current RSS (clear_refs 5), so a peak belongs to one run.
    Returns False where the kernel does not allow it; the peak is then since start."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


# ---- HTTP -------------------------------------------------------------------------------

def wait_http(port, path, timeout=15.0, want=200):
    """Polls GET path until it answers `want`; returns the last status or error."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            last = r.status
            if r.status == want:
                return True, last
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    return False, last


class Scraper:
    """GET /metrics over one keep-alive connection (as Prometheus does), timed from the
    request's first byte to the body's last."""

    def __init__(self, port, path="/metrics", gzip=False):
        self.port, self.path = port, path
        self.headers = {"Accept-Encoding": "gzip"} if gzip else {}
        self.conn = None

    def scrape(self):
        """Returns (seconds, body bytes, status)."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.connect()
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", self.path, headers=self.headers)
                r = self.conn.getresponse()
                body = r.read()
                t1 = time.perf_counter()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return t1 - t0, len(body), r.status
            except (OSError, http.client.HTTPException):
                self.close()  # the server closed an idle keep-alive: reconnect once
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class ScrapeLoop(threading.Thread):
    """Scrapes every `interval` seconds until stopped, cycling through /metrics plain,
    /metrics gzip and /healthz: the last is the floor, what this client and the machine's
    scheduling cost on a response that costs the server nothing."""

    def __init__(self, port, interval):
        super().__init__(daemon=True)
        self.scrapers = {"plain": Scraper(port), "gzip": Scraper(port, gzip=True),
                         "healthz": Scraper(port, path="/healthz")}
        self.interval = interval
        self.results = {k: [] for k in self.scrapers}  # (seconds, bytes, status)
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            next_at = time.monotonic()
            while not self.halt.is_set():
                for name, s in self.scrapers.items():
                    self.results[name].append(s.scrape())
                    next_at += self.interval
                    if self.halt.wait(max(0.0, next_at - time.monotonic())):
                        break
        except Exception as e:  # noqa: BLE001 - reported in the table, not raised
            self.error = repr(e)
        finally:
            for s in self.scrapers.values():
                s.close()


# ---- wrk --------------------------------------------------------------------------------

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _micros(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(out):
    """wrk's text -> dict: rps, requests, p50/p99 (us), transfer (bytes/s), non2xx,
    socket errors (connect, read, write, timeout)."""
    r = {"rps": None, "requests": 0, "p50_us": None, "p99_us": None, "transfer_bps": None,
         "non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            r[key] = _micros(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if m:
        r["transfer_bps"] = float(m.group(1)) * _BYTES.get(m.group(2), 1)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["connect"], r["read"], r["write"], r["timeout"] = map(int, m.groups())
    return r


def wrk_command(url, connections, seconds, threads=1):
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", "10s", url]


def run_wrk(url, connections, seconds, threads=1):
    cmd = wrk_command(url, connections, seconds, threads)
    p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent,
                       timeout=seconds + 60)
    r = parse_wrk(p.stdout)
    r["cmd"] = " ".join(cmd)
    r["raw"] = p.stdout + p.stderr
    r["wrk_rc"] = p.returncode
    return r


def errors_of(r):
    return r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"] + (
        1 if r["rps"] is None or r["wrk_rc"] != 0 else 0)


# ---- contenders' config files -------------------------------------------------------------

def nginx_common(prefix, name):
    """Paths that keep a packaged nginx inside our temp prefix, as any user."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1;\ndaemon off;\npid {prefix}/{name}.pid;\n"
            f"error_log {prefix}/logs/{name}-error.log warn;\n"
            "events { worker_connections 16384; }\n")


def nginx_temp_paths(prefix, name):
    return "".join(f"  {k}_temp_path {prefix}/tmp/{name}-{k};\n"
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def nginx_upstream_conf(prefix, port):
    return (nginx_common(prefix, "upstream") + "http {\n"
            "  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
            "  keepalive_timeout 300s;\n  keepalive_requests 100000000;\n"
            + nginx_temp_paths(prefix, "upstream") +
            "  types { application/json json; }\n  default_type application/octet-stream;\n"
            f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    root {prefix}/www;\n"
            # Any other path (the route-priming requests) gets the 1 KiB JSON.
            "    location / { try_files $uri /1k.json; }\n"
            "    location = /status { default_type application/json; "
            "return 200 '{\"status\":\"ok\"}'; }\n  }\n}\n")


def nginx_proxy_conf(prefix, port, upstream_port):
    return (nginx_common(prefix, "nginx-proxy") + "http {\n"
            "  access_log off;\n"
            "  keepalive_timeout 300s;\n  keepalive_requests 100000000;\n"
            + nginx_temp_paths(prefix, "nginx-proxy") +
            f"  upstream up {{\n    server 127.0.0.1:{upstream_port};\n    keepalive 128;\n"
            "    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n  }\n"
            f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
            "    location / {\n      proxy_pass http://up;\n      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n    }\n  }\n}\n")


def haproxy_conf(port, upstream_port):
    return ("global\n  nbthread 1\n  maxconn 8000\n\n"
            "defaults\n  mode http\n  http-reuse always\n  option http-keep-alive\n"
            "  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
            "  timeout http-keep-alive 60s\n  maxconn 8000\n\n"
            f"frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\n"
            f"backend be\n  server s1 127.0.0.1:{upstream_port} maxconn 4000\n")


def speedmon_default_conf(default_text, admin_port, listener_ports, upstream_port,
                          record_requests):
    """The embedded default config (4 upstreams x 11 routes, health checks), pointed at the
    bench's upstream, with one worker and nothing written to disk. Every substitution must
    hit: if the default config changes shape, this fails loudly instead of benchmarking
    something else."""
    text = default_text

    def sub(pattern, repl, count_expected):
        nonlocal text
        text, n = re.subn(pattern, repl, text, flags=re.M)
        if n != count_expected:
            raise RuntimeError(f"default config: expected {count_expected} x {pattern!r}, "
                               f"found {n}")

    sub(r'^address = "127\.0\.0\.1:8000"', f'address = "127.0.0.1:{admin_port}"', 1)
    for i, port in enumerate(listener_ports):
        sub(rf'^address = "127\.0\.0\.1:1808{i + 1}"', f'address = "127.0.0.1:{port}"', 1)
    sub(r'^endpoints = \["127\.0\.0\.1:808\d"\]', f'endpoints = ["127.0.0.1:{upstream_port}"]',
        len(listener_ports))
    sub(r"^workers = 0\b", "workers = 1", 1)
    sub(r"^record_requests = true\b", f"record_requests = {str(record_requests).lower()}", 1)
    sub(r'^drain_timeout = "15s"', 'drain_timeout = "1s"', 1)
    sub(r'^store_path = "speedmon\.db"', 'store_path = ""', 1)
    sub(r"^default_rules = true\b", "default_rules = false", 1)
    return text


def speedmon_wide_conf(admin_port, listener_ports, upstream_port, routes):
    """One upstream per listener port (each with a health check, as the default has) x
    `routes` routes; the first listener carries the load, the others prime their cells."""
    out = [f'[admin]\naddress = "127.0.0.1:{admin_port}"\n',
           '[proxy]\nworkers = 1\ndrain_timeout = "1s"\n']
    for u, port in enumerate(listener_ports, start=1):
        out.append(f'[[listeners]]\nname = "l{u:03d}"\naddress = "127.0.0.1:{port}"\n'
                   f'upstream = "emulator-{u:03d}"\n')
        out.append(f'[[upstreams]]\nname = "emulator-{u:03d}"\n'
                   f'endpoints = ["127.0.0.1:{upstream_port}"]\n'
                   '  [upstreams.health_check]\n  path = "/status"\n  interval = "5s"\n')
    for r in range(1, routes + 1):
        out.append(f'[[routes]]\nname = "route_{r}"\nprefix = "/r{r}"\n')
    out.append('[speedrun]\nstore_path = ""\n\n[alerting]\ndefault_rules = false\n')
    return "\n".join(out)


def route_prefixes(config_text):
    return re.findall(r'^prefix = "([^"]*)"', config_text, flags=re.M)


def prime_cells(listener_ports, prefixes):
    """One GET per (upstream, route, and "other") so that every cell of the request
    families has a sample: the scrape then has the size of a busy day, not of a bench that
    only ever hit one route."""
    bad = 0
    for port in listener_ports:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for prefix in prefixes + ["/unrouted"]:
            c.request("GET", prefix.rstrip("/") + "/prime")
            r = c.getresponse()
            r.read()
            bad += r.status != 200
        c.close()
    return bad
