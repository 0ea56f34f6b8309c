"""Tests of tools/fake_emulator.py and the harness on their own (no speedmon).

The proxy tests trust the fake to be byte-exact and to misbehave exactly as asked;
these tests are that trust's basis.
"""

import base64
import hashlib
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import TruncatedResponse, pattern_bytes, pattern_sha256, prom  # noqa: E402

MIB = 1024 * 1024
SIZES = [0, 1, 64 * 1024, 10 * MIB]


class FakeTestCase(harness.HarnessTestCase):
    """One shared fake for the read-mostly tests (its stats are reset per test)."""

    fake = None

    @classmethod
    def setUpClass(cls):
        cls.fake = harness.FakeEmulator()
        cls.addClassCleanup(cls.fake.stop)

    def setUp(self):
        super().setUp()
        self.fake.reset_stats()

    def conn(self):
        return self.raw(self.fake.port)


class PatternTest(unittest.TestCase):
    def test_blocks_carry_their_offset(self):
        data = pattern_bytes(0, 512)
        self.assertEqual(data[:16], b"000000000000000\n")
        self.assertEqual(data[16:256], bytes(range(240)))
        self.assertEqual(data[256:272], b"000000000000100\n")
        self.assertEqual(data[272:512], bytes(range(1, 241)))

    def test_any_window_is_a_slice_of_the_stream(self):
        whole = pattern_bytes(0, 10000)
        for off, n in [(0, 0), (0, 1), (255, 2), (256, 256), (1000, 3333), (9999, 1)]:
            self.assertEqual(pattern_bytes(off, n), whole[off:off + n], (off, n))

    def test_every_byte_value_occurs(self):
        self.assertEqual(len(set(pattern_bytes(0, 256 * 256))), 256)

    def test_sha_matches_the_bytes(self):
        n = 3 * MIB + 7
        self.assertEqual(pattern_sha256(n), hashlib.sha256(pattern_bytes(0, n)).hexdigest())


class PromParserTest(unittest.TestCase):
    TEXT = (
        '# HELP a_total Things.\n# TYPE a_total counter\n'
        'a_total{code="200",route="action"} 10\n'
        'a_total{code="404",route="other"} 2\n'
        'b{x="q\\"uote\\\\slash\\nnl"} 1.5e3 1700000000000\n'
        'c +Inf\nd -Inf\n'
        'h_bucket{le="0.1"} 3\nh_bucket{le="+Inf"} 4\nh_sum 0.25\nh_count 4\n')

    def test_samples_are_keyed_by_name_and_label_set(self):
        s = prom.parse(self.TEXT)
        self.assertEqual(prom.value(s, "a_total", code="200", route="action"), 10.0)
        self.assertEqual(prom.value(s, "a_total", code="200"), None)
        self.assertEqual(prom.value_or_zero(s, "a_total", code="500", route="x"), 0.0)
        self.assertEqual(prom.sum_values(s, "a_total"), 12.0)
        self.assertEqual(prom.value(s, "b", x='q"uote\\slash\nnl'), 1500.0)
        self.assertEqual(prom.value(s, "c"), float("inf"))
        self.assertEqual(prom.value(s, "d"), float("-inf"))
        self.assertEqual(prom.value(s, "h_bucket", le="+Inf"), 4.0)
        self.assertEqual(prom.value(s, "h_count"), 4.0)
        self.assertEqual(len(s), 9)
        full = prom.parse_full(self.TEXT)
        self.assertEqual(full.types, {"a_total": "counter"})
        self.assertEqual(full.helps, {"a_total": "Things."})

    def test_garbage_raises(self):
        for bad in ['x{a="1"', 'x{a=1} 2', "x", 'x{a="1"}3', "x 1 2 3", "x abc",
                    'x{a="1",a="2"} 1', 'x{a="\\q"} 1', "x 1\nx 2", '{a="1"} 1']:
            with self.assertRaises(ValueError, msg=bad):
                prom.parse(bad)


