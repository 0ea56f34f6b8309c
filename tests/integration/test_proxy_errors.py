"""Every error speedmon answers itself: its status, its JSON body, its counters, and the
proxy still serving afterwards.

  no_healthy_endpoint 503, connect_failed 503, upstream_timeout 504, upstream_reset 502,
  bad_upstream_response 502, bad_request 400 (+close), headers_too_large 431 (+close),
  header_timeout 408 (+close); an upstream failing after the response head closes the
  client connection.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import TruncatedResponse, pattern_bytes, prom  # noqa: E402

REQ = "pokemon_speedrun_http_requests_total"
UP_ERRORS = "pokemon_speedrun_upstream_errors_total"
HEALTHY = "pokemon_speedrun_upstream_healthy"


class ServingMixin:
    def assertStillServing(self, port):
        with harness.RawHttp(port) as c:
            r = c.request("GET", "/bytes/1000")
            self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 1000)))


class UpstreamFailureTest(ServingMixin, harness.HarnessTestCase):
    """One misbehaving fake behind upstream "emu": request_timeout 2s bounds the wait for
    the response head, [proxy] idle_timeout 3s a body that stops moving."""

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, upstream={"request_timeout": "2s"},
                                 proxy={"idle_timeout": "3s"})

    def waitErrors(self, kind, n):
        self.waitMetric(self.sm, n, UP_ERRORS, upstream="emu", endpoint=self.fake.address,
                        kind=kind)

    def assertCounted(self, code, kind, route="misbehave", n=1):
        """n requests answered `code` on `route`, and n upstream errors of `kind`, the only
        upstream errors."""
        errors = {frozenset({"upstream": "emu", "endpoint": self.fake.address,
                             "kind": kind}.items()): float(n)}
        self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, REQ, upstream="emu", route=route, method="GET",
                                         code=str(code)) == n
            and prom.nonzero(s, UP_ERRORS) == errors,
            what=f"{n}x code {code} on {route} and {n} {kind} errors")

    def test_upstream_timeout_before_head_is_504(self):
        c = self.raw(self.sm.port)
        r = c.request("GET", "/misbehave/hang")
        body = self.assertSpeedmonError(r, "upstream_timeout", 504)
        self.assertEqual(r.header("x-request-id"), body["request_id"])
        self.assertCounted(504, "timeout")
        self.assertStillServing(self.sm.port)

    def test_upstream_timeout_on_an_api_route_keeps_the_route_label(self):
        c = self.raw(self.sm.port)
        r = c.request("GET", "/status?misbehave=hang")
        self.assertSpeedmonError(r, "upstream_timeout", 504)
        self.assertCounted(504, "timeout", route="status")

    def test_upstream_timeout_after_head_closes_the_client_connection(self):
        c = self.raw(self.sm.port)
        with self.assertRaises(TruncatedResponse) as cm:
            c.request("GET", "/misbehave/hang-body?bytes=1000")
        self.assertEqual(cm.exception.response.status, 200)
        self.assertEqual(cm.exception.response.body, b"")
        self.waitErrors("timeout", 1)
        self.assertStillServing(self.sm.port)

    def test_reset_before_head_is_502(self):
        for mode in ("reset", "close-without-response"):
            with self.subTest(mode=mode):
                r = self.raw(self.sm.port).request("GET", f"/misbehave/{mode}")
                self.assertSpeedmonError(r, "upstream_reset", 502)
                self.assertStillServing(self.sm.port)
        self.assertCounted(502, "reset", n=2)

    def test_malformed_response_is_502(self):
        for mode in ("malformed", "malformed-header"):
            with self.subTest(mode=mode):
                r = self.raw(self.sm.port).request("GET", f"/misbehave/{mode}")
                self.assertSpeedmonError(r, "bad_upstream_response", 502)
                self.assertStillServing(self.sm.port)
        self.assertCounted(502, "bad_response", n=2)

    def test_reset_after_head_truncates_and_closes(self):
        for i, mode in enumerate(("reset-mid-body", "close-mid-body"), 1):
            with self.subTest(mode=mode):
                c = self.raw(self.sm.port)
                with self.assertRaises(TruncatedResponse) as cm:
                    c.request("GET", f"/misbehave/{mode}?bytes=100000&ms=500")
                resp = cm.exception.response
                self.assertEqual(resp.status, 200)
                self.assertLessEqual(len(resp.body), 50000)
                self.assertEqual(resp.body, pattern_bytes(0, len(resp.body)))
                self.waitErrors("reset", i)
                self.assertStillServing(self.sm.port)

    def test_a_post_that_failed_is_not_sent_again(self):
        c = self.raw(self.sm.port)
        r = c.request("POST", "/action?misbehave=close-without-response", [], b"{}")
        self.assertSpeedmonError(r, "upstream_reset", 502)
        self.assertEqual(self.fake.stats()["by_route"]["POST /action"], 1)


class ConnectFailureTest(ServingMixin, harness.HarnessTestCase):
    def test_connect_failed_after_trying_every_endpoint(self):
        good = self.start_fake()
        dead = self.start_fakes(2, "--refuse")
        sm = self.start_speedmon(harness.proxy_config(
            {"emu": [good.address], "dead": [d.address for d in dead]}))
        r = self.raw(sm.listener_port("dead")).request("POST", "/action", [], b"{}")
        self.assertSpeedmonError(r, "connect_failed", 503, upstream="dead")
        samples = self.waitMetric(sm, 1, REQ, upstream="dead", route="action", method="POST",
                          code="503")
        self.assertEqual(prom.nonzero(samples, UP_ERRORS), {
            frozenset({"upstream": "dead", "endpoint": d.address, "kind": "connect"}.items()):
                1.0 for d in dead})
        self.assertStillServing(sm.listener_port("emu"))
        r = self.raw(sm.listener_port("dead")).request("GET", "/status")
        self.assertSpeedmonError(r, "connect_failed", 503, upstream="dead")

    def test_a_refused_connect_is_retried_on_another_endpoint(self):
        good = self.start_fake()
        dead = self.start_fake("--refuse")
        sm = self.start_speedmon(harness.proxy_config({"emu": [dead.address, good.address]}))
        c = self.raw(sm.port)
        for step in range(1, 21):
            r = c.request("POST", "/action", [], b'{"action_type":"press_key"}')
            self.assertEqual((r.status, r.json()["step_number"]), (200, step))
        stats = good.stats()
        self.assertEqual(stats["by_route"], {"POST /action": 20})
        self.assertEqual(stats["duplicate_request_ids"], [])
        samples = self.waitMetric(sm, 20, REQ, upstream="emu", route="action", method="POST",
                                  code="200")
        self.assertEqual(prom.nonzero(samples, UP_ERRORS, kind="timeout"), {})


class NoHealthyEndpointTest(ServingMixin, harness.HarnessTestCase):
    def test_no_healthy_endpoint_then_recovery(self):
        fake = self.start_fake("--status-code", "503")
        sm = self.proxy_for(fake, health_check={
            "path": "/status", "interval": "200ms", "timeout": "200ms", "healthy_threshold": 1,
            "unhealthy_threshold": 1})

        def healthy():
            return sm.get_json("/api/v1/upstreams")["upstreams"][0]["endpoints"][0]["healthy"]
        harness.wait_for(lambda: healthy() is False, 10, what="endpoint marked unhealthy")
        self.assertEqual(sm.get("/ready")[0], 503)
        self.waitMetric(sm, 0, HEALTHY, upstream="emu", endpoint=fake.address)
        fake.reset_stats()
        r = self.raw(sm.port).request("GET", "/bytes/10")
        self.assertSpeedmonError(r, "no_healthy_endpoint", 503)
        self.assertNotIn("GET /bytes/10", fake.stats()["by_route"])
        samples = self.waitMetric(sm, 1, REQ, upstream="emu", route="bytes", method="GET",
                                  code="503")
        self.assertEqual(prom.nonzero(samples, UP_ERRORS), {})

        fake.control(status_code=200)
        harness.wait_for(lambda: healthy() is True, 10, what="endpoint healthy again")
        self.assertEqual(sm.get("/ready")[0], 200)
        self.waitMetric(sm, 1, HEALTHY, upstream="emu", endpoint=fake.address)
        self.assertStillServing(sm.port)


class ClientErrorTest(ServingMixin, harness.HarnessTestCase):
    BAD_REQUESTS = {
        "request line": b"GARBAGE\r\n\r\n",
        "header line": b"GET /bytes/1 HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        "CL and TE": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "two CLs": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                   b"Content-Length: 4\r\n\r\nabcd",
        "chunk size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nabc\r\n0\r\n\r\n",
    }

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, proxy={"max_header_bytes": 8192,
                                                   "header_timeout": "1s"})

    def assertCodes(self, code, n):
        self.waitMetricSum(self.sm, n, REQ, code=str(code))

    def test_malformed_requests_are_400_then_close(self):
        for what, raw in self.BAD_REQUESTS.items():
            with self.subTest(what=what):
                c = self.raw(self.sm.port)
                c.send(raw)
                self.assertSpeedmonError(c.read_response(), "bad_request", 400, upstream=...)
                self.assertClosed(c)
                self.assertStillServing(self.sm.port)
        self.assertCodes(400, len(self.BAD_REQUESTS))
        seen = self.fake.stats()["by_route"]
        self.assertNotIn("GET /bytes/1", seen)  # never forwarded
        self.assertLessEqual(seen.get("POST /echo", 0), 1)  # at most the bad-chunk head

    def test_malformed_request_after_a_good_one_on_the_same_connection(self):
        c = self.raw(self.sm.port)
        self.assertEqual(c.request("GET", "/bytes/5").body, pattern_bytes(0, 5))
        c.send(b"GET /bytes/1 HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        self.assertSpeedmonError(c.read_response(), "bad_request", 400, upstream=...)
        self.assertClosed(c)

    def test_head_over_max_header_bytes_is_431_then_close(self):
        ok = self.raw(self.sm.port).request("GET", "/bytes/3", [("X-Big", "a" * 4000)])
        self.assertEqual(ok.status, 200)
        c = self.raw(self.sm.port)
        c.send(harness.build_request("GET", "/bytes/3", [("X-Big", "a" * 16384)]))
        self.assertSpeedmonError(c.read_response(), "headers_too_large", 431, upstream=...)
        self.assertClosed(c)
        self.assertCodes(431, 1)
        self.assertEqual(self.fake.stats()["by_route"]["GET /bytes/3"], 1)  # only the ok one
        self.assertStillServing(self.sm.port)

    def test_slow_head_is_408_then_close(self):
        c = self.raw(self.sm.port)
        c.send(b"GET /bytes/1 HTTP/1.1\r\nHost: x\r\n")
        self.assertSpeedmonError(c.read_response(), "header_timeout", 408, upstream=...)
        self.assertClosed(c)
        self.assertCodes(408, 1)
        self.assertStillServing(self.sm.port)


if __name__ == "__main__":
    unittest.main()
