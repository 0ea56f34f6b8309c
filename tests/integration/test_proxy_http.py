"""speedmon's HTTP behaviour as a proxy: upstream keep-alive reuse, pipelining, HTTP/1.0,
forwarded and hop-by-hop headers, and a POST /action that is never sent twice.
"""

import json
import os
import sys
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import REQUEST_ID, pattern_bytes  # noqa: E402

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def header_values(pairs, name):
    return [v for n, v in pairs if n.lower() == name.lower()]


class KeepAliveTest(harness.HarnessTestCase):
    WORKERS = 2

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, workers=self.WORKERS)
        self.fake.reset_stats()

    def test_sequential_requests_on_one_client_connection_reuse_upstream(self):
        c = self.raw(self.sm.port)
        for i in range(100):
            r = c.request("GET", f"/bytes/{i}")
            self.assertEqual((r.status, r.body), (200, pattern_bytes(0, i)))
        stats = self.fake.stats()
        self.assertEqual(stats["requests"], 100)
        self.assertLessEqual(stats["connections"], self.WORKERS, stats)

    def test_new_client_connections_reuse_upstream(self):
        for i in range(50):
            with harness.RawHttp(self.sm.port) as c:
                self.assertEqual(c.request("GET", "/bytes/10").status, 200)
        stats = self.fake.stats()
        self.assertEqual(stats["requests"], 50)
        self.assertLessEqual(stats["connections"], self.WORKERS, stats)

    def test_agent_session_presses_each_action_once(self):
        s = requests.Session()
        self.addCleanup(s.close)
        self.assertEqual(s.post(self.sm.url + "/initialize", json={}).status_code, 200)
        for step in range(1, 101):
            r = s.post(self.sm.url + "/action", json={"action_type": "press_key", "keys": ["a"]})
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.json()["step_number"], step)
        stats = self.fake.stats()
        self.assertEqual(stats["by_route"], {"POST /initialize": 1, "POST /action": 100})
        self.assertEqual(stats["duplicate_request_ids"], [])
        self.assertLessEqual(stats["connections"], self.WORKERS, stats)

    def test_upstream_closing_its_side_is_not_an_error(self):
        c = self.raw(self.sm.port)
        for i in range(10):
            r = c.request("GET", "/bytes/100?close=1")
            self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 100)), i)
        self.assertEqual(self.fake.stats()["requests"], 10)


class PipeliningTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, workers=2)

    def test_pipelined_requests_answered_in_order(self):
        c = self.raw(self.sm.port)
        reqs = [("GET", "/misbehave/slow?ms=300&bytes=3", [], b""),
                ("POST", "/echo", [], b"second"),
                ("GET", "/bytes/70000?chunked=1", [], b""),
                ("HEAD", "/bytes/9", [], b""),
                ("POST", "/echo", [], pattern_bytes(1, 200000)),
                ("GET", "/bytes/0", [], b""),
                ("GET", "/misbehave/slow?ms=100&bytes=5", [], b""),
                ("GET", "/bytes/5", [], b"")]
        rs = c.pipeline(reqs)
        self.assertEqual([r.status for r in rs], [200] * len(reqs))
        self.assertEqual([r.body for r in rs],
                         [pattern_bytes(0, 3), b"second", pattern_bytes(0, 70000), b"",
                          pattern_bytes(1, 200000), b"", pattern_bytes(0, 5),
                          pattern_bytes(0, 5)])
        self.assertEqual(rs[3].header("content-length"), "9")
        ids = [r.header("x-request-id") for r in rs]
        self.assertEqual(len(set(ids)), len(reqs))
        # The connection is still usable afterwards.
        self.assertEqual(c.request("GET", "/bytes/4").body, pattern_bytes(0, 4))

    def test_many_pipelined_requests_in_one_write(self):
        c = self.raw(self.sm.port)
        rs = c.pipeline([("GET", f"/bytes/{i}", [], b"") for i in range(50)])
        self.assertEqual([r.body for r in rs], [pattern_bytes(0, i) for i in range(50)])
        self.assertEqual(self.fake.stats()["by_route"]["GET /bytes/49"], 1)


