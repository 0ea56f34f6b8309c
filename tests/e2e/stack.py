"""The real monitoring stack around speedmon for the e2e tests: Prometheus and
Alertmanager (Debian's binaries) on loopback ports with their storage in a temp dir,
stopped by pid, and a webhook receiver thread.

  Prometheus(workdir, speedmon_address)  scrapes speedmon every 1s with the shipped
      monitoring/prometheus_config.yml and alert_rules.yml; .query(expr), .rules()
      (targets_file=PATH: the speedmon job finds its targets in that file_sd file
      instead, write_targets(path, addresses) writes one)
  Alertmanager(workdir)                  monitoring/alertmanager.yml; .alerts(),
      .stop() and .start() again on the same port and storage
  WebhookReceiver()                      http.server on 127.0.0.1; .posts, .wait_posts(n)
  HungServer()                           accepts and never answers (a hung receiver)

Every process goes through harness.Process, so it also dies with the test runner.
"""

import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
STARTUP_TIMEOUT = 30.0


def source_dir():
    env = os.environ.get("SPEEDMON_SOURCE_DIR")
    if env:
        return env
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def monitoring_path(name):
    return os.path.join(source_dir(), "monitoring", name)


def _require_binary(path):
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is not installed (scripts/install-deps.sh installs it)")


# ---- config rewriting ------------------------------------------------------------------

def _rewrite(text, replacements, what):
    """Applies {old: new} on the non-comment lines of a YAML file; every old string must
    occur, so a changed shipped file fails loudly instead of testing something else."""
    found = dict.fromkeys(replacements, 0)
    out = []
    for line in text.split("\n"):
        if not line.lstrip().startswith("#"):
            for old, new in replacements.items():
                if old in line:
                    line = line.replace(old, new)
                    found[old] += 1
        out.append(line)
    missing = [old for old, n in found.items() if n == 0]
    if missing:
        raise AssertionError(f"{what} no longer contains {missing}: update tests/e2e/stack.py")
    return "\n".join(out)


def prometheus_config(speedmon_address, alertmanager_address, interval="1s"):
    """monitoring/prometheus_config.yml with speedmon and Alertmanager on these
    addresses, every interval (scrape, evaluation) at `interval`, and alert_rules.yml by
    absolute path (the config is written elsewhere)."""
    path = monitoring_path("prometheus_config.yml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return _rewrite(text, {
        '"127.0.0.1:8000"': json.dumps(speedmon_address),
        '"127.0.0.1:9093"': json.dumps(alertmanager_address),
        "scrape_interval: 15s": f"scrape_interval: {interval}",
        "evaluation_interval: 15s": f"evaluation_interval: {interval}",
        "scrape_timeout: 10s": f"scrape_timeout: {interval}",
        "- alert_rules.yml": "- " + json.dumps(monitoring_path("alert_rules.yml")),
    }, path)


def with_file_sd(config_text, targets_file):
    """The config with the speedmon job's static target replaced by file_sd_configs on
    targets_file, re-read as soon as it changes (the shipped file's comments show the
    same block)."""
    doc = yaml.safe_load(config_text)
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == "speedmon")
    del job["static_configs"]
    job["file_sd_configs"] = [{"files": [targets_file], "refresh_interval": "1s"}]
    return yaml.safe_dump(doc, sort_keys=False)


