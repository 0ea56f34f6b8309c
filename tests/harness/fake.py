"""Starts tools/fake_emulator.py on a loopback port and talks to its test endpoints.

The fake's pattern generator is imported from the tool itself (one definition of the
byte stream that /bytes/N serves), so tests can compute what they must receive.
"""

import hashlib
import importlib.util
import json
import os
import sys
import urllib.request

from . import procs

PYTHON = "/usr/bin/python3"


def _source_dir():
    env = os.environ.get("SPEEDMON_SOURCE_DIR")
    if env:
        return env
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fake_emulator_path():
    path = os.environ.get("FAKE_EMULATOR") or os.path.join("tools", "fake_emulator.py")
    if not os.path.isabs(path):
        path = os.path.join(_source_dir(), path)
    return path


def _load_tool():
    spec = importlib.util.spec_from_file_location("fake_emulator_tool", fake_emulator_path())
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
pattern_bytes = tool.pattern_bytes
DEFAULT_BODY_BYTES = tool.DEFAULT_BODY_BYTES

_sha_cache = {}


def pattern_sha256(n):
    """sha256 hex of pattern_bytes(0, n), computed in pieces and cached."""
    if n not in _sha_cache:
        h = hashlib.sha256()
        for piece in tool.iter_pattern(n):
            h.update(piece)
        _sha_cache[n] = h.hexdigest()
    return _sha_cache[n]


class FakeEmulator:
    """One running fake emulator. `address` is "HOST:PORT" as speedmon's config wants
    (127.0.0.1 unless "--host" says otherwise)."""

    def __init__(self, *args, startup_timeout=10.0, workdir=None):
        argv = [PYTHON, fake_emulator_path(), "--port", "0", "--quiet", *map(str, args)]
        self.proc = procs.Process(argv, name="fake_emulator", workdir=workdir)
        self.refusing = "--refuse" in args
        line = procs.wait_for(self._port_line, startup_timeout, what="fake emulator PORT line")
        self.port = int(line.split()[1])
        given = [str(a) for a in args]
        self.host = given[given.index("--host") + 1] if "--host" in given else "127.0.0.1"
        self.address = f"{self.host}:{self.port}"
        self.url = f"http://{self.address}"

    def _port_line(self):
        if not self.proc.alive():
            raise AssertionError(f"fake emulator exited {self.proc.returncode}: "
                                 f"{self.proc.stderr()}")
        first = self.proc.stdout().split("\n", 1)
        return first[0] if len(first) == 2 and first[0].startswith("PORT ") else None

    def _call(self, method, path, doc=None, timeout=10.0):
        data = None if doc is None else json.dumps(doc).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stats(self):
        """The fake's counters: requests, connections (that carried a counted request),
        connections_accepted, open_connections, in_flight, by_route {"POST /action": n},
        duplicate_request_ids, request_body_bytes, response_body_bytes."""
        return self._call("GET", "/_stats")

    def requests(self):
        """The last requests as the fake received them (method, target, headers, ...)."""
        return self._call("GET", "/_requests")["requests"]

    def reset_stats(self):
        self._call("POST", "/_reset", {})

    def control(self, **kw):
        """Changes status_code (for /status and /health), latency_ms or body_bytes."""
        return self._call("POST", "/_control", kw)

    def stop(self):
        return self.proc.stop()
