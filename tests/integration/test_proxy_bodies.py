"""speedmon proxies bodies byte for byte: 0 B, 1 B, 64 KiB, 10 MiB (and 100 MiB streamed),
Content-Length and chunked, both directions, compared with the same request sent
directly to the fake emulator.
"""

import hashlib
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import pattern_bytes, pattern_sha256  # noqa: E402

MIB = 1024 * 1024
SIZES = [0, 1, 64 * 1024, 10 * MIB]
CHUNK_SIZES = [1, 7, 4096, 65536, 1000003]


class BodiesTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake)
        self.direct = self.raw(self.fake.port)
        self.proxied = self.raw(self.sm.port)

    def both(self, method, target, headers=(), body=b"", **kw):
        """The same request directly and through speedmon: (direct, proxied)."""
        d = self.direct.request(method, target, headers, body, **kw)
        p = self.proxied.request(method, target, headers, body, **kw)
        return d, p

    def test_response_bodies_content_length(self):
        for n in SIZES:
            with self.subTest(n=n):
                d, p = self.both("GET", f"/bytes/{n}")
                self.assertEqual((p.status, d.status), (200, 200))
                self.assertEqual(p.header("content-length"), str(n))
                self.assertEqual(p.body, pattern_bytes(0, n))
                self.assertEqual(p.body, d.body)

    def test_response_bodies_chunked(self):
        for n in SIZES:
            with self.subTest(n=n):
                d, p = self.both("GET", f"/bytes/{n}?chunked=1")
                self.assertEqual((p.status, d.status), (200, 200))
                self.assertTrue(d.chunked)
                self.assertEqual(p.body, pattern_bytes(0, n))
                self.assertEqual(p.body, d.body)

    def test_request_bodies_content_length(self):
        for n in SIZES:
            with self.subTest(n=n):
                body = pattern_bytes(11, n)
                d, p = self.both("POST", "/echo", [("Content-Type", "application/octet-stream")],
                                 body)
                self.assertEqual(p.status, 200)
                self.assertEqual(p.header("x-echo-length"), str(n))
                self.assertEqual(p.body, body)
                self.assertEqual(p.body, d.body)
                seen = self.fake.requests()[-1]
                self.assertEqual(seen["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_request_bodies_chunked(self):
        for n in SIZES:
            with self.subTest(n=n):
                body = pattern_bytes(5, n)
                d, p = self.both("PUT", "/echo", [], body, chunked=True,
                                 chunk_sizes=CHUNK_SIZES)
                self.assertEqual(p.status, 200)
                self.assertEqual(p.header("x-echo-length"), str(n))
                self.assertEqual(p.body, body)
                self.assertEqual(p.body, d.body)

    def test_mixed_sizes_on_one_connection(self):
        # Framing mistakes show up as the next response being read from the wrong place.
        for i, n in enumerate([5, 0, 70000, 1, 3 * MIB, 2, 0, 65536]):
            chunked = i % 2 == 1
            r = self.proxied.request("GET", f"/bytes/{n}" + ("?chunked=1" if chunked else ""))
            self.assertEqual(r.body, pattern_bytes(0, n), (i, n))
            body = pattern_bytes(n, n)
            r = self.proxied.request("POST", "/echo", [], body, chunked=not chunked,
                                     chunk_sizes=CHUNK_SIZES)
            self.assertEqual(r.body, body, (i, n))

    def test_head_has_no_body(self):
        r = self.proxied.request("HEAD", "/bytes/12345")
        self.assertEqual((r.status, r.header("content-length"), r.body), (200, "12345", b""))
        self.assertEqual(self.proxied.request("GET", "/bytes/7").body, pattern_bytes(0, 7))

    def test_agent_json_answers_match_direct(self):
        d, p = self.both("POST", "/action", [("Content-Type", "application/json")],
                         b'{"action_type":"press_key","keys":["a"]}')
        self.assertEqual((d.status, p.status), (200, 200))
        self.assertEqual(len(p.body), harness.fake.DEFAULT_BODY_BYTES)
        self.assertEqual(p.header("content-type"), "application/json")
        self.assertEqual(p.json()["step_number"], d.json()["step_number"] + 1)


class StreamingTest(harness.HarnessTestCase):
    def test_hundred_mebibytes_stream_with_back_pressure(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        n = 100 * MIB
        c = self.raw(sm.port, timeout=120)
        c.send(harness.build_request("GET", f"/bytes/{n}"))

        # While the client reads nothing, what the fake manages to send is bounded by
        # socket buffers and speedmon's own buffers, not by the body size.
        def settled():
            a = fake.stats()["response_body_bytes"]
            time.sleep(0.5)
            b = fake.stats()["response_body_bytes"]
            return a == b and a > 0 and a
        sent = harness.wait_for(settled, 60, what="the fake to stop sending")
        self.assertLess(sent, 64 * MIB)
        h = hashlib.sha256()
        r = c.read_response(sink=h.update)
        self.assertEqual((r.status, r.body_length), (200, n))
        self.assertEqual(h.hexdigest(), pattern_sha256(n))

    def test_hundred_mebibyte_upload(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        n = 100 * MIB
        c = self.raw(sm.port, timeout=120)
        head = harness.build_request("POST", "/headers", [("Content-Length", str(n))])
        sender = c.send_in_background(head + b"".join(harness.fake.tool.iter_pattern(n)))
        r = c.read_response()
        sender.join(120)
        self.assertIsNone(sender.error)
        self.assertEqual((r.status, r.json()["body_length"]), (200, n))
        self.assertEqual(fake.requests()[-1]["body_sha256"], pattern_sha256(n))


if __name__ == "__main__":
    unittest.main()
