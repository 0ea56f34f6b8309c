#!/usr/bin/python3
"""The soak test behind bench/soak.sh: SECONDS of mixed load against one speedmon, then
exact checks. Usage: soak.py SECONDS [release|asan] ($SPEEDMON_BIN is the binary).

Starts four fake emulators (tools/fake_emulator.py) on loopback ports and speedmon in
front of them (4 listeners / upstreams, health checks every second, a SQLite store in a
temp dir, the admin API, [alerting] defaults plus one rule, access log off). Then, at
once, until SECONDS have passed:

  agents     one thread per listener, like the agent: one keep-alive connection, one
             request at a time (POST /action mostly, GET /status, ...), a new connection
             now and then. A small share of requests asks the fake, in its query string
             (?misbehave=...), to answer 5xx, reset before answering, reset mid-body,
             stall past request_timeout, or be slow: each such request knows what it
             must get back.
  windows    every FAULT_EVERY s one upstream gets a fault window, in turn: its fake is
             killed (SIGKILL or SIGTERM) and restarted on the same port 3-5 s later;
             or "sick" (its /status answers 500, so health checks fail); or "slow"
             (every answer delayed 2.5 s, past request_timeout and the health timeout).
  admin      GET /metrics every second (parsed strictly), the status page's polls every
             2 s, experiments (single JSON and NDJSON batches of 100) and patterns
             posted with unique ids, patterns reused.
  SIGHUP     every 30 s, the config rewritten with a trivial change (the threshold of
             the soak's own alert rule); each reload must be counted and applied.
  sampling   speedmon's VmRSS and open fds every 5 s.

Then it checks that every answer the agents got is explained by what was injected,
pokemon_speedrun_http_requests_total equals the agents' own counts per upstream and
status, the experiment and pattern counters and the store hold exactly what was
acknowledged, reloads are counted exactly, internal errors are 0, stderr is clean, RSS
and fds are flat (median of the last third against the middle third), and speedmon
exits 0 on SIGTERM within drain_timeout. Exit 0 when all hold, 1 otherwise, 2 when the
soak could not run.

Environment: SOAK_AGENT_RPS (40 per agent), SOAK_SEED, SOAK_KEEP_TMP=1, SOAK_COMMIT.
"""
import collections
import copy
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import traceback

import requests

sys.dont_write_bytecode = True  # keep bench/ and tests/ free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import benchlib as bl  # noqa: E402
import harness  # noqa: E402
from harness import RawHttp, TruncatedResponse, prom  # noqa: E402

AGENT_RPS = float(os.environ.get("SOAK_AGENT_RPS", 40))
SEED = int(os.environ.get("SOAK_SEED", int(time.time())))
KEEP_TMP = os.environ.get("SOAK_KEEP_TMP") == "1"

SAMPLE_EVERY = 5.0
SCRAPE_EVERY = 1.0
STATUS_PAGE_EVERY = 2.0
HUP_EVERY = 30.0
FAULT_EVERY = 20.0
FIRST_FAULT = 10.0
RECONNECT_P = 1 / 200      # an agent opens a new connection this often
CLIENT_TIMEOUT = 30.0      # far above request_timeout: an agent never gives up first
REQUEST_TIMEOUT_S = 2      # [[upstreams]] request_timeout: a stall past it is a 504
DRAIN_TIMEOUT_S = 5
HEALTH_INTERVAL_S = 1
# After a fault window ends, its upstream may still answer 503 until the next health
# check passes (interval 1 s, healthy_threshold 1) and a delayed answer may still be on
# its way (slow: 2.5 s): what happens up to GRACE s after the end belongs to the window.
GRACE = 6.0
RSS_GROWTH_MAX_PCT = 10.0
FD_GROWTH_MAX = 5

UPSTREAMS = [f"emulator-{i}" for i in range(1, 5)]
ROUTES = [("initialize", "/initialize"), ("action", "/action"), ("status", "/status"),
          ("stop", "/stop"), ("evaluate", "/evaluate"), ("save_state", "/save_state"),
          ("input", "/input"), ("state", "/state"), ("reset", "/reset"),
          ("health", "/health"), ("checkpoint_load", "/checkpoint/load")]
REQ = "pokemon_speedrun_http_requests_total"
RELOADS = "pokemon_speedrun_config_reloads_total"
SOAK_RULE = "soak_internal_errors"

# Outcomes of one agent request (what the agent saw):
#   ("ok", status)               a complete 2xx answer
#   ("fake", status)             a complete non-2xx answer from the fake (passed through)
#   ("speedmon", status, error)  speedmon's own JSON error answer
#   ("truncated", status)        the head arrived, then the connection ended mid-body
#   ("corrupt", status)          a complete 2xx whose body is not what the fake sends
#   ("noanswer", what)           no response head at all (connect/send/read failed)
SM_RESET = ("speedmon", 502, "upstream_reset")
SM_TIMEOUT = ("speedmon", 504, "upstream_timeout")
SM_NO_HEALTHY = ("speedmon", 503, "no_healthy_endpoint")
SM_CONNECT = ("speedmon", 503, "connect_failed")

