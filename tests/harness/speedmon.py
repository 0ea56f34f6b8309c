"""Runs the speedmon binary ($SPEEDMON_BIN) on loopback ports for a test.

proxy_config() builds the config as a dict (the TOML of config/default.toml), toml_dumps() writes
it, Speedmon starts `$SPEEDMON_BIN --config FILE`, waits for GET /healthz on the admin
address and for every listener to accept, and fails with speedmon's stderr otherwise.
"""

import json
import os
import re
import socket
import time
import urllib.error
import urllib.request

from . import procs, prom

STARTUP_TIMEOUT = 10.0

# Routes for every path the fake emulator serves in the proxy tests.
DEFAULT_ROUTES = [
    ("initialize", "/initialize"), ("action", "/action"), ("status", "/status"),
    ("stop", "/stop"), ("echo", "/echo"), ("bytes", "/bytes"), ("headers", "/headers"),
    ("misbehave", "/misbehave"),
]


REQUESTS_TOTAL = "pokemon_speedrun_http_requests_total"


def _brief(samples):
    keep = {k: v for k, v in samples.items() if k[0].startswith(
        ("pokemon_speedrun_http_requests_total", "pokemon_speedrun_upstream_errors"))}
    return {f"{n}{dict(sorted(lbls))}": v for (n, lbls), v in keep.items()}


class SpeedmonMissing(AssertionError):
    pass


def speedmon_bin():
    """$SPEEDMON_BIN, checked. A missing binary is a failure, never a skip."""
    path = os.environ.get("SPEEDMON_BIN", "")
    if not path:
        raise SpeedmonMissing("SPEEDMON_BIN is not set: run these tests through ctest, or "
                              "export SPEEDMON_BIN=/path/to/build/app/speedmon")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SpeedmonMissing(f"SPEEDMON_BIN={path} is not an executable file (is the "
                              "`speedmon` target built?)")
    return path


# ---- TOML ------------------------------------------------------------------------------

def _toml_key(k):
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def _is_table_array(v):
    return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)


def toml_dumps(doc):
    """TOML text for a dict of scalars, tables and arrays of tables (nested ok). Dicts
    under the keys in INLINE_TABLE_KEYS (labels, annotations) become inline tables."""
    lines = []
    _emit(lines, [], doc)
    return "\n".join(lines).lstrip("\n") + "\n"


INLINE_TABLE_KEYS = {"labels", "annotations", "match_labels"}


