"""The access log: one JSON object a line per proxied request, flushed within a second
and at shutdown, with JSON-escaped paths."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402


class AccessLogTest(harness.HarnessTestCase):
    def test_one_json_line_per_request(self):
        fake = self.start_fake()
        log = os.path.join(self.workdir, "access.log")
        sm = self.proxy_for(fake, proxy={"access_log": log})
        c = self.raw(sm.port)
        r1 = c.request("GET", '/bytes/7?q="x"\\', [("X-Request-Id", "req-one")], b"")
        r2 = c.request("POST", "/echo", [], b"hello")
        self.assertEqual((r1.status, r2.status), (200, 200))
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline:
            if os.path.exists(log):
                with open(log) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            if len(lines) >= 2:
                break
            time.sleep(0.1)
        self.assertEqual(len(lines), 2, "two requests, two lines within the 1 s flush")
        first, second = lines
        self.assertEqual(set(first), {"time", "client", "upstream", "endpoint", "route",
                                      "method", "path", "status", "duration_ms",
                                      "request_bytes", "response_bytes", "request_id"})
        self.assertEqual(first["path"], '/bytes/7?q="x"\\')
        self.assertEqual(first["request_id"], "req-one")
        self.assertEqual(first["client"], "127.0.0.1")
        self.assertEqual(first["upstream"], "emu")
        self.assertEqual(first["endpoint"], fake.address)
        self.assertEqual((first["method"], first["status"], first["response_bytes"]),
                         ("GET", 200, 7))
        self.assertEqual((second["method"], second["path"], second["request_bytes"],
                          second["response_bytes"]), ("POST", "/echo", 5, 5))
        self.assertGreaterEqual(second["time"], first["time"])

    def test_errors_are_logged_and_flushed_at_shutdown(self):
        log = os.path.join(self.workdir, "access.log")
        cfg = harness.proxy_config({"emu": ["127.0.0.1:1"]}, proxy={"access_log": log})
        sm = self.start_speedmon(cfg)
        r = self.raw(sm.port).request("GET", "/status", [], b"")
        self.assertEqual(r.status, 503)
        self.assertEqual(sm.stop(), 0)
        with open(log) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["status"], 503)

    def test_sigusr1_reopens_the_log_after_rotation(self):
        fake = self.start_fake()
        log = os.path.join(self.workdir, "access.log")
        sm = self.proxy_for(fake, proxy={"access_log": log}, workers=2)
        c = self.raw(sm.port)

        def lines(path, n):
            deadline = time.time() + 5
            got = []
            while time.time() < deadline:
                if os.path.exists(path):
                    with open(path) as f:
                        got = [json.loads(line)["path"] for line in f if line.strip()]
                if len(got) >= n:
                    break
                time.sleep(0.1)
            return got

        for p in ("/bytes/1", "/bytes/2"):
            self.assertEqual(c.request("GET", p).status, 200)
        self.assertEqual(lines(log, 2), ["/bytes/1", "/bytes/2"])
        os.rename(log, log + ".1")  # what logrotate does
        self.assertEqual(c.request("GET", "/bytes/3").status, 200)
        sm.signal(signal.SIGUSR1)
        # The line written before the signal went to the renamed file; SIGUSR1 opens a new one.
        self.assertEqual(lines(log + ".1", 3), ["/bytes/1", "/bytes/2", "/bytes/3"])
        deadline = time.time() + 5
        while not os.path.exists(log) and time.time() < deadline:
            time.sleep(0.05)
        for p in ("/bytes/4", "/bytes/5"):
            self.assertEqual(c.request("GET", p).status, 200)
        self.assertEqual(lines(log, 2), ["/bytes/4", "/bytes/5"])
        self.assertEqual(lines(log + ".1", 3), ["/bytes/1", "/bytes/2", "/bytes/3"])
        self.assertIn("SIGUSR1: reopening the access log", sm.stderr())


if __name__ == "__main__":
    import unittest
    unittest.main()
