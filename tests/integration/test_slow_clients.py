"""Slow and idle clients are bounded: a thousand connections trickling a request head and
two hundred holding a request body open cost bounded memory, are cut by header_timeout
and the request timeout (408, counted by reason), and the agent's own requests are
answered meanwhile. Prints the figures (RSS, the agent's latency) it measured."""

import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

TIMEOUTS = "pokemon_speedrun_downstream_timeouts_total"
HEAD_TRICKLERS = 1000
BODY_HOLDERS = 200


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return data, False


class SlowClientsTest(harness.HarnessTestCase):
    def test_trickling_heads_and_held_bodies_are_cut_and_the_agent_is_served(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake, proxy={"header_timeout": "2s", "idle_timeout": "30s"},
                            upstream={"request_timeout": "3s"})
        pid = sm.proc.popen.pid
        agent = self.raw(sm.port)

        def agent_for(seconds):
            """The agent: one request at a time on its keep-alive connection."""
            lat, t_end = [], time.time() + seconds
            while time.time() < t_end:
                t0 = time.perf_counter()
                r = agent.request("GET", "/status")
                lat.append((time.perf_counter() - t0) * 1000)
                self.assertEqual(r.status, 200)
            return sorted(lat)

        baseline = agent_for(1.5)
        rss_before = rss_kib(pid)

        heads, bodies = [], []
        self.addCleanup(lambda: [s.close() for s in heads + bodies])
        for i in range(HEAD_TRICKLERS):
            s = socket.create_connection(("127.0.0.1", sm.port), timeout=10)
            s.sendall(b"GET /status HTTP/1.1\r\nHost: emu\r\nX-Slow: " + b"x" * (i % 50))
            heads.append(s)
        for _ in range(BODY_HOLDERS):
            s = socket.create_connection(("127.0.0.1", sm.port), timeout=10)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: emu\r\nContent-Length: 10000\r\n\r\n"
                      + b"y" * 1000)
            bodies.append(s)
        lat = agent_for(1.5)  # while all 1200 are open (the timeouts are 2 s and 3 s)
        rss_during = rss_kib(pid)
        samples = sm.metrics()
        self.assertEqual(prom.value_or_zero(samples, "pokemon_speedrun_downstream_connections"),
                         HEAD_TRICKLERS + BODY_HOLDERS + 1)

        # Every trickler gets 408 header_timeout and a close; every holder 408 and a close.
        for s in heads:
            data, closed = read_all(s)
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:80])
            self.assertIn(b'"error":"header_timeout"', data)
            self.assertTrue(closed)
        for s in bodies:
            data, closed = read_all(s)
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:80])
            self.assertIn(b'"error":"request_body_timeout"', data)
            self.assertTrue(closed)
        samples = sm.metrics()
        self.assertEqual(prom.value_or_zero(samples, TIMEOUTS, reason="header"), HEAD_TRICKLERS)
        self.assertEqual(prom.value_or_zero(samples, TIMEOUTS, reason="request_body"),
                         BODY_HOLDERS)
        self.assertEqual(prom.value_or_zero(samples, "pokemon_speedrun_upstream_errors_total",
                                            upstream="emu", endpoint=fake.address,
                                            kind="timeout"), 0)
        # Bounded: well under 100 KiB per slow connection.
        growth = rss_during - rss_before
        self.assertLess(growth, (HEAD_TRICKLERS + BODY_HOLDERS) * 100)
        def summary(v):
            return (f"{len(v)} requests, p50 {statistics.median(v):.2f} ms, "
                    f"p99 {v[int(len(v) * 0.99) - 1]:.2f} ms, max {v[-1]:.2f} ms")
        print(f"\nslow clients: {HEAD_TRICKLERS} trickling heads + {BODY_HOLDERS} held bodies; "
              f"RSS {rss_before} KiB -> {rss_during} KiB (+{growth} KiB, "
              f"{growth * 1024 // (HEAD_TRICKLERS + BODY_HOLDERS)} B per connection); agent "
              f"alone: {summary(baseline)}; agent meanwhile: {summary(lat)}", file=sys.stderr)
        self.assertEqual(agent.request("GET", "/status").status, 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
