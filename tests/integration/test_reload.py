"""SIGHUP: a valid file reloads [alerting] (evaluation_interval included) and [sla] at
once and is counted; an invalid one is logged and counted, and the running config keeps
serving. Listeners, upstreams, endpoints and routes change under a steady client with no
failed request and no counter going back."""

import copy
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import procs, prom  # noqa: E402

RELOADS = "pokemon_speedrun_config_reloads_total"
REQUESTS = "pokemon_speedrun_http_requests_total"


class ReloadTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake)

    def rule_ids(self):
        return sorted(r["id"] for r in self.sm.get_json("/api/v1/alert-rules")["rules"])

    def hup(self, config_text):
        with open(self.sm.config_path, "w") as f:
            f.write(config_text)
        self.sm.signal(signal.SIGHUP)

    def test_valid_reload_applies_rules_and_sla(self):
        self.assertEqual(self.rule_ids(), [])
        cfg = copy.deepcopy(self.sm.config)
        cfg["alerting"]["rules"] = [{
            "id": "reloaded", "metric": "pokemon_speedrun_healthy_processes",
            "operator": "<", "threshold": 1, "severity": "warning"}]
        cfg["sla"] = {"experiment_success_rate_min": 50.0}
        self.hup(harness.toml_dumps(cfg))
        s = self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, RELOADS, result="success") == 1,
            what="one successful reload")
        self.assertEqual(prom.value(s, RELOADS, result="failure"), 0)
        self.assertEqual(self.rule_ids(), ["reloaded"])
        sla = self.sm.get_json("/api/v1/sla")
        self.assertEqual(sla["targets"]["experiment_success_rate"], 50.0)

    def test_invalid_file_keeps_running_config(self):
        self.hup("[admin]\nadress = \"typo\"\n")
        s = self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, RELOADS, result="failure") == 1,
            what="one failed reload")
        self.assertEqual(prom.value(s, RELOADS, result="success"), 0)
        self.assertIn('unknown key "adress" in [admin]', self.sm.stderr())
        r = self.raw(self.sm.port).request("GET", "/status", [], b"")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.sm.get("/healthz")[0], 200)


EVALUATIONS = "pokemon_speedrun_alert_evaluations_total"