def write_targets(path, addresses, labels=None):
    """A file_sd targets file listing these "host:port" addresses, written whole at once
    (a rename), so Prometheus never reads half of it."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump([{"targets": list(addresses), "labels": labels or {}}], f)
    os.replace(tmp, path)


# ---- servers ---------------------------------------------------------------------------

class _Server:
    """A Debian Prometheus-family server on 127.0.0.1:port, ready when /-/ready is 200."""

    name = "server"

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.port = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.address}"

    def argv(self):
        raise NotImplementedError

    def start(self, attempts=3):
        """Starts on self.port (a free one the first time); waits until ready."""
        keep_port = self.port is not None
        for attempt in range(attempts):
            if not keep_port:
                self.port = harness.free_port()
            self.proc = harness.Process(self.argv(), name=self.name, workdir=self.workdir)
            try:
                harness.wait_for(self._ready, STARTUP_TIMEOUT, interval=0.1,
                                 what=f"{self.name} GET /-/ready == 200")
                return self
            except AssertionError:
                log = self.log()
                self.proc.kill()
                if "address already in use" in log and attempt + 1 < attempts:
                    if keep_port:  # the old listener may linger for a moment
                        time.sleep(1.0)
                    continue
                raise AssertionError(f"{self.name} did not start; log:\n{log}") from None
        return self

    def _ready(self):
        if not self.proc.alive():
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
        try:
            return requests.get(self.url + "/-/ready", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        """SIGTERM (SIGKILL after 10s) by pid; the port and storage stay for start()."""
        if self.proc is not None:
            self.proc.stop()

    def log(self):
        return self.proc.stderr(tail=20000) if self.proc else ""

    def get_json(self, path, **params):
        r = requests.get(self.url + path, params=params, timeout=10.0)
        try:
            doc = r.json()
        except ValueError:
            raise AssertionError(f"{self.name} GET {path} -> {r.status_code}: "
                                 f"{r.text[:500]}") from None
        return r.status_code, doc


class Prometheus(_Server):
    name = "prometheus"

    def __init__(self, workdir, speedmon_address, alertmanager_address=None, interval="1s",
                 targets_file=None):
        super().__init__(workdir)
        _require_binary(PROMETHEUS)
        # With no Alertmanager, a port nobody listens on: sends fail, nothing else does.
        am = alertmanager_address or f"127.0.0.1:{harness.free_port()}"
        self.config_path = os.path.join(workdir, "prometheus.yml")
        text = prometheus_config(speedmon_address, am, interval)
        if targets_file:
            text = with_file_sd(text, targets_file)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text)
        self.storage = os.path.join(workdir, "prometheus-data")

    def argv(self):
        return [PROMETHEUS, f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.storage}",
                f"--web.listen-address={self.address}", "--log.level=warn"]

    def query(self, expr):
        """The /api/v1/query answer (instant, now) as a dict; HTTP errors included."""
        r = requests.post(self.url + "/api/v1/query", data={"query": expr}, timeout=30.0)
        try:
            return r.json()
        except ValueError:
            return {"status": "error", "error": f"HTTP {r.status_code}: {r.text[:300]}"}

    def rules(self):
        status, doc = self.get_json("/api/v1/rules")
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"GET /api/v1/rules -> {status}: {doc}")
        return doc["data"]["groups"]

    def targets(self):
        status, doc = self.get_json("/api/v1/targets", state="active")
        if status != 200:
            raise AssertionError(f"GET /api/v1/targets -> {status}: {doc}")
        return doc["data"]["activeTargets"]


class Alertmanager(_Server):
    name = "alertmanager"

    def __init__(self, workdir, config_path=None):
        super().__init__(workdir)
        _require_binary(ALERTMANAGER)
        self.config_path = config_path or monitoring_path("alertmanager.yml")
        self.storage = os.path.join(workdir, "alertmanager-data")

    def argv(self):
        return [ALERTMANAGER, f"--config.file={self.config_path}",
                f"--storage.path={self.storage}", f"--web.listen-address={self.address}",
                "--cluster.listen-address=", "--log.level=warn"]

    def alerts(self, alertname=None, active_only=True):
        """GET /api/v2/alerts (by default only active, unsilenced, uninhibited ones),
        those named alertname."""
        params = {"active": "true", "silenced": "false", "inhibited": "false"} \
            if active_only else {}
        status, doc = self.get_json("/api/v2/alerts", **params)
        if status != 200:
            raise AssertionError(f"GET /api/v2/alerts -> {status}: {doc}")
        return [a for a in doc if alertname is None or a["labels"].get("alertname") == alertname]

    def received(self):
        """Alertmanager's own count of alerts received through API v2, by status as it
        judged them on arrival ("resolved": endsAt already past), plus "invalid"."""
        r = requests.get(self.url + "/metrics", timeout=10.0)
        r.raise_for_status()
        samples = harness.prom.parse(r.text)
        out = {st: harness.prom.value(samples, "alertmanager_alerts_received_total",
                                      status=st, version="v2") for st in ("firing", "resolved")}
        out["invalid"] = harness.prom.value(samples, "alertmanager_alerts_invalid_total",
                                            version="v2")
        return out


# ---- webhook receiver ------------------------------------------------------------------

class WebhookReceiver:
    """Records every POST: .posts is a list of {"path", "headers", "body", "json"}."""

    def __init__(self, status=200):
        self.posts = []
        self.status = status
        self._cv = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with receiver._cv:
                    receiver.posts.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "json": doc})
                    receiver._cv.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self._cv:
            return list(self.posts)

    def wait_posts(self, n, timeout=30.0):
        """The first n posts, once there are at least n."""
        with self._cv:
            if not self._cv.wait_for(lambda: len(self.posts) >= n, timeout):
                raise AssertionError(f"webhook: {len(self.posts)} posts after {timeout:.0f}s, "
                                     f"want {n}: {[p['json'] for p in self.posts]}")
            return list(self.posts[:n])

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class HungServer:
    """A peer that accepts connections and reads requests but never answers: a hung
    Alertmanager or webhook. .wait_connections(n) returns once n were accepted."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns = []
        self._cv = threading.Condition()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self._cv:
                self.conns.append(conn)
                self._cv.notify_all()

    def wait_connections(self, n, timeout=30.0):
        with self._cv:
            if not self._cv.wait_for(lambda: len(self.conns) >= n, timeout):
                raise AssertionError(f"hung server: {len(self.conns)} connections after "
                                     f"{timeout:.0f}s, want {n}")

    def close(self):
        """Closes the listener and every connection (the peer then sees EOF)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        except OSError:
            pass
        self.sock.close()
        with self._cv:
            for c in self.conns:
                c.close()
        self.thread.join(10)


# ---- Grafana expressions ---------------------------------------------------------------

GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1m"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute_variables(expr, variables):
    """A Grafana target expr as Grafana would send it with every template variable set
    to "All" (`.*`) and the interval macros at 1m. Raises on a variable the dashboard
    does not define (Grafana would leave it in, and Prometheus would refuse it)."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        if name in variables:
            return ".*"
        raise AssertionError(f"expr uses ${name}, which is neither a dashboard variable nor "
                             f"a known Grafana macro: {expr}")
    return _VARIABLE.sub(repl, expr)