class ApiTest(FakeTestCase):
    def test_agent_session(self):
        c = self.conn()
        r = c.request("POST", "/initialize", [("Content-Type", "application/json")],
                      b'{"headless": true, "sound": false}')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(len(r.body), harness.fake.DEFAULT_BODY_BYTES)
        doc = r.json()
        self.assertEqual(doc["step_number"], 0)
        shot = base64.b64decode(doc["screenshot_base64"], validate=True)
        self.assertEqual(shot, pattern_bytes(0, len(shot)))
        for step in range(1, 4):
            r = c.request("POST", "/action", [], b'{"action_type":"press_key","keys":["a"]}')
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), 30 * 1024)
            self.assertEqual(r.json()["step_number"], step)
            self.assertEqual(r.json()["action"], {"action_type": "press_key", "keys": ["a"]})
        self.assertEqual(c.request("GET", "/status").json(),
                         {"status": "running", "steps_taken": 3})
        self.assertEqual(c.request("GET", "/evaluate").json()["score"], 4.5)
        self.assertEqual(c.request("POST", "/save_state").status, 200)
        self.assertEqual(c.request("POST", "/stop").json(),
                         {"status": "stopped", "steps_taken": 3})
        for method, path in [("POST", "/input"), ("GET", "/state"), ("POST", "/reset"),
                             ("GET", "/health"), ("POST", "/checkpoint/load")]:
            self.assertEqual(c.request(method, path).status, 200, path)
        stats = self.fake.stats()
        self.assertEqual(stats["by_route"]["POST /action"], 3)
        self.assertEqual(stats["requests"], 13)
        self.assertEqual(stats["connections"], 1)

    def test_unknown_path_is_404_and_wrong_method_405(self):
        c = self.conn()
        r = c.request("GET", "/nope")
        self.assertEqual((r.status, r.json()), (404, {"error": "not found", "path": "/nope"}))
        r = c.request("GET", "/action")
        self.assertEqual((r.status, r.header("allow")), (405, "POST"))

    def test_body_size_and_chunked_flags(self):
        fake = self.start_fake("--body-bytes", "50001", "--chunked")
        r = self.raw(fake.port).request("POST", "/action", [], b"{}")
        self.assertTrue(r.chunked)
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(len(r.body), 50001)
        self.assertEqual(r.json()["step_number"], 1)

    def test_status_code_flag_and_runtime_control(self):
        fake = self.start_fake("--status-code", "503")
        c = self.raw(fake.port)
        self.assertEqual(c.request("GET", "/status").status, 503)
        self.assertEqual(c.request("GET", "/health").status, 503)
        self.assertEqual(fake.control(status_code=200)["status_code"], 200)
        self.assertEqual(c.request("GET", "/status").status, 200)

    def test_refuse_flag(self):
        fake = self.start_fake("--refuse")
        self.assertTrue(harness.connect_refused(fake.port))

    def test_latency_flag_still_answers(self):
        fake = self.start_fake("--latency-ms", "50")
        self.assertEqual(self.raw(fake.port).request("GET", "/status").status, 200)


