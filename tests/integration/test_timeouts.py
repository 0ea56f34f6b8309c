"""Each client deadline fires when it should, on a reused keep-alive connection too, and
is counted once under its reason: idle, header (also when a new request starts on a
connection whose idle deadline was further away), response_read (a client that stops
reading a stream); a connection that keeps sending requests is never cut by an idle
deadline set before them (the deadline is lazy: see DownstreamConn::SetDeadline)."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

TIMEOUTS = "pokemon_speedrun_downstream_timeouts_total"
UPSTREAM_ERRORS = "pokemon_speedrun_upstream_errors_total"
HEADER_S, IDLE_S, REQUEST_S = 1.0, 2.0, 2.0


class TimeoutsTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(
            self.fake, proxy={"header_timeout": f"{HEADER_S:g}s", "idle_timeout": f"{IDLE_S:g}s"},
            upstream={"request_timeout": f"{REQUEST_S:g}s"})

    def counts(self):
        s = self.sm.metrics()
        out = {r: prom.value_or_zero(s, TIMEOUTS, reason=r)
               for r in ("idle", "header", "request_body", "response_read")}
        out["upstream_timeout"] = prom.value_or_zero(
            s, UPSTREAM_ERRORS, upstream="emu", endpoint=self.fake.address, kind="timeout")
        return out

    def expect_counts(self, **nonzero):
        want = {"idle": 0, "header": 0, "request_body": 0, "response_read": 0,
                "upstream_timeout": 0}
        want.update(nonzero)
        self.assertEqual(self.counts(), want)

    def test_idle_keep_alive_connection_is_closed_after_idle_timeout(self):
        c = self.raw(self.sm.port)
        self.assertEqual(c.request("GET", "/status").status, 200)
        t0 = time.monotonic()
        self.assertTrue(c.closed_by_peer(timeout=IDLE_S + 3))
        waited = time.monotonic() - t0
        self.assertGreater(waited, IDLE_S - 0.3)
        self.assertLess(waited, IDLE_S + 1.5)
        self.expect_counts(idle=1)

    def test_requests_spread_over_longer_than_idle_timeout_keep_the_connection(self):
        c = self.raw(self.sm.port)
        t_end = time.monotonic() + IDLE_S * 2.5
        n = 0
        while time.monotonic() < t_end:
            self.assertEqual(c.request("GET", "/status").status, 200)
            n += 1
            time.sleep(IDLE_S / 4)
        self.assertGreater(n, 8)
        self.expect_counts()

    def test_header_deadline_on_a_reused_connection_is_not_the_idle_one(self):
        c = self.raw(self.sm.port)
        self.assertEqual(c.request("GET", "/status").status, 200)
        time.sleep(0.3)  # the idle deadline (IDLE_S away) is running
        c.send(b"GET /status HTTP/1.1\r\nHost: emu\r\nX-Slow: ")
        t0 = time.monotonic()
        resp = c.read_response()
        waited = time.monotonic() - t0
        self.assertEqual(resp.status, 408)
        self.assertIn(b'"error":"header_timeout"', resp.body)
        self.assertGreater(waited, HEADER_S - 0.3)
        self.assertLess(waited, HEADER_S + 0.8)
        self.assertTrue(c.closed_by_peer(timeout=5))
        self.expect_counts(header=1)

    def _stalled_reader(self, request):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(IDLE_S + 10)
        self.addCleanup(s.close)
        s.connect(("127.0.0.1", self.sm.port))
        s.sendall(request)
        return s

    def _drain_until_closed(self, s):
        """Reads what speedmon sent until it closes: (bytes read, closed)."""
        got = 0
        while True:
            try:
                d = s.recv(1 << 20)
            except ConnectionResetError:
                return got, True
            except socket.timeout:
                return got, False
            if not d:
                return got, True
            got += len(d)

    def test_client_that_stops_reading_a_stream_is_cut_as_response_read(self):
        size = 64 * 1024 * 1024
        s = self._stalled_reader(
            f"GET /bytes/{size} HTTP/1.1\r\nHost: emu\r\n\r\n".encode())
        time.sleep(IDLE_S + 1.5)
        got, closed = self._drain_until_closed(s)
        self.assertTrue(closed)
        self.assertLess(got, size)
        self.expect_counts(response_read=1)


if __name__ == "__main__":
    import unittest
    unittest.main()