# Per-request faults: (name, query string the fake obeys, probability, allowed outcomes).
REQUEST_FAULTS = [
    ("5xx", "misbehave=status&code=500", 0.004, {("fake", 500)}),
    ("5xx-503", "misbehave=status&code=503", 0.002, {("fake", 503)}),
    ("reset", "misbehave=reset", 0.003, {SM_RESET}),
    ("reset-mid-body", "misbehave=reset-mid-body&ms=20", 0.003, {("truncated", 200)}),
    ("stall", "misbehave=hang", 0.0015, {SM_TIMEOUT}),
    ("slow", "misbehave=slow&ms=300", 0.005, {("ok", 200)}),
]
FAULT_BY_NAME = {f[0]: f for f in REQUEST_FAULTS}

# Fault windows, in turn: what an upstream may answer during one (and GRACE after).
WINDOW_KINDS = ["kill", "sick", "slow"]
WINDOW_ALLOWED = {
    # in flight when the fake died: reset or cut; afterwards connect refused, then no
    # healthy endpoint once three health checks failed.
    "kill": {SM_RESET, ("speedmon", 502, "bad_upstream_response"), SM_CONNECT,
             SM_NO_HEALTHY, ("truncated", 200)},
    # /status (and the health check) answer 500: the agent's GET /status sees the fake's
    # 500, then everything gets 503 once the endpoint is unhealthy.
    "sick": {("fake", 500), SM_NO_HEALTHY},
    # every answer 2.5 s late: 504 past request_timeout, then 503 once unhealthy.
    "slow": {SM_TIMEOUT, SM_NO_HEALTHY},
}
SICK_STATUS = 500
SLOW_LATENCY_MS = 2500

STRATEGIES = ["genetic_algorithm", "llm_guided", "reinforcement", "random_search"]
PATTERN_TYPES = ["movement", "battle", "menu_navigation", "item_usage", "dialogue",
                 "optimization"]


def label(outcome):
    kind = outcome[0]
    if kind == "speedmon":
        return f"{outcome[1]} {outcome[2]}"
    if kind == "fake":
        return f"{outcome[1]} from the fake"
    if kind == "truncated":
        return f"cut mid-body ({outcome[1]} head)"
    if kind == "noanswer":
        return f"no answer ({outcome[1]})"
    return f"{kind} {outcome[1]}"


def status_of(outcome):
    """The status speedmon counts for this exchange (None: no head reached the agent)."""
    return None if outcome[0] == "noanswer" else outcome[1]


# ---- agents ------------------------------------------------------------------------------

class Agent(threading.Thread):
    """One agent on one listener: keep-alive, one request at a time, paced."""

    def __init__(self, soak, index):
        super().__init__(daemon=True, name=f"agent-{index}")
        self.soak = soak
        self.index = index
        self.port = soak.sm.listener_port(UPSTREAMS[index])
        self.rng = random.Random(SEED * 100 + index)
        self.events = []  # (t0, t1, upstream index, fault name or None, outcome)
        self.connections = 0
        self.error = None

    def pick_request(self):
        r = self.rng.random()
        if r < 0.85:
            action = self.rng.choice(["a", "b", "up", "down", "left", "right", "start"])
            return "POST", "/action", json.dumps({"action": action}).encode()
        if r < 0.95:
            return "GET", "/status", b""
        if r < 0.97:
            return "GET", "/evaluate", b""
        if r < 0.98:
            return "POST", "/save_state", b"{}"
        if r < 0.99:
            return "POST", "/initialize", b"{}"
        return "GET", "/state", b""

    def pick_fault(self):
        r = self.rng.random()
        for f in REQUEST_FAULTS:
            if r < f[2]:
                return f
            r -= f[2]
        return None

    def run(self):
        try:
            self.loop()
        except Exception:  # noqa: BLE001 - a harness bug, reported as such
            self.error = traceback.format_exc()

    def loop(self):
        conn = None
        interval = 1.0 / AGENT_RPS
        next_at = time.monotonic()
        stop = self.soak.stop_agents
        while not stop.is_set():
            if conn is None:
                try:
                    conn = RawHttp(self.port, timeout=CLIENT_TIMEOUT)
                    self.connections += 1
                except OSError as e:
                    t = time.monotonic()
                    self.events.append((t, t, self.index, None,
                                        ("noanswer", f"connect: {type(e).__name__}")))
                    stop.wait(0.5)
                    continue
            method, path, body = self.pick_request()
            fault = self.pick_fault()
            target = path + ("?" + fault[1] if fault else "")
            headers = [("Content-Type", "application/json")] if body else []
            close = False
            t0 = time.monotonic()
            try:
                resp = conn.request(method, target, headers, body)
                outcome = classify(resp, path)
                close = "close" in (resp.header("connection") or "").lower()
            except TruncatedResponse as e:
                if e.response is not None:
                    outcome = ("truncated", e.response.status)
                else:
                    outcome = ("noanswer", str(e)[:60])
                close = True
            except (OSError, ValueError) as e:
                outcome = ("noanswer", f"{type(e).__name__}: {str(e)[:60]}")
                close = True
            t1 = time.monotonic()
            self.events.append((t0, t1, self.index, fault[0] if fault else None, outcome))
            if close or self.rng.random() < RECONNECT_P:
                conn.close()
                conn = None
            next_at += interval
            now = time.monotonic()
            if next_at < now - 1.0:
                next_at = now  # fell behind (a stall): no burst to catch up
            stop.wait(max(0.0, next_at - now))
        if conn is not None:
            conn.close()


