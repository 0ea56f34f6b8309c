"""RFC 9112 / RFC 9110 rules for speedmon as a server and as a gateway, byte for byte.

Each test sends exact bytes (harness.RawHttp) and asserts the status a client sees, and
for requests that must not be forwarded, that the upstream never got them. The table in
docs/RELIABILITY.md ("HTTP conformance") names these tests. Upstream misbehaviour that the
fake emulator cannot produce (bad response framing, 1xx, HTTP/1.0 answers) comes from
ScriptedUpstream below, which answers each path with fixed bytes.
"""

import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import TruncatedResponse, pattern_bytes  # noqa: E402

# RFC 9110 5.6.7 IMF-fixdate.
IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d\d:\d\d:\d\d GMT")


def header_values(pairs, name):
    return [v for n, v in pairs if n.lower() == name.lower()]


class RequestRulesTest(harness.HarnessTestCase):
    """speedmon in front of one fake emulator; requests the proxy must refuse or rewrite."""

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, proxy={"max_header_bytes": 8192})

    def refused(self, raw, status, kind):
        """Sends raw on a new connection: speedmon answers status/kind, with Date and
        Connection: close, and closes. Returns the response."""
        c = self.raw(self.sm.port)
        c.send(raw)
        r = c.read_response()
        self.assertSpeedmonError(r, kind, status, upstream=...)
        self.assertEqual(r.header("connection"), "close")
        self.assertRegex(r.header("date") or "", IMF_FIXDATE)
        self.assertClosed(c)
        return r

    def assertNeverForwarded(self, marker):
        """No request whose target contains marker reached the upstream, not even a head."""
        time.sleep(0.1)
        seen = self.fake.stats()["by_route"]
        self.assertEqual([k for k in seen if marker in k], [], seen)
        self.assertEqual([r["target"] for r in self.fake.requests() if marker in r["target"]],
                         [])

    def assertNeverCompleted(self, marker):
        """The upstream may have had the head of a request whose body turned out to be
        malformed, but never a complete request."""
        time.sleep(0.1)
        self.assertEqual([r["target"] for r in self.fake.requests() if marker in r["target"]],
                         [])

    def headers_seen(self, raw):
        c = self.raw(self.sm.port)
        r = c.exchange(raw)
        self.assertEqual(r.status, 200, r.body[:300])
        return r.json()

    # ---- Host (RFC 9112 3.2) ------------------------------------------------------------

    def test_missing_host_in_http11_is_400(self):
        self.refused(b"GET /headers/nohost HTTP/1.1\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/headers/nohost")

    def test_two_host_lines_are_400(self):
        self.refused(b"GET /headers/twohost HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400,
                     "bad_request")
        self.assertNeverForwarded("/headers/twohost")

    def test_invalid_host_value_is_400(self):
        for i, host in enumerate((b"a b", b"a/b", b"user@a", b"a:80x", b"[::1")):
            with self.subTest(host=host):
                self.refused(b"GET /headers/badhost%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, host),
                             400, "bad_request")
        self.assertNeverForwarded("/headers/badhost")

    def test_http10_without_host_is_forwarded_with_one(self):
        got = self.headers_seen(b"GET /headers HTTP/1.0\r\n\r\n")
        self.assertEqual(header_values(got["headers"], "host"), [self.fake.address])
        self.assertEqual(got["version"], "HTTP/1.1")

    def test_absolute_form_is_forwarded_in_origin_form_with_its_host(self):
        got = self.headers_seen(b"GET http://emu.example:8081/headers?x=1 HTTP/1.1\r\n"
                                b"Host: ignored.example\r\n\r\n")
        self.assertEqual(got["target"], "/headers?x=1")
        self.assertEqual(header_values(got["headers"], "host"), ["emu.example:8081"])

    def test_http_uri_without_host_is_400(self):
        self.refused(b"GET http:///headers/nohosturi HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                     "bad_request")
        self.assertNeverForwarded("nohosturi")

    # ---- field syntax (RFC 9112 5, RFC 9110 5.5) ------------------------------------

    def test_whitespace_before_colon_is_400(self):
        self.refused(b"GET /headers/wsname HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/headers/wsname")

    def test_obs_fold_is_400(self):
        self.refused(b"GET /headers/fold HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", 400,
                     "bad_request")
        self.assertNeverForwarded("/headers/fold")

    def test_bare_cr_is_400(self):
        self.refused(b"GET /headers/cr HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400,
                     "bad_request")
        self.refused(b"GET /headers/cr2 HTTP/1.1\rHost: x\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/headers/cr")

    def test_nul_in_a_value_is_400(self):
        self.refused(b"GET /headers/nul HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400,
                     "bad_request")
        self.assertNeverForwarded("/headers/nul")

    def test_whitespace_line_after_request_line_is_400(self):
        self.refused(b"GET /headers/wsline HTTP/1.1\r\n X-A: 1\r\nHost: x\r\n\r\n", 400,
                     "bad_request")
        self.assertNeverForwarded("/headers/wsline")

    # ---- version (RFC 9112 2.3, RFC 9110 15.6.6) ------------------------------------------

    def test_other_major_versions_are_505(self):
        for version in (b"HTTP/2.0", b"HTTP/3.1", b"HTTP/0.9"):
            with self.subTest(version=version):
                self.refused(b"GET /headers/v2 %s\r\nHost: x\r\n\r\n" % version, 505,
                             "version_not_supported")
        self.refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "version_not_supported")
        self.assertNeverForwarded("/headers/v2")

    def test_malformed_version_is_400(self):
        self.refused(b"GET /headers/v11 HTTP/11.1\r\nHost: x\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/headers/v11")

    def test_forwarded_messages_carry_speedmons_version(self):
        got = self.headers_seen(b"GET /headers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        self.assertEqual(got["version"], "HTTP/1.1")

    # ---- request-target (RFC 9110 4.1 / 15.5.15) ------------------------------------

    def test_request_target_over_the_limit_is_414(self):
        target = b"/headers/long" + b"a" * 9000
        self.refused(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target, 414, "uri_too_long")
        self.assertNeverForwarded("/headers/long")

    # ---- body framing (RFC 9112 6) --------------------------------------------------

    def test_content_length_and_transfer_encoding_is_400_then_close(self):
        self.refused(b"POST /echo/clte HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/echo/clte")

    def test_differing_content_lengths_are_400(self):
        self.refused(b"POST /echo/twocl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Content-Length: 4\r\n\r\nabcd", 400, "bad_request")
        self.refused(b"POST /echo/twocl2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"
                     b"abcd", 400, "bad_request")
        self.assertNeverForwarded("/echo/twocl")

    def test_invalid_content_length_is_400(self):
        for i, value in enumerate((b"-1", b"+3", b"3x", b"99999999999999999999999")):
            with self.subTest(value=value):
                self.refused(b"POST /echo/badcl%d HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n"
                             b"\r\nabc" % (i, value), 400, "bad_request")
        self.assertNeverForwarded("/echo/badcl")

    def test_bad_chunk_size_is_400(self):
        self.refused(b"POST /echo/badchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\nzz\r\nabc\r\n0\r\n\r\n", 400, "bad_request")
        self.assertNeverCompleted("/echo/badchunk")

    def test_chunk_size_overflow_is_400(self):
        self.refused(b"POST /echo/bigchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400, "bad_request")
        self.assertNeverCompleted("/echo/bigchunk")

    def test_chunked_not_last_is_400(self):
        self.refused(b"POST /echo/gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
                     400, "bad_request")
        self.refused(b"POST /echo/gzip2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip"
                     b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/echo/gzip")

    def test_unsupported_transfer_coding_is_501(self):
        self.refused(b"POST /echo/gzchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
                     b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, "not_implemented")
        self.assertNeverForwarded("/echo/gzchunk")

    def test_transfer_encoding_in_http10_is_400(self):
        self.refused(b"POST /echo/te10 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n", 400, "bad_request")
        self.assertNeverForwarded("/echo/te10")

    def test_chunk_extensions_are_ignored(self):
        c = self.raw(self.sm.port)
        r = c.exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3;name=\"v\";x\r\nabc\r\n2\r\nde\r\n0;last\r\n\r\n", method="POST")
        self.assertEqual((r.status, r.body), (200, b"abcde"))

    def test_request_without_length_has_no_body(self):
        c = self.raw(self.sm.port)
        rs = [c.exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\n", method="POST"),
              c.exchange(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n")]
        self.assertEqual([(r.status, r.body) for r in rs], [(200, b""), (200, pattern_bytes(0, 3))])

    # ---- intermediary rules (RFC 9110 7.6) ------------------------------------------

    def test_via_is_added_to_forwarded_requests(self):
        got = self.headers_seen(b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(header_values(got["headers"], "via"), ["1.1 speedmon"])
        got = self.headers_seen(b"GET /headers HTTP/1.1\r\nHost: x\r\nVia: 1.0 agent-proxy\r\n\r\n")
        self.assertEqual(header_values(got["headers"], "via"), ["1.0 agent-proxy", "1.1 speedmon"])
        got = self.headers_seen(b"GET /headers HTTP/1.0\r\n\r\n")
        self.assertEqual(header_values(got["headers"], "via"), ["1.0 speedmon"])

    def test_fields_named_by_any_connection_line_are_removed(self):
        got = self.headers_seen(b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
                                b"Connection: X-Drop-A, X-Drop-B\r\nX-Drop-A: 1\r\nX-Drop-B: 2\r\n"
                                b"X-Kept: 3\r\n\r\n")
        names = {n.lower() for n, _ in got["headers"]}
        self.assertEqual(names & {"connection", "x-drop-a", "x-drop-b"}, set(), got["headers"])
        self.assertEqual(header_values(got["headers"], "x-kept"), ["3"])

    def test_max_forwards_is_decremented_for_options_and_trace(self):
        for method in (b"OPTIONS", b"TRACE"):
            with self.subTest(method=method):
                got = self.headers_seen(b"%s /headers HTTP/1.1\r\nHost: x\r\nMax-Forwards: 5\r\n\r\n"
                                        % method)
                self.assertEqual(got["method"], method.decode())
                self.assertEqual(header_values(got["headers"], "max-forwards"), ["4"])
        got = self.headers_seen(b"GET /headers HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
        self.assertEqual(header_values(got["headers"], "max-forwards"), ["0"])  # GET: untouched

    def test_max_forwards_zero_is_answered_by_speedmon(self):
        c = self.raw(self.sm.port)
        r = c.exchange(b"OPTIONS /headers/mf0 HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
        self.assertEqual((r.status, r.body, r.header("content-length")), (200, b"", "0"))
        self.assertRegex(r.header("date") or "", IMF_FIXDATE)
        # The connection stays usable.
        r = c.exchange(b"TRACE /headers/mf0 HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
        self.assertSpeedmonError(r, "not_implemented", 501)
        self.assertEqual(c.request("GET", "/bytes/2").body, pattern_bytes(0, 2))
        self.assertNeverForwarded("/headers/mf0")

    # ---- Expect / 1xx (RFC 9110 10.1.1, 15.2) -----------------------------------------

    def test_100_continue_is_relayed_then_the_final_answer(self):
        c = self.raw(self.sm.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.read_head()
        self.assertEqual(interim.status, 100)
        c.send(b"hello")
        r = c.read_response("POST")
        self.assertEqual((r.status, r.body), (200, b"hello"))

    def test_expectation_of_an_http10_request_is_ignored(self):
        c = self.raw(self.sm.port)
        c.send(b"POST /headers HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        self.assertEqual(c.read_head().status, 200)  # no 100 to an HTTP/1.0 client
        got = [q for q in self.fake.requests() if q["target"] == "/headers"][-1]
        self.assertEqual(header_values(got["headers"], "expect"), [])
        self.assertEqual(got["body_length"], 2)

    # ---- Date (RFC 9110 6.6.1) ----------------------------------------------------------

    def test_date_on_forwarded_answers_that_lack_one(self):
        r = self.raw(self.sm.port).request("GET", "/bytes/3")
        self.assertEqual(len(r.header_values("date")), 1)
        self.assertRegex(r.header("date"), IMF_FIXDATE)

    def test_date_on_admin_answers(self):
        for path in ("/healthz", "/api/v1/upstreams", "/no-such-page"):
            with self.subTest(path=path):
                status, headers, _ = self.sm.get(path)
                self.assertRegex(headers.get("Date", ""), IMF_FIXDATE)

    # ---- Content-Length in answers (RFC 9110 8.6) -----------------------------------------

    def test_no_content_length_on_204(self):
        r = self.raw(self.sm.port).request("GET", "/bytes/0?status=204&h=Content-Length:0")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header_values("content-length"), [])
        self.assertEqual(r.header_values("transfer-encoding"), [])

    # ---- connection management (RFC 9112 9) ---------------------------------------------

    def test_close_ends_the_connection_after_that_answer(self):
        c = self.raw(self.sm.port)
        c.send(b"GET /bytes/1?n=closing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               b"GET /bytes/2?n=after-close HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 1)))
        self.assertEqual(r.header("connection"), "close")
        self.assertClosed(c)
        time.sleep(0.1)
        self.assertEqual([q["target"] for q in self.fake.requests() if "?n=" in q["target"]],
                         ["/bytes/1?n=closing"])

    def test_pipelined_answers_keep_request_order(self):
        c = self.raw(self.sm.port)
        rs = c.pipeline([("GET", "/misbehave/slow?ms=200&bytes=4", [], b""),
                         ("GET", "/bytes/2", [], b"")])
        self.assertEqual([r.body for r in rs], [pattern_bytes(0, 4), pattern_bytes(0, 2)])

    def test_body_of_a_request_answered_early_is_read_before_the_next_request(self):
        c = self.raw(self.sm.port)
        # Max-Forwards 0 is answered at the head; the announced body is still read (and
        # dropped) so that the next request on the connection is framed right.
        c.send(b"OPTIONS /headers HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nContent-Length: 10"
               b"\r\n\r\n12345")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        c.send(b"67890GET /bytes/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().body, pattern_bytes(0, 2))


class ScriptedUpstream:
    """A raw upstream on loopback: each request's path picks the bytes it answers.

    Records (connection number, request line) for every request and which connections the
    peer closed, and keeps every connection open itself unless the script says close."""

    def __init__(self, script):
        self.script = script  # path -> (bytes, close_after)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.seen = []        # (conn, request line, head bytes)
        self.peer_closed = set()
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        n = 0
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            self.conns.append(s)
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _serve(self, s, n):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        with self.lock:
                            self.peer_closed.add(n)
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                with self.lock:
                    self.seen.append((n, line, head))
                path = line.split(" ")[1].split("?")[0]
                answer, close = self.script[path]
                s.sendall(answer)
                if close:
                    s.close()
                    return
        except OSError:
            with self.lock:
                self.peer_closed.add(n)

    def requests(self):
        with self.lock:
            return list(self.seen)

    def closed(self):
        with self.lock:
            return set(self.peer_closed)

    def stop(self):
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


OK = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False)
BAD_HEADS = {
    "/bad/two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "/bad/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\nok\r\n0\r\n\r\n",
    "/bad/cl-value": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
    "/bad/te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
    "/bad/te-http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "/bad/obs-fold": b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok",
    "/bad/nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "/bad/bare-cr": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "/bad/version": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/bad/101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: upgrade\r\n"
                b"\r\n",
}
BAD_BODIES = {
    "/bad/chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n",
    "/bad/chunk-overflow": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"fffffffffffffffffff\r\nok\r\n",
}


class UpstreamFramingTest(harness.HarnessTestCase):
    """Responses speedmon must not forward: 502 (or a cut answer once the head is out),
    and the connection to the upstream is closed, never reused."""

    def setUp(self):
        super().setUp()
        script = {"/ok": OK}
        script.update({p: (b, False) for p, b in BAD_HEADS.items()})
        script.update({p: (b, False) for p, b in BAD_BODIES.items()})
        script["/interim"] = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
                              b"HTTP/1.1 100 Continue\r\n\r\n"
                              b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False)
        script["/dated"] = (b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                            b"Content-Length: 2\r\n\r\nok", False)
        script["/http10"] = (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True)
        script["/space-colon"] = (b"HTTP/1.1 200 OK\r\nX-Spaced : yes\r\nContent-Length: 2\r\n\r\n"
                                  b"ok", False)
        self.up = ScriptedUpstream(script)
        self.addCleanup(self.up.stop)
        self.sm = self.start_speedmon(harness.proxy_config({"emu": [self.up.address]},
                                                           routes=[("ok", "/ok")]))

    def conn_of(self, path):
        return [n for n, line, _ in self.up.requests() if line.split(" ")[1] == path][-1]

    def assertUpstreamClosed(self, n):
        harness.wait_for(lambda: n in self.up.closed(), 5, what=f"upstream conn {n} closed")

    def test_bad_response_heads_are_502_and_the_connection_is_not_reused(self):
        for path in BAD_HEADS:
            with self.subTest(path=path):
                c = self.raw(self.sm.port)
                self.assertEqual(c.request("GET", "/ok").body, b"ok")
                r = c.request("GET", path)
                self.assertSpeedmonError(r, "bad_upstream_response", 502)
                self.assertRegex(r.header("date") or "", IMF_FIXDATE)
                bad = self.conn_of(path)
                self.assertUpstreamClosed(bad)
                self.assertEqual(c.request("GET", "/ok").body, b"ok")
                self.assertNotEqual(self.conn_of("/ok"), bad)

    def test_bad_chunked_response_body_is_cut_and_the_connection_is_not_reused(self):
        for path in BAD_BODIES:
            with self.subTest(path=path):
                c = self.raw(self.sm.port)
                with self.assertRaises(TruncatedResponse):
                    c.request("GET", path)
                self.assertClosed(c)
                bad = self.conn_of(path)
                self.assertUpstreamClosed(bad)
                self.assertEqual(self.raw(self.sm.port).request("GET", "/ok").body, b"ok")
                self.assertNotEqual(self.conn_of("/ok"), bad)

    def test_1xx_are_relayed_to_http11_clients_only(self):
        c = self.raw(self.sm.port)
        c.send(b"GET /interim HTTP/1.1\r\nHost: x\r\n\r\n")
        heads = [c.read_head(), c.read_head()]
        self.assertEqual([h.status for h in heads], [103, 100])
        self.assertEqual(heads[0].header("link"), "</style.css>")
        self.assertEqual(heads[0].header_values("content-length"), [])
        final = c.read_head()
        self.assertEqual(final.status, 200)
        c2 = self.raw(self.sm.port)
        c2.send(b"GET /interim HTTP/1.0\r\n\r\n")
        self.assertEqual(c2.read_head().status, 200)  # no 1xx to an HTTP/1.0 client

    def test_upstreams_date_is_kept(self):
        r = self.raw(self.sm.port).request("GET", "/dated")
        self.assertEqual(r.header_values("date"), ["Sun, 06 Nov 1994 08:49:37 GMT"])

    def test_answer_from_an_http10_upstream_goes_out_as_http11(self):
        c = self.raw(self.sm.port)
        c.send(b"GET /http10 HTTP/1.1\r\nHost: x\r\n\r\n")
        raw_head = c._read_head()
        self.assertTrue(raw_head.startswith(b"HTTP/1.1 200 "), raw_head)

    def test_whitespace_before_a_response_colon_is_removed(self):
        r = self.raw(self.sm.port).request("GET", "/space-colon")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertIn(b"\r\nX-Spaced: yes\r\n", r.raw_head)

    def test_upstream_gets_via_and_origin_form(self):
        self.raw(self.sm.port).exchange(b"GET http://emu.example/ok HTTP/1.1\r\nHost: a\r\n\r\n")
        _, line, head = [q for q in self.up.requests() if q[1].startswith("GET /ok ")][-1]
        self.assertEqual(line, "GET /ok HTTP/1.1")
        self.assertIn(b"\r\nVia: 1.1 speedmon", head)
        self.assertIn(b"\r\nHost: emu.example", head)


if __name__ == "__main__":
    unittest.main()
