"""Bytes that are not UTF-8, or not text at all, from the agent and from admin clients:
speedmon keeps running, every JSON it writes parses strictly, valid UTF-8 survives as is
and each ill-formed sequence reads back as U+FFFD."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

REPLACEMENT = "\ufffd"
COMPONENTS = ("admin", "proxy", "store", "notifier", "health", "alerting", "lifecycle")


def strict_json(body):
    """json.loads on bytes that must be UTF-8 (a decode error fails the test)."""
    return json.loads(body.decode("utf-8", errors="strict"))


class HostileBytesTest(harness.HarnessTestCase):
    def wait_log_lines(self, log, n):
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline:
            if os.path.exists(log):
                with open(log, "rb") as f:
                    lines = [strict_json(line) for line in f if line.strip()]
            if len(lines) >= n:
                break
            time.sleep(0.1)
        return lines

    def test_non_utf8_path_read_back_by_the_status_page_keeps_speedmon_up(self):
        fake = self.start_fake()
        log = os.path.join(self.workdir, "access.log")
        sm = self.proxy_for(fake, proxy={"access_log": log})
        c = self.raw(sm.port)
        # Targets are sent as latin-1: "\xff" is the byte 0xFF, "\xc3\xa9" the UTF-8 of é.
        r1 = c.request("GET", "/st\xffatus", [("X-Request-Id", "id-\xfe")], b"")
        r2 = c.request("GET", "/action/\xc3\xa9", [], b"")
        self.assertEqual((r1.status, r2.status), (404, 404))  # the fake's own answer

        # A request is recorded when its exchange ends on the worker, just after the answer.
        deadline = time.time() + 5
        while True:
            status, _, body = sm.get("/api/v1/requests?limit=10")
            self.assertEqual(status, 200)
            got = strict_json(body)["requests"]
            if len(got) >= 2 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual([r["path"] for r in got], ["/action/\u00e9", "/st" + REPLACEMENT + "atus"])
        # A request id outside visible ASCII is replaced by a generated one.
        self.assertRegex(got[1]["request_id"], "^[0-9a-f]{32}$")
        self.assertEqual(got[1]["request_id"], r1.header("X-Request-Id"))
        # Still proxying, and the admin API still answers.
        self.assertEqual(c.request("GET", "/status", [], b"").status, 200)
        self.assertEqual(sm.get("/healthz")[0], 200)

        lines = self.wait_log_lines(log, 3)
        self.assertEqual([line["path"] for line in lines],
                         ["/st" + REPLACEMENT + "atus", "/action/\u00e9", "/status"])
        self.assertEqual(lines[0]["request_id"], r1.header("X-Request-Id"))

    def test_error_answer_echoes_the_request_id_as_valid_json(self):
        cfg = harness.proxy_config({"emu": ["127.0.0.1:1"]})
        sm = self.start_speedmon(cfg)
        c = self.raw(sm.port)
        r = c.request("GET", "/x", [("X-Request-Id", 'a"b\\c')], b"")
        self.assertEqual(r.status, 503)
        self.assertEqual(strict_json(r.body),
                         {"error": "connect_failed", "status": 503, "upstream": "emu",
                          "request_id": 'a"b\\c'})
        self.assertEqual(r.header("X-Request-Id"), 'a"b\\c')
        r = c.request("GET", "/st\xffatus", [("X-Request-Id", "id\xff")], b"")
        self.assertEqual(r.status, 503)
        self.assertRegex(strict_json(r.body)["request_id"], "^[0-9a-f]{32}$")

    def test_admin_ids_from_the_url(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        admin = self.raw(sm.admin_port)
        r = admin.request("DELETE", "/api/v1/alert-rules/%zz", [], b"")
        self.assertEqual(r.status, 400)
        self.assertEqual(strict_json(r.body),
                         {"error": "rule id has a malformed %-escape", "field": "id"})
        r = admin.request("DELETE", "/api/v1/alert-rules/%FF%FE", [], b"")
        self.assertEqual(r.status, 404)
        self.assertIn(REPLACEMENT, strict_json(r.body)["error"])
        r = admin.request("POST", "/api/v1/patterns/%FF/reuse", [], b"")
        self.assertEqual(r.status, 400)
        self.assertEqual(strict_json(r.body),
                         {"error": "pattern_id must be UTF-8", "field": "pattern_id"})
        r = admin.request("GET", "/no/such/\xff", [], b"")
        self.assertEqual(r.status, 404)
        self.assertEqual(strict_json(r.body)["error"], "no such path: /no/such/" + REPLACEMENT)
        self.assertEqual(sm.get("/healthz")[0], 200)

    def test_internal_errors_are_exported_from_the_start(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        samples = sm.metrics()
        for component in COMPONENTS:
            with self.subTest(component=component):
                self.assertMetric(samples, 0, "pokemon_speedrun_internal_errors_total",
                                  component=component)


if __name__ == "__main__":
    import unittest
    unittest.main()