class Http10Test(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake)

    def test_http10_request_gets_its_body_then_close(self):
        c = self.raw(self.sm.port)
        r = c.request("GET", "/bytes/1000", version="HTTP/1.0", host=None)
        self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 1000)))
        self.assertClosed(c)

    def test_chunked_upstream_answer_is_not_chunked_to_http10(self):
        c = self.raw(self.sm.port)
        r = c.request("GET", "/bytes/70000?chunked=1", version="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertFalse(r.chunked)
        self.assertEqual(r.body, pattern_bytes(0, 70000))

    def test_http10_post_with_body(self):
        c = self.raw(self.sm.port)
        r = c.request("POST", "/echo", [], b"hello 1.0", version="HTTP/1.0")
        self.assertEqual((r.status, r.body), (200, b"hello 1.0"))
        self.assertClosed(c)


class HeadersTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake)
        self.c = self.raw(self.sm.port)

    def received(self, headers, target="/headers", method="GET", body=b""):
        r = self.c.request(method, target, headers, body)
        self.assertEqual(r.status, 200, r.body[:300])
        return r, r.json()["headers"]

    def test_forwarded_headers_added_and_request_id_generated(self):
        r, got = self.received([("X-Custom", "kept")])
        self.assertEqual(header_values(got, "x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(header_values(got, "x-forwarded-proto"), ["http"])
        ids = header_values(got, "x-request-id")
        self.assertEqual(len(ids), 1)
        self.assertRegex(ids[0], REQUEST_ID)
        self.assertEqual(r.header("x-request-id"), ids[0])
        self.assertEqual(header_values(got, "x-custom"), ["kept"])
        self.assertEqual(header_values(got, "host"), ["127.0.0.1"])
        r2, got2 = self.received([])
        self.assertNotEqual(header_values(got2, "x-request-id"), ids)

    def test_existing_forwarded_for_is_appended_and_request_id_kept(self):
        r, got = self.received([("X-Forwarded-For", "203.0.113.7"),
                                ("X-Request-Id", "agent-req-0001")])
        self.assertEqual(header_values(got, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"])
        self.assertEqual(header_values(got, "x-request-id"), ["agent-req-0001"])
        self.assertEqual(r.header("x-request-id"), "agent-req-0001")

    def test_hop_by_hop_request_headers_are_not_forwarded(self):
        r, got = self.received([
            ("Connection", "keep-alive, X-Drop-Me"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Trailer", "X-T"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("X-Drop-Me", "secret"),
            ("X-A", "1"), ("X-A", "2"), ("Accept", "*/*")])
        names = {n.lower() for n, _ in got}
        self.assertEqual(names & HOP_BY_HOP, set(), got)
        self.assertNotIn("x-drop-me", names)
        self.assertEqual(header_values(got, "x-a"), ["1", "2"])
        self.assertEqual(header_values(got, "accept"), ["*/*"])

    def test_upgrade_header_is_not_forwarded(self):
        _, got = self.received([("Upgrade", "h2c")])
        self.assertEqual(header_values(got, "upgrade"), [])

    def test_end_to_end_headers_keep_their_order(self):
        sent = [(f"X-H{i:02d}", f"v{i}") for i in range(40)]
        _, got = self.received(sent)
        mine = [(n, v) for n, v in got if n.startswith("X-H")]
        self.assertEqual(mine, sent)

    def test_hop_by_hop_response_headers_are_not_forwarded(self):
        r = self.c.request("GET", "/bytes/3?h=Keep-Alive:timeout=99&h=Connection:X-Secret"
                           "&h=X-Secret:1&h=X-Kept:yes&h=Proxy-Authenticate:Basic")
        self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 3)))
        self.assertEqual(r.header_values("x-kept"), ["yes"])
        self.assertEqual(r.header_values("x-secret"), [])
        self.assertEqual(r.header_values("proxy-authenticate"), [])
        self.assertNotIn("timeout=99", r.header_values("keep-alive"))
        self.assertRegex(r.header("x-request-id"), REQUEST_ID)

    def test_echo_headers_dump_matches(self):
        r = self.c.request("POST", "/echo", [("X-Custom", "v")], b"abc")
        dump = json.loads(r.header("x-echo-headers"))
        self.assertEqual(header_values(dump, "x-custom"), ["v"])
        self.assertEqual(header_values(dump, "x-forwarded-proto"), ["http"])


if __name__ == "__main__":
    unittest.main()