def classify(resp, path):
    if 200 <= resp.status < 300:
        if path in ("/action", "/initialize", "/state") and not (
                resp.body.startswith(b'{"step_number":') and resp.body.endswith(b"}")):
            return ("corrupt", resp.status)
        return ("ok", resp.status)
    try:
        doc = json.loads(resp.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and set(doc) == {"error", "status", "upstream", "request_id"}:
        return ("speedmon", resp.status, doc["error"])
    return ("fake", resp.status)


# ---- admin clients -----------------------------------------------------------------------

class Poller(threading.Thread):
    """Prometheus (GET /metrics every second) and the status page (its polls every 2 s)."""

    STATUS_PAGE = ["/api/v1/upstreams", "/api/v1/requests?limit=20", "/api/v1/system",
                   "/api/v1/sla", "/api/v1/alerts", "/api/v1/processes"]

    def __init__(self, soak):
        super().__init__(daemon=True, name="poller")
        self.soak = soak
        self.scrape_seconds = []
        self.status_polls = 0
        self.errors = []
        self.error = None

    def run(self):
        try:
            self.loop()
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def get(self, session, path):
        try:
            t0 = time.perf_counter()
            r = session.get(self.soak.sm.admin_url + path, timeout=10)
            return r, time.perf_counter() - t0
        except requests.RequestException as e:
            self.errors.append(f"GET {path}: {type(e).__name__}: {e}"[:200])
            return None, None

    def loop(self):
        prom_session, page_session = requests.Session(), requests.Session()
        next_scrape = next_page = time.monotonic()
        stop = self.soak.stop_admin
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_scrape:
                next_scrape += SCRAPE_EVERY
                r, secs = self.get(prom_session, "/metrics")
                if r is not None:
                    if r.status_code != 200:
                        self.errors.append(f"GET /metrics -> {r.status_code}")
                    else:
                        try:
                            prom.parse(r.text)
                            self.scrape_seconds.append(secs)
                        except ValueError as e:
                            self.errors.append(f"GET /metrics unparsable: {e}"[:300])
            if now >= next_page:
                next_page += STATUS_PAGE_EVERY
                for path in self.STATUS_PAGE:
                    r, _ = self.get(page_session, path)
                    if r is None:
                        continue
                    try:
                        ok = r.status_code == 200 and isinstance(r.json(), dict)
                    except ValueError:
                        ok = False
                    if not ok:
                        self.errors.append(f"GET {path} -> {r.status_code} {r.text[:100]!r}")
                self.status_polls += 1
            stop.wait(max(0.0, min(next_scrape, next_page) - time.monotonic()))


class Ingest(threading.Thread):
    """The runner: experiments (single JSON, NDJSON batches of 100), patterns, reuses."""

    def __init__(self, soak):
        super().__init__(daemon=True, name="ingest")
        self.soak = soak
        self.rng = random.Random(SEED * 100 + 99)
        self.run_id = f"soak{SEED}"
        self.seq = 0
        self.experiments = []  # ids answered 201 "created"
        self.patterns = []     # ids answered 201
        self.reuses = collections.Counter()  # pattern id -> reuses answered 200
        self.singles = self.batches = 0
        self.errors = []
        self.error = None

    def experiment(self):
        self.seq += 1
        status = self.rng.choices(["success", "failure", "timeout", "error"],
                                  [0.96, 0.02, 0.01, 0.01])[0]
        doc = {"experiment_id": f"{self.run_id}-e{self.seq:07d}", "status": status,
               "duration_seconds": round(self.rng.uniform(1, 300), 3),
               "script_length": self.rng.randint(50, 5000),
               "script_compilation_time_ms": round(self.rng.uniform(40, 140), 2),
               "checkpoint_loading_time_ms": round(self.rng.uniform(200, 700), 2),
               "ai_strategy": self.rng.choice(STRATEGIES),
               "pattern_discoveries": self.rng.randint(0, 3),
               "timestamp": time.time(),
               "performance_score": round(self.rng.random(), 4)}
        if status != "success":
            doc["error_message"] = "stuck in menu"
        return doc

    def post(self, path, data, content_type="application/json"):
        try:
            return self.session.post(self.soak.sm.admin_url + path, data=data, timeout=30,
                                     headers={"Content-Type": content_type})
        except requests.RequestException as e:
            self.errors.append(f"POST {path}: {type(e).__name__}: {e}"[:200])
            return None

    def expect(self, r, what, status, check):
        if r is None:
            return False
        try:
            ok = r.status_code == status and check(r.json())
        except ValueError:
            ok = False
        if not ok:
            self.errors.append(f"{what} -> {r.status_code} {r.text[:150]!r}")
        return ok

    def run(self):
        try:
            self.session = requests.Session()
            self.loop()
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()

    def loop(self):
        n = 0
        stop = self.soak.stop_admin
        while not stop.wait(0.25):
            n += 1
            doc = self.experiment()
            r = self.post("/api/v1/experiments", json.dumps(doc))
            if self.expect(r, f"experiment {doc['experiment_id']}", 201,
                           lambda j: j == {"experiment_id": doc["experiment_id"],
                                           "status": "created"}):
                self.experiments.append(doc["experiment_id"])
            self.singles += 1
            if n % 10 == 0:
                docs = [self.experiment() for _ in range(100)]
                body = "".join(json.dumps(d) + "\n" for d in docs)
                r = self.post("/api/v1/experiments", body, "application/x-ndjson")
                if self.expect(r, f"batch {docs[0]['experiment_id']}..", 201,
                               lambda j: j == {"accepted": 100, "duplicates": 0}):
                    self.experiments += [d["experiment_id"] for d in docs]
                self.batches += 1
            if n % 3 == 0:
                pid = f"{self.run_id}-p{n:06d}"
                pat = {"pattern_id": pid, "pattern_type": self.rng.choice(PATTERN_TYPES),
                       "quality_score": round(self.rng.uniform(0.5, 1.0), 3),
                       "experiment_id": doc["experiment_id"],
                       "discovery_time_seconds": round(self.rng.uniform(1, 60), 2)}
                r = self.post("/api/v1/patterns", json.dumps(pat))
                if self.expect(r, f"pattern {pid}", 201,
                               lambda j: j.get("pattern_id") == pid):
                    self.patterns.append(pid)
            if n % 7 == 0 and self.patterns:
                pid = self.rng.choice(self.patterns)
                r = self.post(f"/api/v1/patterns/{pid}/reuse", b"")
                if self.expect(r, f"reuse {pid}", 200,
                               lambda j: j == {"pattern_id": pid,
                                               "reuse_count": self.reuses[pid] + 1}):
                    self.reuses[pid] += 1


# ---- the soak ----------------------------------------------------------------------------

class Window:
    def __init__(self, kind, index, start):
        self.kind, self.index, self.start, self.end = kind, index, start, None
        self.detail = ""


class Soak:
    def __init__(self, seconds, flavour):
        self.seconds = seconds
        self.flavour = flavour
        self.failures = []   # (check, message)
        self.notes = []
        self.tmp = tempfile.mkdtemp(prefix="speedmon-soak-")
        self.stop_agents = threading.Event()
        self.stop_admin = threading.Event()
        self.samples = []    # (t, rss kB, fds)
        self.windows = []
        self.hups = 0
        self.reload_checks = []  # seconds from SIGHUP to the counted, applied reload
        self.pending_reload = None
        self.kills = 0
        self.sm = None
        self.fakes = []

    def fail(self, check, message):
        self.failures.append((check, message))

    # ---- setup ------------------------------------------------------------------------

    def start(self):
        ports = bl.Ports()  # below the ephemeral range: a killed fake's port stays ours
        self.fake_ports = [ports.get() for _ in UPSTREAMS]
        self.fakes = [self.start_fake(p) for p in self.fake_ports]
        cfg = harness.proxy_config(
            {name: [f.address] for name, f in zip(UPSTREAMS, self.fakes)}, routes=ROUTES,
            workers=2, proxy={"drain_timeout": f"{DRAIN_TIMEOUT_S}s", "access_log": ""},
            upstream={"request_timeout": f"{REQUEST_TIMEOUT_S}s"},
            health_check={"path": "/status", "interval": f"{HEALTH_INTERVAL_S}s",
                          "timeout": "1s", "healthy_threshold": 1, "unhealthy_threshold": 3})
        cfg["admin"]["address"] = f"127.0.0.1:{ports.get()}"
        for lst in cfg["listeners"]:
            lst["address"] = f"127.0.0.1:{ports.get()}"
        self.store_path = os.path.join(self.tmp, "soak.db")
        cfg["speedrun"] = {"store_path": self.store_path}
        # [alerting] defaults (the six built-in rules), plus one rule whose threshold each
        # SIGHUP changes: any internal error fires it either way.
        cfg["alerting"] = {"rules": [{
            "id": SOAK_RULE, "metric": "pokemon_speedrun_internal_errors_total",
            "aggregation": "sum", "operator": ">", "threshold": 0.5,
            "severity": "critical"}]}
        self.sm = harness.Speedmon(cfg, workdir=self.tmp)
        self.stderr_path = self.sm.proc.stderr_path

    def start_fake(self, port):
        return harness.FakeEmulator("--port", str(port), workdir=self.tmp)

    # ---- the main loop: sampling, fault windows, SIGHUPs --------------------------------

    def sample(self):
        pid = self.sm.proc.pid
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            fds = None
        self.samples.append((time.monotonic() - self.t_start,
                             bl.status_kb([pid], "VmRSS"), fds))

    def start_window(self, kind, index):
        w = Window(kind, index, time.monotonic())
        fake = self.fakes[index]
        if kind == "kill":
            if self.kills % 2 == 0:
                fake.proc.kill()
                w.detail = "SIGKILL"
            else:
                fake.stop()
                w.detail = "SIGTERM"
            self.kills += 1
            w.end_at = time.monotonic() + self.rng.uniform(3, 5)
        elif kind == "sick":
            fake.control(status_code=SICK_STATUS)
            w.end_at = time.monotonic() + 6
        else:
            fake.control(latency_ms=SLOW_LATENCY_MS)
            w.end_at = time.monotonic() + 5
        self.windows.append(w)
        return w

    def end_window(self, w):
        if w.kind == "kill":
            self.fakes[w.index] = self.start_fake(self.fake_ports[w.index])
        elif w.kind == "sick":
            self.fakes[w.index].control(status_code=200)
        else:
            self.fakes[w.index].control(latency_ms=0)
        w.end = time.monotonic()

    def config_with_threshold(self, threshold):
        cfg = copy.deepcopy(self.sm.config)
        cfg["alerting"]["rules"][0]["threshold"] = threshold
        return harness.toml_dumps(cfg)

    def hup(self):
        self.hups += 1
        threshold = 0.25 if self.hups % 2 else 0.5
        tmp = self.sm.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(self.config_with_threshold(threshold))
        os.replace(tmp, self.sm.config_path)
        self.sm.signal(signal.SIGHUP)
        now = time.monotonic()
        self.pending_reload = (self.hups, threshold, now, now + 10)

    def check_reload(self):
        n, threshold, sent, deadline = self.pending_reload
        s = self.sm.metrics()
        ok, bad = (prom.value_or_zero(s, RELOADS, result=r) for r in ("success", "failure"))
        if bad:
            self.fail("reloads", f"{bad:.0f} failed reload(s) after SIGHUP {n}")
        if ok == n:
            rules = self.sm.get_json("/api/v1/alert-rules")["rules"]
            got = [r["threshold"] for r in rules if r["id"] == SOAK_RULE]
            if got != [threshold]:
                self.fail("reloads", f"SIGHUP {n}: rule {SOAK_RULE} threshold {got}, "
                                     f"expected [{threshold}]")
            self.reload_checks.append(time.monotonic() - sent)
            self.pending_reload = None
        elif ok > n or time.monotonic() > deadline:
            self.fail("reloads", f"SIGHUP {n}: reloads_total{{success}} = {ok:.0f} "
                                 f"(after 10 s)")
            self.pending_reload = None

    def run_load(self):
        self.rng = random.Random(SEED)
        self.agents = [Agent(self, i) for i in range(len(UPSTREAMS))]
        self.poller = Poller(self)
        self.ingest = Ingest(self)
        self.t_start = time.monotonic()
        deadline = self.t_start + self.seconds
        for t in (*self.agents, self.poller, self.ingest):
            t.start()
        next_sample = self.t_start
        next_hup = self.t_start + HUP_EVERY
        next_fault = self.t_start + FIRST_FAULT
        next_reload_poll = 0.0
        active = None
        n_windows = 0
        while True:
            now = time.monotonic()
            if not self.sm.proc.alive():
                self.fail("alive", f"speedmon exited {self.sm.proc.returncode} at "
                                   f"t={now - self.t_start:.0f}s")
                break
            if now >= next_sample:
                self.sample()
                next_sample += SAMPLE_EVERY
                if now >= deadline:
                    break
            if active is not None and now >= active.end_at:
                self.end_window(active)
                active = None
            # A window starts only if it ends, and its upstream recovers, before the end.
            if active is None and now >= next_fault:
                next_fault += FAULT_EVERY
                if now + 6 + GRACE < deadline:
                    active = self.start_window(WINDOW_KINDS[n_windows % 3], n_windows % 4)
                    n_windows += 1
            if now >= next_hup and self.pending_reload is None:
                next_hup += HUP_EVERY
                if now + 10 < deadline:
                    self.hup()
            if self.pending_reload is not None and now >= next_reload_poll:
                next_reload_poll = now + 0.25
                self.check_reload()
            time.sleep(0.05)
        if active is not None:
            self.end_window(active)
        self.stop_agents.set()
        for a in self.agents:
            a.join(CLIENT_TIMEOUT + 5)
        self.t_agents_done = time.monotonic()
        self.stop_admin.set()
        self.poller.join(30)
        self.ingest.join(40)
        for t in (*self.agents, self.poller, self.ingest):
            if t.is_alive():
                self.fail("harness", f"thread {t.name} did not stop")
            if t.error:
                self.fail("harness", f"thread {t.name} crashed:\n{t.error}")

    # ---- checks -------------------------------------------------------------------------

    def explain(self, events):
        """(Counter of (cause, outcome label) for non-2xx and cut answers, unexplained)."""
        by_up = collections.defaultdict(list)
        for w in self.windows:
            by_up[w.index].append(w)
        causes = collections.Counter()
        unexplained = []
        for t0, t1, idx, fault, outcome in events:
            allowed = FAULT_BY_NAME[fault][3] if fault else None
            if allowed is None and outcome[0] == "ok" or allowed and outcome in allowed:
                if outcome[0] != "ok":
                    causes[(f"request fault {fault}", label(outcome))] += 1
                continue
            window = next((w for w in by_up[idx] if t0 <= w.end + GRACE and t1 >= w.start
                           and outcome in WINDOW_ALLOWED[w.kind]), None)
            if window is not None:
                causes[(f"window {window.kind}", label(outcome))] += 1
                continue
            unexplained.append((t0 - self.t_start, UPSTREAMS[idx], fault, label(outcome)))
        return causes, unexplained

    def check_counts(self, events):
        client = collections.Counter()
        for _, _, idx, _, outcome in events:
            st = status_of(outcome)
            if st is not None:
                client[(UPSTREAMS[idx], str(st))] += 1

        def speedmon_counts(s):
            out = collections.Counter()
            for lbls, v in prom.select(s, REQ).items():
                d = dict(lbls)
                if v:
                    out[(d["upstream"], d["code"])] += v
            return out

        last = {}

        def equal(s):
            last["c"] = speedmon_counts(s)
            return last["c"] == client
        try:
            self.final = self.sm.metrics_when(equal, timeout=15,
                                              what="http_requests_total == client counts")
        except AssertionError:
            self.final = self.sm.metrics()
            diff = {k: (last["c"].get(k, 0), client.get(k, 0))
                    for k in set(last["c"]) | set(client) if last["c"].get(k) != client.get(k)}
            self.fail("counts", "http_requests_total != client counts, (speedmon, client) "
                                f"by (upstream, code): {dict(sorted(diff.items()))}")
        self.client_counts = client

    def check_metrics(self):
        s = self.final
        exp = prom.sum_values(s, "pokemon_speedrun_experiments_total")
        if exp != len(self.ingest.experiments):
            self.fail("counts", f"experiments_total {exp:.0f} != {len(self.ingest.experiments)}"
                                " acknowledged ids")
        pats = prom.sum_values(s, "pokemon_speedrun_pattern_discoveries_total")
        if pats != len(self.ingest.patterns):
            self.fail("counts", f"pattern_discoveries_total {pats:.0f} != "
                                f"{len(self.ingest.patterns)} acknowledged patterns")
        reuses = prom.sum_values(s, "pokemon_speedrun_pattern_reuses_total")
        if reuses != sum(self.ingest.reuses.values()):
            self.fail("counts", f"pattern_reuses_total {reuses:.0f} != "
                                f"{sum(self.ingest.reuses.values())} acknowledged reuses")
        ok = prom.value_or_zero(s, RELOADS, result="success")
        bad = prom.value_or_zero(s, RELOADS, result="failure")
        self.reloads = (ok, bad)
        if ok != self.hups or bad != 0:
            self.fail("reloads", f"config_reloads_total success {ok:.0f} failure {bad:.0f}, "
                                 f"SIGHUPs sent {self.hups}")
        internal = prom.nonzero(s, "pokemon_speedrun_internal_errors_total")
        if internal:
            self.fail("internal errors", str({dict(k)["component"]: v
                                              for k, v in internal.items()}))
        if not prom.select(s, "pokemon_speedrun_internal_errors_total"):
            self.fail("internal errors", "pokemon_speedrun_internal_errors_total not exported")
        try:
            self.sm.metrics_when(
                lambda s: sorted(prom.select(s, "pokemon_speedrun_upstream_healthy").values())
                == [1.0] * len(UPSTREAMS), timeout=10, what="every upstream healthy")
        except AssertionError as e:
            self.fail("recovery", str(e)[:300])

    def check_curves(self):
        rows = [r for r in self.samples if r[2] is not None]
        self.curve = None
        if len(rows) < 6:
            self.fail("curves", f"only {len(rows)} samples: too short to judge")
            return
        third = len(rows) // 3
        mid, last = rows[third:2 * third], rows[2 * third:]
        rss_mid = statistics.median(r[1] for r in mid)
        rss_last = statistics.median(r[1] for r in last)
        fd_mid = statistics.median(r[2] for r in mid)
        fd_last = statistics.median(r[2] for r in last)
        rss_pct = (rss_last - rss_mid) / rss_mid * 100
        fd_growth = fd_last - fd_mid
        self.curve = dict(rss_mid=rss_mid, rss_last=rss_last, rss_pct=rss_pct,
                          fd_mid=fd_mid, fd_last=fd_last, fd_growth=fd_growth,
                          rss_flat=rss_pct <= RSS_GROWTH_MAX_PCT,
                          fd_flat=fd_growth <= FD_GROWTH_MAX)
        if not self.curve["rss_flat"]:
            self.fail("curves", f"RSS grows {rss_pct:+.1f} % (median {rss_mid / 1024:.1f} -> "
                                f"{rss_last / 1024:.1f} MiB, middle -> last third)")
        if not self.curve["fd_flat"]:
            self.fail("curves", f"open fds grow by {fd_growth:+g} (median {fd_mid:g} -> "
                                f"{fd_last:g}, middle -> last third)")

    def stop_speedmon(self):
        self.stop_seconds = None
        self.exit_code = None
        if not self.sm.proc.alive():
            return
        t0 = time.monotonic()
        self.sm.signal(signal.SIGTERM)
        code = self.sm.wait(DRAIN_TIMEOUT_S + 10)
        self.stop_seconds = time.monotonic() - t0
        if code is None:
            self.sm.proc.kill()
            self.fail("exit", f"no exit {DRAIN_TIMEOUT_S + 10} s after SIGTERM (killed)")
            return
        self.exit_code = code
        if code != 0:
            self.fail("exit", f"exit code {code} after SIGTERM")
        if self.stop_seconds > DRAIN_TIMEOUT_S:
            self.fail("exit", f"exit took {self.stop_seconds:.1f} s > drain_timeout "
                              f"{DRAIN_TIMEOUT_S} s")

    def check_stderr(self):
        with open(self.stderr_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.stderr_lines = text.count("\n")
        bad = [line for line in text.splitlines() if any(m in line.lower() for m in (
            "internal error", "addresssanitizer", "leaksanitizer", "runtime error:",
            "undefinedbehaviorsanitizer", "threadsanitizer", "summary: "))]
        if bad:
            self.fail("stderr", f"{len(bad)} line(s), first: " + " | ".join(bad[:5])[:600])

    def check_store(self):
        if not os.path.exists(self.store_path):
            self.fail("store", f"{self.store_path} missing")
            return
        db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        try:
            ids = [r[0] for r in db.execute("SELECT id FROM experiments")]
            pats = dict(db.execute("SELECT id, reuse_count FROM patterns").fetchall())
        finally:
            db.close()
        want = collections.Counter(self.ingest.experiments)
        got = collections.Counter(ids)
        self.store_rows = len(ids)
        if got != want:
            dup = sum(1 for v in got.values() if v > 1)
            self.fail("store", f"experiments table: {len(ids)} rows, {len(got)} distinct; "
                               f"acknowledged {len(want)}; missing {len(set(want) - set(got))}"
                               f", unexpected {len(set(got) - set(want))}, duplicated {dup}")
        if set(pats) != set(self.ingest.patterns) or len(pats) != len(self.ingest.patterns):
            self.fail("store", f"patterns table holds {len(pats)} ids, acknowledged "
                               f"{len(self.ingest.patterns)}")
        wrong = {p: (pats.get(p), n) for p, n in self.ingest.reuses.items() if pats.get(p) != n}
        if wrong:
            self.fail("store", f"reuse_count (store, acknowledged) differs: "
                               f"{dict(list(wrong.items())[:5])}")

    # ---- report ------------------------------------------------------------------------

    def report(self, events, causes, unexplained):
        dur = self.t_agents_done - self.t_start
        p = print
        ok = sum(1 for e in events if e[4][0] == "ok")
        cut = sum(1 for e in events if e[4][0] == "truncated")
        fault_counts = collections.Counter(e[3] for e in events if e[3])
        windows = collections.Counter(w.kind for w in self.windows)
        scr = sorted(self.poller.scrape_seconds)
        commit = os.environ.get("SOAK_COMMIT", "?")
        p("")
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(
            os.path.getmtime(harness.speedmon_bin())))
        p(f"soak: speedmon {self.flavour} (tree at {commit}, binary built {built}), "
          f"{dur:.0f} s, 4 fake emulators, 2 workers, seed {SEED}")
        p(f"  proxy      {len(events)} requests ({len(events) / dur:.1f}/s) over "
          f"{sum(a.connections for a in self.agents)} agent connections; {ok} 2xx, "
          f"{len(events) - ok - cut} other answers, {cut} cut mid-body")
        p("  faults     per request: " + ", ".join(
            f"{name} {fault_counts[name]}" for name, *_ in REQUEST_FAULTS))
        p(f"             windows: {windows['kill']} kill+restart, {windows['sick']} sick "
          f"(/status {SICK_STATUS}), {windows['slow']} slow ({SLOW_LATENCY_MS} ms)")
        by_outcome = collections.Counter()
        for (cause, lbl), n in causes.items():
            by_outcome[lbl] += n
        p("  not 2xx    " + (", ".join(f"{lbl} {n}" for lbl, n in by_outcome.most_common())
                             or "none") + f"; unexplained {len(unexplained)}")
        p(f"  admin      {len(scr)} /metrics scrapes (p50 {1e3 * pct(scr, 50):.1f} ms, "
          f"max {1e3 * (scr[-1] if scr else 0):.1f} ms), {self.poller.status_polls} "
          f"status-page polls")
        p(f"  ingest     {len(self.ingest.experiments)} experiments acknowledged "
          f"({self.ingest.singles} single + {self.ingest.batches} NDJSON x 100), "
          f"{len(self.ingest.patterns)} patterns, {sum(self.ingest.reuses.values())} reuses")
        rc = self.reload_checks
        p(f"  reloads    {self.hups} SIGHUP, counted success {self.reloads[0]:.0f} failure "
          f"{self.reloads[1]:.0f}" + (f", applied within {max(rc):.2f} s" if rc else ""))
        if self.flavour == "asan":
            p(f"  asan       ASAN_OPTIONS={os.environ.get('ASAN_OPTIONS', '')}")
        if self.samples:
            s0, s1 = self.samples[0], self.samples[-1]
            p(f"  RSS        {s0[1] / 1024:.1f} -> {s1[1] / 1024:.1f} MiB" + (
                f"; median middle third {self.curve['rss_mid'] / 1024:.1f}, last third "
                f"{self.curve['rss_last'] / 1024:.1f} MiB ({self.curve['rss_pct']:+.1f} %): "
                + ("flat" if self.curve["rss_flat"] else "GROWS") if self.curve else ""))
            p(f"  fds        {s0[2]} -> {s1[2]}" + (
                f"; median middle third {self.curve['fd_mid']:g}, last third "
                f"{self.curve['fd_last']:g} ({self.curve['fd_growth']:+g}): "
                + ("flat" if self.curve["fd_flat"] else "GROWS") if self.curve else ""))
            self.print_curve()
        if self.exit_code is not None:
            p(f"  exit       SIGTERM -> exit {self.exit_code} in {self.stop_seconds:.2f} s "
              f"(drain_timeout {DRAIN_TIMEOUT_S} s)")
        failed = {c for c, _ in self.failures}
        p("  counts     " + ("MISMATCH (see FAIL)" if "counts" in failed or "store" in failed
                             else f"http_requests_total == agents' counts in all "
                                  f"{len(self.client_counts)} (upstream, code) cells; "
                                  f"experiments_total == {len(self.ingest.experiments)} "
                                  f"acknowledged ids == store rows, once each; patterns "
                                  f"and reuses exact")
          + "; internal errors " + ("NONZERO" if "internal errors" in failed else "0"))
        if causes:
            p("  explained by cause:")
            for (cause, lbl), n in sorted(causes.items()):
                p(f"    {cause:28s} {lbl:36s} {n}")
        for u in unexplained[:15]:
            p(f"  UNEXPLAINED t={u[0]:.1f}s {u[1]} fault={u[2]}: {u[3]}")
        for check, msg in self.failures:
            p(f"  FAIL [{check}] {msg}")
        p(f"RESULT: {'PASS' if not self.failures else 'FAIL'}")

    def print_curve(self):
        step = max(SAMPLE_EVERY, round(self.seconds / 12 / SAMPLE_EVERY) * SAMPLE_EVERY)
        rows, next_t = [], 0.0
        for t, rss, fds in self.samples:
            if t + 0.5 >= next_t or (t, rss, fds) == self.samples[-1]:
                rows.append((t, rss, fds))
                next_t = (math.floor((t + 0.5) / step) + 1) * step
        w = 6
        print("  curve      t s     " + "".join(f"{r[0]:>{w}.0f}" for r in rows))
        print("             RSS MiB " + "".join(f"{r[1] / 1024:>{w}.1f}" for r in rows))
        print("             fds     " + "".join(f"{r[2]!s:>{w}}" for r in rows))

    # ---- all of it ---------------------------------------------------------------------

    def run(self):
        print(f"soak: {self.seconds} s against {harness.speedmon_bin()} (seed {SEED}); "
              f"temp dir {self.tmp}", flush=True)
        self.start()
        print(f"soak: speedmon pid {self.sm.proc.pid}, admin {self.sm.admin_url}, "
              f"listeners {[self.sm.listener_port(u) for u in UPSTREAMS]}", flush=True)
        self.run_load()
        events = sorted(e for a in self.agents for e in a.events)
        causes, unexplained = self.explain(events)
        if unexplained:
            self.fail("errors", f"{len(unexplained)} answer(s) no injected fault explains")
        for what, errs in (("admin", self.poller.errors), ("ingest", self.ingest.errors)):
            if errs:
                self.fail(what, f"{len(errs)} error(s), first: " + " | ".join(errs[:3]))
        self.client_counts = {}
        self.reloads = (float("nan"), float("nan"))
        self.final = None
        if self.sm.proc.alive():
            self.check_counts(events)
            self.check_metrics()
        elif not any(c == "alive" for c, _ in self.failures):
            self.fail("alive", f"speedmon exited {self.sm.proc.returncode} before the checks")
        self.check_curves()
        self.stop_speedmon()
        self.check_stderr()
        self.check_store()
        for f in self.fakes:
            f.stop()
        self.report(events, causes, unexplained)
        return 0 if not self.failures else 1


def pct(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q / 100))]