class BodyTest(FakeTestCase):
    def test_bytes_content_length_and_chunked(self):
        c = self.conn()
        for n in SIZES:
            for chunked in (False, True):
                r = c.request("GET", f"/bytes/{n}" + ("?chunked=1" if chunked else ""))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.chunked, chunked)
                if not chunked:
                    self.assertEqual(r.header("content-length"), str(n))
                self.assertEqual(r.body, pattern_bytes(0, n), (n, chunked))

    def test_head_bytes_has_length_no_body(self):
        c = self.conn()
        r = c.request("HEAD", "/bytes/12345")
        self.assertEqual((r.status, r.header("content-length"), r.body), (200, "12345", b""))
        self.assertEqual(c.request("GET", "/bytes/3").body, pattern_bytes(0, 3))

    def test_hundred_megabytes_streamed(self):
        n = 100 * MIB
        h = hashlib.sha256()
        r = self.conn().request("GET", f"/bytes/{n}", sink=h.update)
        self.assertEqual((r.status, r.body_length), (200, n))
        self.assertEqual(h.hexdigest(), pattern_sha256(n))

    def test_echo_content_length(self):
        c = self.conn()
        for n in SIZES:
            body = pattern_bytes(7, n)
            r = c.request("POST", "/echo", [("Content-Type", "application/octet-stream")], body)
            self.assertEqual(r.status, 200)
            self.assertFalse(r.chunked)
            self.assertEqual(r.header("x-echo-length"), str(n))
            self.assertEqual(r.header("x-echo-method"), "POST")
            self.assertEqual(r.body, body, n)

    def test_echo_chunked_mirrors_framing(self):
        c = self.conn()
        for n in SIZES:
            body = pattern_bytes(3, n)
            r = c.request("PUT", "/echo/x?y=1", [], body, chunked=True,
                          chunk_sizes=[1, 7, 4096, 65536, 1000003])
            self.assertTrue(r.chunked)
            self.assertEqual(r.header("x-echo-path"), "/echo/x?y=1")
            self.assertEqual(r.header("x-echo-method"), "PUT")
            self.assertEqual(r.body, body, n)

    def test_chunk_extensions_and_trailers_are_accepted(self):
        c = self.conn()
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.body, b"abc0123456789")
        self.assertEqual(r.chunk_sizes, [13])

    def test_echo_headers_dump_and_headers_endpoint(self):
        c = self.conn()
        hdrs = [("X-A", "1"), ("X-A", "2"), ("x-b", "  spaced  ")]
        r = c.request("POST", "/echo", hdrs, b"hi")
        self.assertEqual(json.loads(r.header("x-echo-headers")),
                         [["Host", "127.0.0.1"], ["X-A", "1"], ["X-A", "2"], ["x-b", "spaced"],
                          ["Content-Length", "2"]])
        doc = c.request("GET", "/headers?q=1", hdrs).json()
        self.assertEqual(doc, {"method": "GET", "target": "/headers?q=1", "version": "HTTP/1.1",
                               "headers": [["Host", "127.0.0.1"], ["X-A", "1"], ["X-A", "2"],
                                           ["x-b", "spaced"]], "body_length": 0})

    def test_expect_continue(self):
        c = self.conn()
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
               b"Expect: 100-continue\r\n\r\n")
        self.assertEqual(c.sock.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
        c.send(b"ok")
        self.assertEqual(c.read_response().body, b"ok")

    def test_response_header_and_status_overrides(self):
        r = self.conn().request("GET", "/bytes/5?h=X-One:1&h=Keep-Alive:timeout=99&status=203")
        self.assertEqual((r.status, r.header("x-one"), r.header("keep-alive")),
                         (203, "1", "timeout=99"))


class ConnectionTest(FakeTestCase):
    def test_keep_alive_one_connection(self):
        c = self.conn()
        for i in range(20):
            self.assertEqual(c.request("GET", f"/bytes/{i}").body, pattern_bytes(0, i))
        stats = self.fake.stats()
        self.assertEqual((stats["connections"], stats["requests"]), (1, 20))

    def test_connection_close_and_server_close(self):
        c = self.conn()
        r = c.request("GET", "/bytes/10", [("Connection", "close")])
        self.assertEqual(r.header("connection"), "close")
        self.assertClosed(c)
        c = self.conn()
        self.assertEqual(c.request("GET", "/bytes/10?close=1").header("connection"), "close")
        self.assertClosed(c)

    def test_http10(self):
        c = self.conn()
        r = c.request("GET", "/bytes/100", version="HTTP/1.0")
        self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 100)))
        self.assertClosed(c)
        c = self.conn()
        r = c.request("GET", "/bytes/100", [("Connection", "keep-alive")], version="HTTP/1.0")
        self.assertEqual(r.header("connection"), "keep-alive")
        self.assertEqual(c.request("GET", "/bytes/1").body, pattern_bytes(0, 1))
        # A chunked answer cannot go to a 1.0 client: it is close-delimited instead.
        c = self.conn()
        r = c.request("GET", "/bytes/70000?chunked=1", version="HTTP/1.0")
        self.assertFalse(r.chunked)
        self.assertEqual(r.body, pattern_bytes(0, 70000))

    def test_pipelining_in_order(self):
        c = self.conn()
        reqs = [("GET", "/misbehave/slow?ms=300&bytes=3", [], b""),
                ("POST", "/echo", [], b"second"),
                ("GET", "/bytes/70000?chunked=1", [], b""),
                ("HEAD", "/bytes/9", [], b""),
                ("GET", "/bytes/5", [], b"")]
        rs = c.pipeline(reqs)
        self.assertEqual([r.body for r in rs], [pattern_bytes(0, 3), b"second",
                                                pattern_bytes(0, 70000), b"", pattern_bytes(0, 5)])
        self.assertEqual(rs[3].header("content-length"), "9")

    def test_bad_requests_answer_400_and_close(self):
        for raw in [b"GARBAGE\r\n\r\n",
                    b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
            c = self.conn()
            c.send(raw)
            r = c.read_response()
            self.assertEqual(r.status, 400, raw)
            self.assertClosed(c)

    def test_stats_count_duplicate_request_ids_and_in_flight(self):
        c = self.conn()
        for _ in range(2):
            c.request("POST", "/action", [("X-Request-Id", "same")], b"{}")
        c.request("POST", "/action", [("X-Request-Id", "other")], b"{}")
        self.assertEqual(self.fake.stats()["duplicate_request_ids"], ["same"])
        hung = self.conn()
        hung.send(harness.build_request("GET", "/misbehave/hang"))
        harness.wait_for(lambda: self.fake.stats()["in_flight"] == 1, 10, what="in_flight 1")
        hung.close()
        harness.wait_for(lambda: self.fake.stats()["in_flight"] == 0, 10, what="in_flight 0")
        received = self.fake.requests()
        self.assertEqual([r["target"] for r in received[-2:]], ["/action", "/misbehave/hang"])
        self.assertEqual(received[-2]["body_length"], 2)


class MisbehaveTest(FakeTestCase):
    def test_slow_and_status(self):
        c = self.conn()
        self.assertEqual(c.request("GET", "/misbehave/slow?ms=50&bytes=10").body,
                         pattern_bytes(0, 10))
        r = c.request("GET", "/misbehave/status?code=503")
        self.assertEqual((r.status, r.json()), (503, {"status": 503}))
        r = c.request("POST", "/action?misbehave=slow&ms=10", [], b"{}")
        self.assertEqual((r.status, len(r.body)), (200, harness.fake.DEFAULT_BODY_BYTES))
        self.assertEqual(self.fake.stats()["by_route"]["POST /action"], 1)

    def test_unknown_mode_is_400(self):
        r = self.conn().request("GET", "/misbehave/hnag")
        self.assertEqual(r.status, 400)
        self.assertIn("hang", r.json()["modes"])

    def test_hang_never_answers(self):
        c = self.conn()
        c.send(harness.build_request("GET", "/misbehave/hang"))
        self.assertFalse(c.closed_by_peer(timeout=0.5))

    def test_hang_body_sends_only_the_head(self):
        c = self.conn()
        c.send(harness.build_request("GET", "/misbehave/hang-body?bytes=100"))
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.sock.recv(1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertIn(b"Content-Length: 100\r\n", head)
        self.assertFalse(c.closed_by_peer(timeout=0.5))

    def test_trickle_delivers_everything(self):
        r = self.conn().request("GET", "/misbehave/trickle?ms=1&piece=7&bytes=100")
        self.assertEqual(r.body, pattern_bytes(0, 100))

    def test_reset_and_close_without_response(self):
        for mode in ("reset", "close-without-response"):
            c = self.conn()
            with self.assertRaises(TruncatedResponse) as cm:
                c.request("GET", f"/misbehave/{mode}")
            self.assertIsNone(cm.exception.response, mode)

    def test_mid_body(self):
        c = self.conn()
        with self.assertRaises(TruncatedResponse) as cm:
            c.request("GET", "/misbehave/close-mid-body?bytes=1000&ms=10")
        r = cm.exception.response
        self.assertEqual((r.status, r.header("content-length")), (200, "1000"))
        self.assertEqual(r.body, pattern_bytes(0, 500))
        c = self.conn()
        with self.assertRaises(TruncatedResponse) as cm:
            c.request("GET", "/misbehave/reset-mid-body?bytes=1000&ms=10")
        r = cm.exception.response
        self.assertEqual(r.status, 200)
        self.assertLessEqual(len(r.body), 500)  # an RST may discard what was in flight

    def test_malformed(self):
        for mode, head in [("malformed", b"HTTP/1.1 2x0 Nope\r\n"),
                           ("malformed-header", b"HTTP/1.1 200 OK\r\nThis is not")]:
            c = self.conn()
            c.send(harness.build_request("GET", f"/misbehave/{mode}"))
            data = b""
            while True:
                piece = c.sock.recv(4096)
                if not piece:
                    break
                data += piece
            self.assertTrue(data.startswith(head), data)

    def test_back_pressure_bounds_what_is_sent(self):
        n = 100 * MIB
        c = self.conn()
        c.send(harness.build_request("GET", f"/bytes/{n}"))

        def settled():
            a = self.fake.stats()["response_body_bytes"]
            time.sleep(0.3)
            b = self.fake.stats()["response_body_bytes"]
            return a == b and a > 0 and a
        sent = harness.wait_for(settled, 30, what="the fake to stop sending")
        self.assertLess(sent, 40 * MIB)
        h = hashlib.sha256()
        r = c.read_response(sink=h.update)
        self.assertEqual((r.body_length, h.hexdigest()), (n, pattern_sha256(n)))


class LifecycleTest(harness.HarnessTestCase):
    def test_sigterm_exits_zero_with_open_connections(self):
        fake = self.start_fake()
        c = self.raw(fake.port)
        c.send(harness.build_request("GET", "/misbehave/hang"))
        harness.wait_for(lambda: fake.stats()["in_flight"] == 1, 10, what="in flight")
        fake.proc.signal(signal.SIGTERM)
        self.assertEqual(fake.proc.wait(10), 0, fake.proc.stderr())
        self.assertTrue(c.closed_by_peer(10))

    def test_fakes_get_distinct_ports_and_speedmon_missing_fails(self):
        fakes = self.start_fakes(3)
        self.assertEqual(len({f.port for f in fakes}), 3)
        old = os.environ.pop("SPEEDMON_BIN", None)
        try:
            with self.assertRaises(AssertionError):
                harness.speedmon_bin()
            os.environ["SPEEDMON_BIN"] = "/nonexistent/speedmon"
            with self.assertRaises(AssertionError):
                harness.speedmon_bin()
        finally:
            os.environ.pop("SPEEDMON_BIN", None)
            if old is not None:
                os.environ["SPEEDMON_BIN"] = old

    def test_toml_writer(self):
        cfg = harness.proxy_config({"a": ["127.0.0.1:1"], "b": ["127.0.0.1:2", "127.0.0.1:3"]},
                                   routes=[("r", "/r")], health_check={"interval": "1s"})
        text = harness.toml_dumps(cfg)
        import tomllib
        self.assertEqual(tomllib.loads(text), cfg)
        self.assertEqual(len({lst["address"] for lst in cfg["listeners"]}), 2)


if __name__ == "__main__":
    unittest.main()
