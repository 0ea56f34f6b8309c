"""Overload without collapse: past [proxy] max_connections, or past what RLIMIT_NOFILE
leaves for client connections, speedmon stops accepting (the clients wait in the kernel's
backlog) instead of failing; out of descriptors anyway, it logs once, counts and backs off;
the admin API keeps answering throughout."""

import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import procs, prom  # noqa: E402

CONNECTIONS = "pokemon_speedrun_downstream_connections"
PAUSES = "pokemon_speedrun_downstream_accept_pauses_total"


def connect(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    return socks


def get_status(sock):
    """Sends GET /status on an open socket and returns the status code of the answer."""
    sock.sendall(b"GET /status HTTP/1.1\r\nHost: emu\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed; got {data!r}")
        data += chunk
    return int(data.split(b" ", 2)[1])


class OverloadTest(harness.HarnessTestCase):
    def wait_value(self, sm, name, expected, timeout=10, **labels):
        deadline = time.time() + timeout
        while True:
            got = prom.value_or_zero(sm.metrics(), name, **labels)
            if got == expected or time.time() > deadline:
                self.assertEqual(got, expected, f"{name}{labels}")
                return
            time.sleep(0.05)

    def test_max_connections_pauses_accepting_then_resumes(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake, proxy={"max_connections": 8})
        self.wait_value(sm, PAUSES, 0, reason="max_connections")
        socks = connect(sm.port, 20)  # 8 accepted, 12 in the backlog
        self.addCleanup(lambda: [s.close() for s in socks])
        self.wait_value(sm, CONNECTIONS, 8)
        # At least once (a readiness probe's connection closing late resumes and re-pauses).
        self.assertGreaterEqual(prom.value_or_zero(sm.metrics(), PAUSES, reason="max_connections"), 1)
        self.assertEqual(sm.get("/healthz")[0], 200)
        self.assertEqual(get_status(socks[0]), 200)
        for s in socks[:8]:
            s.close()
        # Eight closed, eight more accepted from the backlog; they are served.
        self.wait_value(sm, CONNECTIONS, 8)
        self.assertEqual(get_status(socks[8]), 200)
        self.assertEqual(get_status(socks[15]), 200)
        for s in socks[8:]:
            s.close()
        self.wait_value(sm, CONNECTIONS, 0)
        self.assertEqual(prom.value_or_zero(sm.metrics(), PAUSES, reason="fd_limit"), 0)

    def test_low_nofile_caps_clients_and_the_admin_api_keeps_answering(self):
        fake = self.start_fake()
        cfg = harness.proxy_config({"emu": [fake.address]})
        sm = self.start_speedmon(cfg, wrapper=("prlimit", "--nofile=160:160", "--"))
        m = re.search(r"accepting pauses at (\d+) client connections", sm.stderr())
        self.assertIsNotNone(m, sm.stderr())
        cap = int(m.group(1))
        self.assertGreater(cap, 0)
        self.assertLess(cap, 80)
        socks = connect(sm.port, 300)
        self.addCleanup(lambda: [s.close() for s in socks])
        self.wait_value(sm, CONNECTIONS, cap)
        # The flood waits in the backlog; the admin API answers, scrape after scrape.
        for _ in range(20):
            self.assertEqual(sm.get("/healthz")[0], 200)
            status, _, body = sm.get("/metrics")
            self.assertEqual(status, 200)
            self.assertIn(b"pokemon_speedrun_downstream_connections", body)
        self.assertEqual(get_status(socks[0]), 200)
        self.assertGreaterEqual(prom.value_or_zero(sm.metrics(), PAUSES, reason="max_connections"), 1)
        for s in socks:
            s.close()
        self.wait_value(sm, CONNECTIONS, 0, timeout=20)
        self.assertNotIn("Too many open files", sm.stderr())
        # Served again, connection after connection.
        for _ in range(50):
            c = connect(sm.port, 1)[0]
            self.assertEqual(get_status(c), 200)
            c.close()

    def test_out_of_descriptors_is_logged_once_counted_and_survived(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        pid = sm.proc.popen.pid
        # Lower the running process's limit: accept() itself now fails with EMFILE.
        subprocess.run(["prlimit", f"--pid={pid}", "--nofile=48:"], check=True)
        self.addCleanup(subprocess.run, ["prlimit", f"--pid={pid}", "--nofile=4096:"])
        socks = connect(sm.port, 120)
        self.addCleanup(lambda: [s.close() for s in socks])
        time.sleep(1.5)  # ~15 back-off periods of 100 ms, each one an accept() that fails
        self.assertTrue(sm.proc.alive())
        self.assertEqual(sm.stderr().count("accept: Too many open files"), 1, sm.stderr())
        subprocess.run(["prlimit", f"--pid={pid}", "--nofile=4096:"], check=True)
        self.assertGreaterEqual(prom.value_or_zero(sm.metrics(), PAUSES, reason="fd_limit"), 1)
        self.wait_value(sm, CONNECTIONS, 120)  # the backlog, accepted once descriptors exist
        self.assertEqual(get_status(socks[119]), 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
