"""unittest base class for tests that run fake emulators and speedmon.

Everything a test starts through it is stopped in its cleanups, in reverse order
(client sockets, then speedmon, then the fakes), also when the test fails. speedmon must
then exit 0 on SIGTERM: a crash, a sanitizer report or a hung drain fails the test.
"""

import json
import re
import unittest

from . import procs, prom, rawhttp
from .fake import FakeEmulator
from .speedmon import Speedmon, proxy_config

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


class HarnessTestCase(unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.workdir = procs.temp_dir()

    # ---- processes --------------------------------------------------------------------

    def start_fake(self, *args):
        """A fake emulator with these command-line flags (e.g. "--refuse")."""
        fake = FakeEmulator(*args, workdir=self.workdir)
        self.addCleanup(fake.stop)
        return fake

    def start_fakes(self, n, *args):
        return [self.start_fake(*args) for _ in range(n)]

    def start_speedmon(self, config, check_exit=True, **kw):
        """Starts speedmon with a config dict (see proxy_config) and waits until ready.

        check_exit: at cleanup, SIGTERM must lead to exit code 0."""
        sm = Speedmon(config, workdir=self.workdir, **kw)
        self.addCleanup(self._stop_speedmon, sm, check_exit)
        return sm

    def proxy_for(self, *fakes, name="emu", **kw):
        """speedmon in front of these fakes as one upstream `name` (proxy_config kwargs)."""
        return self.start_speedmon(proxy_config({name: [f.address for f in fakes]}, **kw))

    def _stop_speedmon(self, sm, check_exit):
        already = sm.proc.returncode
        code = sm.stop()
        if check_exit and already is None and code != 0:
            self.fail(f"speedmon exited {code} after SIGTERM (expected 0); stderr:\n"
                      f"{sm.stderr()}")

    def raw(self, port, timeout=30.0):
        """A raw HTTP client connection, closed at cleanup."""
        conn = rawhttp.RawHttp(port, timeout=timeout)
        self.addCleanup(conn.close)
        return conn

    # ---- assertions -------------------------------------------------------------------

    def assertSpeedmonError(self, resp, kind, status, upstream="emu"):
        """resp is speedmon's own JSON error: the exact status, Content-Type and body.

        upstream: the expected "upstream" value; ... (Ellipsis) accepts any value, but
        the key must be there."""
        self.assertEqual(resp.status, status, resp.body[:300])
        self.assertEqual(resp.header("content-type"), "application/json")
        body = json.loads(resp.body)
        self.assertEqual(set(body), {"error", "status", "upstream", "request_id"}, body)
        self.assertEqual(body["error"], kind)
        self.assertEqual(body["status"], status)
        if upstream is not ...:
            self.assertEqual(body["upstream"], upstream)
        self.assertRegex(body["request_id"], REQUEST_ID)
        return body

    def waitMetric(self, sm, expected, name, **labels):
        """Waits until the sample name{labels} (0 when absent) equals expected; returns
        that scrape for further exact assertions."""
        return sm.metrics_when(lambda s: prom.value_or_zero(s, name, **labels) == expected,
                               what=f"{name}{labels} == {expected}")

    def waitMetricSum(self, sm, expected, name, **labels):
        """Like waitMetric, for the sum over every sample whose labels include these."""
        return sm.metrics_when(lambda s: prom.sum_values(s, name, **labels) == expected,
                               what=f"sum {name}{labels} == {expected}")

    def assertMetric(self, samples, expected, name, **labels):
        got = prom.value_or_zero(samples, name, **labels)
        self.assertEqual(got, expected, f"{name}{labels}; have {prom.select(samples, name)}")

    def assertClosed(self, conn, timeout=10.0):
        self.assertTrue(conn.closed_by_peer(timeout), "connection should have been closed")