class EvaluationIntervalReloadTest(harness.HarnessTestCase):
    """SIGHUP restarts the evaluation timer when [alerting] evaluation_interval changes.
    One rule, so the evaluations counter counts rounds."""

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        cfg = harness.proxy_config({"emu": [self.fake.address]})
        cfg["alerting"]["evaluation_interval"] = "1h"
        cfg["alerting"]["rules"] = [{
            "id": "r", "metric": "pokemon_speedrun_healthy_processes", "operator": "<",
            "threshold": 0}]
        self.sm = self.start_speedmon(cfg)
        self.reloads = 0

    def evaluations(self):
        return prom.value(self.sm.metrics(), EVALUATIONS)

    def reload_interval(self, interval):
        cfg = copy.deepcopy(self.sm.config)
        cfg["alerting"]["evaluation_interval"] = interval
        with open(self.sm.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        self.sm.signal(signal.SIGHUP)
        self.reloads += 1
        # The reload and the timer run on the main loop: once the reload is counted, the
        # timer has its new period.
        self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, RELOADS, result="success") == self.reloads,
            what=f"{self.reloads} successful reloads")

    def test_sighup_applies_a_shorter_then_a_longer_interval(self):
        # An hour: no round in the first second (exact: the first round is an hour away).
        time.sleep(1.0)
        self.assertEqual(self.evaluations(), 0)

        self.reload_interval("100ms")
        start = time.monotonic()
        s = self.sm.metrics_when(lambda s: prom.value_or_zero(s, EVALUATIONS) >= 5, timeout=10.0,
                                 what=f"5 {EVALUATIONS} at 100ms")
        elapsed = time.monotonic() - start
        # Five rounds at 100ms take at least 0.5s; at the old hour they never come.
        self.assertGreaterEqual(elapsed, 0.4, prom.value(s, EVALUATIONS))
        self.assertIn(f"SIGHUP: reloaded {self.sm.config_path}: listening: emu=",
                      self.sm.stderr())

        # Back to an hour: after the reload no further round, exactly.
        self.reload_interval("1h")
        settled = self.evaluations()
        time.sleep(1.0)
        self.assertEqual(self.evaluations(), settled)
        self.assertEqual(prom.value(self.sm.metrics(), RELOADS, result="failure"), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()


class ReloadTopologyTest(harness.HarnessTestCase):
    """SIGHUP applies listeners, upstreams, endpoints and routes as a new generation: new
    sockets listen before the old ones drain, requests in flight finish, and counters of
    what stayed keep counting, under a client that never stops."""

    def setUp(self):
        super().setUp()
        self.a, self.b = self.start_fakes(2)
        cfg = harness.proxy_config({"emu": [self.a.address]}, workers=2)
        gone_port, self.new_port, self.moved_port = procs.free_ports(3)
        cfg["listeners"].append({"name": "gone", "address": f"127.0.0.1:{gone_port}",
                                 "upstream": "emu"})
        self.sm = self.start_speedmon(cfg)
        self.cfg = copy.deepcopy(self.sm.config)
        self.failures, self.ok = [], 0
        self.seen = {}  # (name, labels) -> highest value scraped
        self.went_back = []
        self.stop = threading.Event()

    def client(self):
        # Keep-alive; a response with Connection: close makes http.client reconnect.
        conn = http.client.HTTPConnection("127.0.0.1", self.sm.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/status")
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(resp.status)
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn.close()
        conn.close()

    def scrape(self):
        s = self.sm.metrics()
        for key, v in s.items():
            if key[0] != REQUESTS:
                continue
            if v < self.seen.get(key, 0):
                self.went_back.append((key, self.seen[key], v))
            self.seen[key] = max(v, self.seen.get(key, 0))
        return s

    def reload(self, cfg, result="success"):
        want = prom.value_or_zero(self.scrape(), RELOADS, result=result) + 1
        with open(self.sm.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        self.sm.signal(signal.SIGHUP)
        procs.wait_for(lambda: prom.value_or_zero(self.scrape(), RELOADS, result=result) == want,
                       10, what=f"reload {result} #{want}")

    def status_at(self, port):
        return self.raw(port).request("GET", "/status").status

    def refused(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), 1.0).close()
            return False
        except ConnectionRefusedError:
            return True

    def test_recent_requests_keep_their_names_across_reloads(self):
        conn = self.raw(self.sm.port)
        self.assertEqual(conn.request("GET", "/echo/before").status, 200)
        # The route "echo" goes; the old generation drains (its keep-alive client is told
        # to close) and retires.
        cfg = copy.deepcopy(self.cfg)
        cfg["routes"] = [r for r in cfg["routes"] if r["name"] != "echo"]
        self.reload(cfg)
        self.assertEqual(conn.request("GET", "/status").header("connection"), "close")
        self.assertEqual(self.raw(self.sm.port).request("GET", "/echo/after").status, 200)
        self.reload(self.cfg)  # and a second generation retires
        self.assertEqual(self.raw(self.sm.port).request("GET", "/echo/third").status, 200)
        got = [(r["path"], r["route"], r["upstream"])
               for r in self.sm.get_json("/api/v1/requests?limit=10")["requests"]]
        self.assertEqual(got, [("/echo/third", "echo", "emu"), ("/echo/after", "other", "emu"),
                               ("/status", "status", "emu"), ("/echo/before", "echo", "emu")])

    def test_listeners_endpoints_and_routes_change_under_a_steady_client(self):
        gone = self.sm.listener_port("gone")
        keep_alive = self.raw(gone)
        self.assertEqual(keep_alive.request("GET", "/status").status, 200)
        t = threading.Thread(target=self.client)
        t.start()
        try:
            procs.wait_for(lambda: self.ok >= 20, 10, what="the client loop running")

            # 1. "gone" removed, "new" added.
            cfg = copy.deepcopy(self.cfg)
            cfg["listeners"] = [cfg["listeners"][0], {
                "name": "new", "address": f"127.0.0.1:{self.new_port}", "upstream": "emu"}]
            self.reload(cfg)
            self.assertEqual(self.status_at(self.new_port), 200)
            # A keep-alive client of the removed listener gets its next request answered,
            # then the connection closes.
            r = keep_alive.request("GET", "/status")
            self.assertEqual((r.status, r.header("connection")), (200, "close"))
            self.assertClosed(keep_alive)
            procs.wait_for(lambda: self.refused(gone), 10, what="the removed listener closed")

            # 2. An endpoint added and the routes changed ("echo" out, "fresh" in).
            cfg["upstreams"][0]["endpoints"] = [self.a.address, self.b.address]
            cfg["routes"] = [r for r in cfg["routes"] if r["name"] != "echo"]
            cfg["routes"].append({"name": "fresh", "prefix": "/fresh"})
            self.reload(cfg)
            procs.wait_for(lambda: self.b.stats()["requests"] >= 10, 10,
                           what="traffic on the added endpoint")
            self.raw(self.sm.port).request("GET", "/fresh")
            s = self.sm.metrics_when(lambda s: prom.sum_values(s, REQUESTS, route="fresh") == 1,
                                     what="the new route counted")
            self.assertEqual(prom.select(s, REQUESTS, route="echo"), {})

            # 3. "new" moved to another port.
            cfg["listeners"][1]["address"] = f"127.0.0.1:{self.moved_port}"
            self.reload(cfg)
            self.assertEqual(self.status_at(self.moved_port), 200)
            procs.wait_for(lambda: self.refused(self.new_port), 10, what="the old port closed")

            # 4. A listener that cannot be bound: nothing changes.
            with socket.socket() as held:
                held.bind(("127.0.0.1", 0))
                held.listen()
                bad = copy.deepcopy(cfg)
                bad["listeners"].append({"name": "taken",
                                         "address": f"127.0.0.1:{held.getsockname()[1]}",
                                         "upstream": "emu"})
                self.reload(bad, result="failure")
            self.assertIn("SIGHUP: config rejected, keeping the running one: listener taken: "
                          "cannot listen on", self.sm.stderr())
            self.assertEqual(self.status_at(self.moved_port), 200)
            before = self.ok
            procs.wait_for(lambda: self.ok >= before + 20, 10, what="the client still served")
        finally:
            self.stop.set()
            t.join()
        s = self.scrape()
        self.assertEqual(self.failures, [])
        self.assertEqual(self.went_back, [])
        self.assertEqual(prom.value(s, RELOADS, result="success"), 3)
        self.assertEqual(prom.value(s, RELOADS, result="failure"), 1)
        # Every request of the loop is in the counter of its (unchanged) labels.
        self.assertEqual(prom.value(s, REQUESTS, upstream="emu", route="status", method="GET",
                                    code="200"), self.ok + 3 + 2)