def main():
    if len(sys.argv) not in (2, 3) or not sys.argv[1].isdigit():
        print("usage: soak.py SECONDS [release|asan]", file=sys.stderr)
        return 2
    seconds = int(sys.argv[1])
    flavour = sys.argv[2] if len(sys.argv) == 3 else "release"
    if seconds < 60:
        print("soak.py: SECONDS must be at least 60 (the curves need thirds of 20 s)",
              file=sys.stderr)
        return 2
    if flavour == "asan":
        # ASan keeps freed memory in a quarantine (256 MB by default) to catch use after
        # free: RSS then climbs for minutes whatever speedmon does. A small quarantine
        # fills during the warm-up third, so the curve measures speedmon; LeakSanitizer
        # reports leaks at exit either way.
        os.environ.setdefault("ASAN_OPTIONS",
                              "detect_leaks=1:abort_on_error=1:quarantine_size_mb=16")
        os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    soak = Soak(seconds, flavour)
    # SIGTERM/SIGINT/SIGHUP to the soak: unwind, so everything started is stopped (procs
    # kills its children at exit; they also die with us through PR_SET_PDEATHSIG).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    code = 2
    try:
        code = soak.run()
    except harness.SpeedmonMissing as e:
        print(f"soak.py: {e}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - the soak itself broke: say so, exit 2
        traceback.print_exc()
        if soak.sm is not None:
            print("--- speedmon stderr (tail) ---\n" + soak.sm.stderr(), file=sys.stderr)
    finally:
        keep = KEEP_TMP or code != 0
        if keep:
            print(f"soak: kept {soak.tmp} (config, logs, store)", file=sys.stderr)
        else:
            shutil.rmtree(soak.tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
