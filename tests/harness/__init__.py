"""Shared helpers for speedmon's Python tests (tests/integration, tests/e2e).

Put tests/ on sys.path and `import harness`:
  harness.free_port(), harness.Process, harness.wait_for      processes and ports
  harness.FakeEmulator, harness.pattern_bytes/pattern_sha256  tools/fake_emulator.py
  harness.Speedmon, harness.proxy_config, harness.toml_dumps  $SPEEDMON_BIN on loopback
  harness.RawHttp, harness.build_request, TruncatedResponse   byte-exact HTTP client
  harness.prom.parse / value / value_or_zero / sum_values     /metrics as numbers
  harness.HarnessTestCase                                     unittest base with cleanups
"""

from . import prom
from .case import REQUEST_ID, HarnessTestCase
from .fake import FakeEmulator, pattern_bytes, pattern_sha256
from .procs import Process, free_port, free_ports, temp_dir, wait_for
from .rawhttp import RawHttp, Response, TruncatedResponse, build_request, connect_refused
from .speedmon import (DEFAULT_ROUTES, Speedmon, SpeedmonMissing, proxy_config, speedmon_bin,
                       toml_dumps)

__all__ = [
    "prom", "REQUEST_ID", "HarnessTestCase", "FakeEmulator", "pattern_bytes", "pattern_sha256",
    "Process", "free_port", "free_ports", "temp_dir", "wait_for", "RawHttp", "Response",
    "TruncatedResponse", "build_request", "connect_refused", "DEFAULT_ROUTES", "Speedmon",
    "SpeedmonMissing", "proxy_config", "speedmon_bin", "toml_dumps",
]
