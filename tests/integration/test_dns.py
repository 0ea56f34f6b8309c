"""Endpoint names resolved again every dns_refresh, end to end: speedmon runs in its own
mount namespace (unshare -m) where a temporary file is bind-mounted over /etc/hosts (and
one saying "hosts: files" over /etc/nsswitch.conf, so no name server is asked); the
machine's own files are never touched. Moving a name from one fake emulator to another
moves the traffic within the refresh period with no failed request; a name that does
not resolve at start is an unhealthy endpoint (503s, counted, logged once), not a start
failure, and serves once it resolves; a name with a dead address and a live one serves
every request from the live one."""

import os
import shutil
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import procs, prom  # noqa: E402

RESOLUTIONS = "pokemon_speedrun_upstream_dns_resolutions_total"
CHANGES = "pokemon_speedrun_upstream_dns_changes_total"
ADDRESSES = "pokemon_speedrun_upstream_endpoint_addresses"

# Execs the rest of its arguments with the two files mounted over the machine's.
MOUNT_AND_EXEC = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf '
                  '&& shift 2 && exec "$@"')


class DnsRefreshTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        # Needs root and util-linux's unshare: a machine without them fails this test.
        self.assertEqual(os.geteuid(), 0, "mount namespaces need root")
        self.assertIsNotNone(shutil.which("unshare"), "unshare (util-linux) is missing")
        self.hosts = os.path.join(self.workdir, "hosts")
        self.nsswitch = os.path.join(self.workdir, "nsswitch.conf")
        with open(self.nsswitch, "w") as f:
            f.write("hosts: files\n")

    def write_hosts(self, lines):
        # In place: the bind mount follows the inode, not the name. One write over the old
        # bytes, then the truncate: emptying the file first would let a lookup that runs
        # in between find no name at all (a failed resolution this test does not mean).
        text = ("127.0.0.1 localhost\n" + "".join(line + "\n" for line in lines)).encode()
        fd = os.open(self.hosts, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, text, 0)
            os.ftruncate(fd, len(text))
        finally:
            os.close(fd)

    def start_in_namespace(self, cfg):
        wrapper = ("unshare", "-m", "--", "sh", "-c", MOUNT_AND_EXEC, "sh", self.hosts,
                   self.nsswitch)
        return self.start_speedmon(cfg, wrapper=wrapper)

    def test_traffic_follows_a_moved_name_without_a_failed_request(self):
        a = self.start_fake("--host", "127.0.0.2")
        b = self.start_fake("--host", "127.0.0.3", "--port", str(a.port))
        self.write_hosts([f"127.0.0.2 emu.test"])
        endpoint = f"emu.test:{a.port}"
        cfg = harness.proxy_config({"emu": [endpoint]}, workers=2,
                                   upstream={"dns_refresh": "200ms"})
        sm = self.start_in_namespace(cfg)

        statuses = []
        stop = threading.Event()

        def client():
            # One keep-alive client: its pooled upstream connection to the old address
            # must not keep the traffic there.
            conn = self.raw(sm.port)
            while not stop.is_set():
                statuses.append(conn.request("GET", "/status", [], b"").status)

        t = threading.Thread(target=client)
        t.start()
        try:
            procs.wait_for(lambda: a.stats()["requests"] >= 20, 10, what="traffic on A")
            self.write_hosts([f"127.0.0.3 emu.test"])
            procs.wait_for(lambda: b.stats()["requests"] >= 1, 10, what="traffic moved to B")
            on_a = a.stats()["requests"]
            before = b.stats()["requests"]
            procs.wait_for(lambda: b.stats()["requests"] >= before + 50, 10,
                           what="50 more requests on B")
            # Nothing went to the old address once the new one took traffic.
            self.assertEqual(a.stats()["requests"], on_a)
        finally:
            stop.set()
            t.join()
        self.assertGreater(len(statuses), 70)
        self.assertEqual([s for s in statuses if s != 200], [])
        s = sm.metrics()
        self.assertMetric(s, 1, CHANGES, upstream="emu", endpoint=endpoint)
        self.assertMetric(s, 1, ADDRESSES, upstream="emu", endpoint=endpoint)
        self.assertMetric(s, 0, RESOLUTIONS, upstream="emu", endpoint=endpoint, result="failure")
        self.assertMetric(s, 0, "pokemon_speedrun_upstream_errors_total", upstream="emu",
                          endpoint=endpoint, kind="connect")
        self.assertIn(f"endpoint emu/{endpoint} resolves to 127.0.0.3:{a.port} "
                      f"(was 127.0.0.2:{a.port})", sm.stderr())

    def test_a_name_with_a_dead_address_serves_from_the_live_one(self):
        live = self.start_fake("--host", "127.0.0.7")
        self.write_hosts([f"127.0.0.6 pod.test", f"127.0.0.7 pod.test"])  # .6: nobody home
        endpoint = f"pod.test:{live.port}"
        cfg = harness.proxy_config({"emu": [endpoint]}, health_check={"interval": "100ms", "timeout": "100ms"})
        sm = self.start_in_namespace(cfg)
        s = self.waitMetric(sm, 1, "pokemon_speedrun_upstream_healthy", upstream="emu",
                            endpoint=endpoint)
        # Each health check tried .6, was refused, and passed on .7; later ones start at .7.
        self.assertMetric(s, 0, "pokemon_speedrun_health_checks_total", upstream="emu",
                          endpoint=endpoint, result="connect")
        conn = self.raw(sm.port)
        statuses = [conn.request("GET", "/state", [], b"").status for _ in range(20)]
        self.assertEqual(statuses, [200] * 20)
        self.assertEqual(live.stats()["by_route"].get("GET /state"), 20)
        # The one upstream connection was refused on .6 first, then opened on .7 and kept.
        s = sm.metrics()
        self.assertMetric(s, 1, "pokemon_speedrun_upstream_errors_total", upstream="emu",
                          endpoint=endpoint, kind="connect")
        self.assertMetric(s, 2, ADDRESSES, upstream="emu", endpoint=endpoint)

    def test_a_name_that_does_not_resolve_is_unhealthy_not_a_start_failure(self):
        good = self.start_fake()
        lost = self.start_fake("--host", "127.0.0.4")
        self.write_hosts([])
        endpoint = f"lost.test:{lost.port}"
        cfg = harness.proxy_config({"good": [good.address], "lost": [endpoint]},
                                   upstream={"dns_refresh": "100ms"})
        sm = self.start_in_namespace(cfg)

        self.assertEqual(self.raw(sm.listener_port("good")).request("GET", "/status").status,
                         200)
        r = self.raw(sm.listener_port("lost")).request("GET", "/status")
        self.assertSpeedmonError(r, "no_healthy_endpoint", 503, upstream="lost")
        # Refreshed again and again: counted each time, logged once.
        s = sm.metrics_when(lambda s: prom.value_or_zero(
            s, RESOLUTIONS, upstream="lost", endpoint=endpoint, result="failure") >= 3,
            what="three failed resolutions")
        self.assertMetric(s, 0, RESOLUTIONS, upstream="lost", endpoint=endpoint,
                          result="success")
        self.assertMetric(s, 0, ADDRESSES, upstream="lost", endpoint=endpoint)
        self.assertMetric(s, 0, "pokemon_speedrun_upstream_healthy", upstream="lost",
                          endpoint=endpoint)
        self.assertMetric(s, 1, "pokemon_speedrun_upstream_healthy", upstream="good",
                          endpoint=good.address)
        logged = [line for line in sm.stderr().splitlines()
                  if f"endpoint lost/{endpoint}: cannot resolve {endpoint}" in line]
        self.assertEqual(len(logged), 1, sm.stderr())
        self.assertEqual(lost.stats()["requests"], 0)

        # The name appears: healthy again, and it serves.
        self.write_hosts([f"127.0.0.4 lost.test"])
        s = self.waitMetric(sm, 1, "pokemon_speedrun_upstream_healthy", upstream="lost",
                            endpoint=endpoint)
        self.assertMetric(s, 1, ADDRESSES, upstream="lost", endpoint=endpoint)
        self.assertEqual(self.raw(sm.listener_port("lost")).request("GET", "/status").status,
                         200)
        self.assertEqual(lost.stats()["requests"], 1)