def _emit(lines, path, table):
    subtables = []
    for k, v in table.items():
        if isinstance(v, dict) and k not in INLINE_TABLE_KEYS:
            subtables.append(("table", k, v))
        elif _is_table_array(v):
            subtables.append(("array", k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for kind, k, v in subtables:
        dotted = ".".join(_toml_key(p) for p in path + [k])
        if kind == "table":
            lines.append(f"\n[{dotted}]")
            _emit(lines, path + [k], v)
        else:
            for item in v:
                lines.append(f"\n[[{dotted}]]")
                _emit(lines, path + [k], item)


# ---- config ----------------------------------------------------------------------------

def proxy_config(upstreams, routes=DEFAULT_ROUTES, workers=1, proxy=None, upstream=None,
                 health_check=None):
    """A speedmon config dict: one listener per upstream, admin on a free port.

    upstreams: {name: [endpoint "host:port", ...]} (a FakeEmulator's .address).
    proxy: extra [proxy] keys; upstream: extra keys for every [[upstreams]] entry;
    health_check: a [upstreams.health_check] table for every upstream (None = absent).
    """
    names = list(upstreams)
    ports = procs.free_ports(len(names) + 1)
    cfg = {
        "admin": {"address": f"127.0.0.1:{ports[0]}"},
        "proxy": {"workers": workers, "drain_timeout": "2s", **(proxy or {})},
        "speedrun": {"store_path": ""},
        "alerting": {"default_rules": False},
        "listeners": [{"name": n, "address": f"127.0.0.1:{p}", "upstream": n}
                      for n, p in zip(names, ports[1:])],
        "upstreams": [],
        "routes": [{"name": n, "prefix": p} for n, p in routes],
    }
    for n in names:
        up = {"name": n, "endpoints": list(upstreams[n]), "connect_timeout": "1s",
              "request_timeout": "15s", **(upstream or {})}
        if health_check is not None:
            up["health_check"] = dict(health_check)
        cfg["upstreams"].append(up)
    if not cfg["routes"]:
        del cfg["routes"]
    return cfg


def _repick_ports(cfg):
    ports = procs.free_ports(len(cfg.get("listeners", [])) + 1)
    cfg["admin"]["address"] = f"127.0.0.1:{ports[0]}"
    for lst, p in zip(cfg.get("listeners", []), ports[1:]):
        lst["address"] = f"127.0.0.1:{p}"


def _port_of(address):
    return int(address.rsplit(":", 1)[1])


# ---- the process -----------------------------------------------------------------------

class Speedmon:
    """A running speedmon. Ports: admin_port, listener_port(name) / port (the first)."""

    def __init__(self, config, startup_timeout=STARTUP_TIMEOUT, extra_args=(), attempts=3,
                 workdir=None, wrapper=()):
        """wrapper: a command that execs speedmon, e.g. ("prlimit", "--nofile=128:128", "--")."""
        binary = speedmon_bin()
        self.config = config
        workdir = workdir or procs.temp_dir()
        self.config_path = os.path.join(workdir, "speedmon.toml")
        for attempt in range(attempts):
            with open(self.config_path, "w") as f:
                f.write(toml_dumps(config))
            self.proc = procs.Process([*wrapper, binary, "--config", self.config_path, *extra_args],
                                      name="speedmon", workdir=workdir)
            try:
                self._wait_ready(startup_timeout)
                return
            except AssertionError:
                in_use = "in use" in self.proc.stderr().lower()
                if not self.proc.alive() and in_use and attempt + 1 < attempts:
                    _repick_ports(config)  # another process took a port we picked
                    continue
                self.proc.kill()
                raise

    @property
    def admin_port(self):
        return _port_of(self.config["admin"]["address"])

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def listener_port(self, name=None):
        for lst in self.config.get("listeners", []):
            if name is None or lst["name"] == name:
                return _port_of(lst["address"])
        raise KeyError(name)

    @property
    def port(self):
        return self.listener_port()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _failure(self, what):
        return AssertionError(
            f"speedmon {what} (exit code {self.proc.returncode}); config {self.config_path}:\n"
            f"{toml_dumps(self.config)}\n--- stderr ---\n{self.proc.stderr()}")

    def _healthz_ok(self):
        if not self.proc.alive():
            raise self._failure("exited during startup")
        try:
            return self.get("/healthz", timeout=1.0)[0] == 200
        except OSError:
            return False

    def _listeners_up(self):
        for lst in self.config.get("listeners", []):  # none: monitor-only
            try:
                socket.create_connection(("127.0.0.1", _port_of(lst["address"])), 1.0).close()
            except OSError:
                return False
        return True

    def _probes_closed(self):
        """The connections _listeners_up opened are closed on speedmon's side too: until a
        worker has read their EOF they count in pokemon_speedrun_downstream_connections,
        which a test comparing two scrapes would see change."""
        status, _, body = self.get("/metrics", timeout=2.0)
        m = re.search(rb"^pokemon_speedrun_downstream_connections (\S+)$", body, re.M)
        return status == 200 and (m is None or float(m.group(1)) == 0)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        for check, what in ((self._healthz_ok, "GET /healthz == 200"),
                            (self._listeners_up, "every listener accepting"),
                            (self._probes_closed, "listener probes closed")):
            while not check():
                if time.monotonic() >= deadline:
                    raise self._failure(f"not ready after {timeout:.0f}s: no {what}")
                time.sleep(0.02)

    # ---- admin API --------------------------------------------------------------------

    def get(self, path, timeout=10.0, headers=None):
        """(status, headers dict, body bytes) of GET admin path; HTTP errors included."""
        req = urllib.request.Request(self.admin_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """(status, headers dict, body bytes) of any admin request; a dict or list body is
        sent as JSON. HTTP errors are answers, not exceptions."""
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.admin_url + path, data=body, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get_json(self, path):
        status, _, body = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path} -> {status}: {body[:500]!r}")
        return json.loads(body)

    def metrics_text(self):
        status, _, body = self.get("/metrics")
        if status != 200:
            raise AssertionError(f"GET /metrics -> {status}")
        return body.decode()

    def metrics(self):
        """{(name, frozenset(labels.items())): value} of a fresh scrape."""
        return prom.parse(self.metrics_text())

    def metrics_when(self, predicate, timeout=10.0, what="metrics condition"):
        """The first scrape for which predicate(samples) holds (polled until timeout).

        A request is recorded when its exchange ends on the worker, which may be just
        after the client read the last byte: tests wait for the count they caused, then
        assert exact values on that scrape."""
        last = {}

        def check():
            last["s"] = self.metrics()
            return predicate(last["s"])
        try:
            procs.wait_for(check, timeout, interval=0.05, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; last scrape: {_brief(last.get('s', {}))}") from None
        return last["s"]

    def metrics_after(self, n, timeout=10.0):
        """A scrape taken once pokemon_speedrun_http_requests_total sums to >= n."""
        return self.metrics_when(lambda s: prom.sum_values(s, REQUESTS_TOTAL) >= n, timeout,
                                 what=f"{n} requests in {REQUESTS_TOTAL}")

    # ---- lifecycle --------------------------------------------------------------------

    def signal(self, sig):
        self.proc.signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def stop(self, timeout=20.0):
        """SIGTERM and wait (SIGKILL after timeout). Returns the exit code."""
        return self.proc.stop(timeout)

    def stderr(self):
        return self.proc.stderr()
