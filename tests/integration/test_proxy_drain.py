"""SIGTERM drains: new connections are refused, the request in flight completes with 200,
idle keep-alive connections are closed, and speedmon exits 0 (also when drain_timeout
runs out).
"""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import pattern_bytes  # noqa: E402


class DrainTest(harness.HarnessTestCase):
    def test_in_flight_request_completes_and_new_connections_are_refused(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake, workers=2, proxy={"drain_timeout": "30s"})
        busy = self.raw(sm.port, timeout=60)
        busy.send(harness.build_request("GET", "/misbehave/slow?ms=8000&bytes=5000"))
        harness.wait_for(lambda: fake.stats()["in_flight"] == 1, 10, what="request in flight")

        sm.signal(signal.SIGTERM)
        harness.wait_for(lambda: harness.connect_refused(sm.port), 5,
                         what="the listener to refuse new connections")
        # Refused while the slow request is still being served, not because speedmon left.
        self.assertIsNone(sm.proc.returncode, sm.stderr())
        self.assertEqual(fake.stats()["in_flight"], 1)

        r = busy.read_response()
        self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 5000)))
        self.assertEqual(sm.wait(30), 0, sm.stderr())

    def test_idle_keep_alive_connections_are_closed(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake, proxy={"drain_timeout": "30s"})
        idle = self.raw(sm.port)
        self.assertEqual(idle.request("GET", "/bytes/10").status, 200)
        sm.signal(signal.SIGTERM)
        self.assertEqual(sm.wait(30), 0, sm.stderr())
        self.assertClosed(idle)

    def test_drain_timeout_ends_a_hung_request_and_exits_zero(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake, proxy={"drain_timeout": "1s"})
        hung = self.raw(sm.port)
        hung.send(harness.build_request("GET", "/misbehave/hang"))
        harness.wait_for(lambda: fake.stats()["in_flight"] == 1, 10, what="request in flight")
        sm.signal(signal.SIGTERM)
        self.assertEqual(sm.wait(30), 0, sm.stderr())
        try:  # speedmon may or may not answer the abandoned request; it must close it
            hung.read_response()
        except harness.TruncatedResponse:
            pass
        self.assertClosed(hung)


if __name__ == "__main__":
    unittest.main()
