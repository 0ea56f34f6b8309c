"""Active health checks against three fake emulators, one listener and upstream each (as
in the default config): the health metrics (pokemon_speedrun_healthy_processes, ...),
/ready, /api/v1/processes, and the 503 no_healthy_endpoint answer while an emulator is
down.

Checks every 200ms with a 200ms timeout, healthy after 1 pass, unhealthy after 2
failures. A fake is killed with SIGKILL (connect failures), answers 500 (status
failures), answers too slowly (timeouts) or answers 200 where only 204 is expected.
"""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import pattern_bytes, prom  # noqa: E402

HEALTHY_PROCS = "pokemon_speedrun_healthy_processes"
TOTAL_PROCS = "pokemon_speedrun_total_processes"
UP_HEALTHY = "pokemon_speedrun_upstream_healthy"
CHECKS = "pokemon_speedrun_health_checks_total"
FAILURES = "pokemon_speedrun_process_failures_total"
STARTUP = "pokemon_speedrun_process_startup_seconds"
REQ = "pokemon_speedrun_http_requests_total"
UP_ERRORS = "pokemon_speedrun_upstream_errors_total"

NAMES = ["emu1", "emu2", "emu3"]
HEALTH_CHECK = {"path": "/status", "interval": "200ms", "timeout": "200ms",
                "healthy_threshold": 1, "unhealthy_threshold": 2}
CONNECT_TIMEOUT = 1.0  # proxy_config's connect_timeout
WAIT = 15.0  # bound on every state change (a few intervals, with room for a loaded machine)
KINDS = ("timeout", "connect", "status")


def failure_counts(samples):
    return {k: prom.value(samples, FAILURES, failure_type=k) for k in KINDS}


class HealthTestBase(harness.HarnessTestCase):
    def start_three(self, fake_args=(), health_checks=None):
        """Three fakes and speedmon with one listener and upstream per fake; waits until
        every endpoint passed its first check (one startup observed each).

        health_checks: {upstream name: [upstreams.health_check] table} overrides."""
        self.fakes = [self.start_fake(*fake_args) for _ in NAMES]
        cfg = harness.proxy_config({n: [f.address] for n, f in zip(NAMES, self.fakes)},
                                   health_check=HEALTH_CHECK)
        for up in cfg["upstreams"]:
            up["health_check"] = dict((health_checks or {}).get(up["name"], HEALTH_CHECK))
        self.sm = self.start_speedmon(cfg)
        return self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, STARTUP + "_count") == 3
            and all(prom.value_or_zero(s, CHECKS, upstream=n, endpoint=f.address,
                                       result="success") >= 1
                    for n, f in zip(NAMES, self.fakes)),
            timeout=WAIT, what="a passed check and a startup for each of the 3 endpoints")

    def endpoints(self):
        """{upstream: its endpoint entry of /api/v1/processes}, and the whole document."""
        doc = self.sm.get_json("/api/v1/processes")
        return {e["upstream"]: e for e in doc["endpoints"]}, doc

    def ready(self):
        status, _, body = self.sm.get("/ready")
        return status, json.loads(body)

    def request(self, name, path="/bytes/100"):
        """One GET through listener `name`: (response, seconds it took)."""
        t0 = time.monotonic()
        resp = self.raw(self.sm.listener_port(name)).request("GET", path)
        return resp, time.monotonic() - t0

    def assertServes(self, name):
        resp, _ = self.request(name)
        self.assertEqual((resp.status, resp.body), (200, pattern_bytes(0, 100)), name)

    def assertNoHealthyEndpoint(self, name):
        """The listener answers 503 no_healthy_endpoint itself, before a connect attempt
        to the dead endpoint could even have timed out."""
        resp, took = self.request(name)
        self.assertSpeedmonError(resp, "no_healthy_endpoint", 503, upstream=name)
        self.assertLess(took, CONNECT_TIMEOUT,
                        f"503 took {took:.3f}s: longer than a connect timeout would")

    def waitUnhealthy(self, name, kind):
        """Waits until upstream `name`'s endpoint was marked unhealthy by a `kind` failure."""
        fake = self.fakes[NAMES.index(name)]
        return self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, UP_HEALTHY, upstream=name,
                                         endpoint=fake.address) == 0
            and prom.value_or_zero(s, FAILURES, failure_type=kind) >= 1,
            timeout=WAIT, what=f"{name} unhealthy after {kind} failures")

    def waitAllHealthy(self, startups):
        return self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, HEALTHY_PROCS) == 3
            and prom.value_or_zero(s, STARTUP + "_count") >= startups,
            timeout=WAIT, what=f"3 healthy endpoints and {startups} startups observed")

    def assertDownBy(self, name, kind, last_status):
        """Waits until upstream `name`'s endpoint is unhealthy after `kind` failures, then
        checks every figure of that state and the 503 it answers; returns the scrape."""
        address = self.fakes[NAMES.index(name)].address
        s = self.waitUnhealthy(name, kind)
        self.assertOnlyDown(s, name)
        self.assertEqual(failure_counts(s), {k: float(k == kind) for k in KINDS})
        self.assertGreaterEqual(
            prom.value_or_zero(s, CHECKS, upstream=name, endpoint=address, result=kind), 2)
        self.assertEqual(prom.value(s, STARTUP + "_count"), 3.0)
        eps, doc = self.endpoints()
        self.assertEqual((doc["healthy_endpoints"], doc["total_endpoints"]), (2, 3))
        e = eps[name]
        self.assertEqual((e["healthy"], e["failures"], e["last_result"], e["last_status"]),
                         (False, 1, kind, last_status))
        self.assertGreaterEqual(e["check_failures"], 2)
        self.assertNoHealthyEndpoint(name)
        return s

    def assertBackUp(self, name, kind, serve=True):
        """All three healthy again with exactly one more startup and the one failure."""
        s = self.waitAllHealthy(4)
        self.assertEqual(prom.value(s, STARTUP + "_count"), 4.0, "exactly one more startup")
        self.assertEqual(failure_counts(s), {k: float(k == kind) for k in KINDS})
        self.assertMetric(s, 1, UP_HEALTHY, upstream=name,
                          endpoint=self.fakes[NAMES.index(name)].address)
        if serve:
            self.assertServes(name)
        return s

    def assertOnlyDown(self, samples, name):
        for n, f in zip(NAMES, self.fakes):
            self.assertMetric(samples, 0 if n == name else 1, UP_HEALTHY, upstream=n,
                              endpoint=f.address)
        self.assertMetric(samples, 2, HEALTHY_PROCS)
        self.assertMetric(samples, 3, TOTAL_PROCS)


class KillAndRestartTest(HealthTestBase):
    def test_all_healthy_at_start(self):
        s = self.start_three()
        self.assertMetric(s, 3, HEALTHY_PROCS)
        self.assertMetric(s, 3, TOTAL_PROCS)
        self.assertEqual(failure_counts(s), {k: 0.0 for k in KINDS})
        self.assertEqual(prom.value(s, STARTUP + "_bucket", le="+Inf"), 3.0)
        for n, f in zip(NAMES, self.fakes):
            self.assertMetric(s, 1, UP_HEALTHY, upstream=n, endpoint=f.address)
            for bad in KINDS:
                self.assertMetric(s, 0, CHECKS, upstream=n, endpoint=f.address, result=bad)
        self.assertEqual(self.ready(), (200, {"ready": True, "listeners_up": True,
                                              "healthy_endpoints": 3, "endpoints": 3}))
        eps, doc = self.endpoints()
        self.assertEqual((doc["processes"], doc["healthy_endpoints"], doc["total_endpoints"]),
                         ([], 3, 3))
        self.assertEqual(sorted(eps), NAMES)
        for n, f in zip(NAMES, self.fakes):
            e = eps[n]
            self.assertEqual(set(e), {"upstream", "endpoint", "health_checked", "healthy",
                                      "checks", "check_failures", "failures", "last_check",
                                      "last_result", "last_status", "startup_seconds"})
            self.assertEqual((e["endpoint"], e["health_checked"], e["healthy"],
                              e["check_failures"], e["failures"], e["last_result"],
                              e["last_status"]),
                             (f.address, True, True, 0, 0, "success", 200), n)
            self.assertGreaterEqual(e["checks"], 1)
            self.assertGreaterEqual(e["startup_seconds"], 0)
            self.assertLess(abs(e["last_check"] - time.time()), 60)
        # The checks are plain GETs of the configured path.
        seen = [r for r in self.fakes[0].requests() if r["target"] == "/status"]
        self.assertTrue(seen)
        self.assertEqual(seen[0]["method"], "GET")
        for n in NAMES:
            self.assertServes(n)

    def test_killed_emulator_goes_to_503_and_comes_back(self):
        self.start_three()
        victim = self.fakes[1]
        port, address = victim.port, victim.address
        self.assertServes("emu2")  # leaves a pooled keep-alive connection to the victim
        victim.proc.kill()  # SIGKILL: no goodbye, just refused connects from now on
        t_kill = time.time()

        self.assertDownBy("emu2", "connect", 0)
        t_seen_down = time.time()
        s = self.waitMetric(self.sm, 1, REQ, upstream="emu2", route="bytes", method="GET",
                            code="503")
        self.assertEqual(prom.nonzero(s, UP_ERRORS), {}, "no connect was even tried")
        self.assertServes("emu1")
        self.assertServes("emu3")
        self.assertEqual(self.ready(), (200, {"ready": True, "listeners_up": True,
                                              "healthy_endpoints": 2, "endpoints": 3}))
        e = self.endpoints()[0]["emu2"]
        first_startup = e["startup_seconds"]  # the one at start, still the last observed

        # More failed checks are not more failures: the counter counts transitions.
        self.sm.metrics_when(lambda s: prom.value_or_zero(
            s, CHECKS, upstream="emu2", endpoint=address, result="connect") >= 5,
            timeout=WAIT, what="5 failed checks of emu2")
        self.assertEqual(failure_counts(self.sm.metrics()),
                         {"timeout": 0.0, "connect": 1.0, "status": 0.0})

        time.sleep(1.0)  # down long enough that its startup time clearly spans the outage
        t_restart = time.time()
        back = self.start_fake("--port", str(port))
        self.assertEqual(back.port, port)
        self.fakes[1] = back
        self.assertBackUp("emu2", "connect", serve=False)
        t_seen_up = time.time()
        # The connection pooled before the kill is dead: the first request after the
        # restart, an action that must not be sent twice, still lands exactly once.
        resp = self.raw(self.sm.listener_port("emu2")).request(
            "POST", "/action", [("Content-Type", "application/json")], b'{"action":"a"}')
        self.assertEqual((resp.status, resp.json()["step_number"]), (200, 1))
        self.assertServes("emu2")

        e = self.endpoints()[0]["emu2"]
        self.assertEqual((e["healthy"], e["failures"], e["last_result"], e["last_status"]),
                         (True, 1, "success", 200))
        self.assertNotEqual(e["startup_seconds"], first_startup)
        # From the failure that tipped it (before we saw it down) to its first pass (after
        # the restart, before we saw it up).
        self.assertGreaterEqual(e["startup_seconds"], t_restart - t_seen_down)
        self.assertLessEqual(e["startup_seconds"], t_seen_up - t_kill)
        self.assertEqual(self.ready()[0], 200)
        seen = back.stats()
        self.assertGreaterEqual(seen["by_route"].pop("GET /status"), 1)  # its health checks
        self.assertEqual(seen["by_route"], {"GET /bytes/100": 1, "POST /action": 1})
        self.assertEqual(seen["duplicate_request_ids"], [])
        # The log names each transition once, and only the endpoint that changed.
        log = self.sm.stderr()
        self.assertEqual(log.count(f"endpoint emu2/{address} is unhealthy"), 1, log)
        self.assertEqual(log.count(f"endpoint emu2/{address} is healthy"), 2, log)  # start, back
        for other in (self.fakes[0], self.fakes[2]):
            self.assertEqual(log.count(f"/{other.address} is healthy"), 1, log)

    def test_all_down_is_not_ready_until_one_returns(self):
        self.start_three()
        ports = [f.port for f in self.fakes]
        for f in self.fakes:
            f.proc.kill()
        s = self.waitMetric(self.sm, 0, HEALTHY_PROCS)
        self.sm.metrics_when(lambda s: failure_counts(s)["connect"] == 3, timeout=WAIT,
                             what="3 connect failures")
        self.assertEqual(self.ready(), (503, {"ready": False, "listeners_up": True,
                                              "healthy_endpoints": 0, "endpoints": 3}))
        for n in NAMES:
            self.assertNoHealthyEndpoint(n)
        self.assertEqual(self.endpoints()[1]["healthy_endpoints"], 0)

        self.start_fake("--port", str(ports[2]))
        s = self.sm.metrics_when(lambda s: prom.value_or_zero(s, HEALTHY_PROCS) == 1,
                                 timeout=WAIT, what="1 healthy endpoint")
        self.assertEqual(prom.value(s, STARTUP + "_count"), 4.0)
        self.assertEqual(self.ready(), (200, {"ready": True, "listeners_up": True,
                                              "healthy_endpoints": 1, "endpoints": 3}))
        self.assertServes("emu3")
        self.assertNoHealthyEndpoint("emu1")


class FailureKindTest(HealthTestBase):
    def test_status_500_is_a_status_failure(self):
        self.start_three()
        fake = self.fakes[0]
        fake.control(status_code=500)
        self.assertDownBy("emu1", "status", 500)
        fake.reset_stats()
        self.assertNoHealthyEndpoint("emu1")
        self.assertNotIn("GET /bytes/100", fake.stats()["by_route"], "no traffic when unhealthy")
        fake.control(status_code=200)
        self.assertBackUp("emu1", "status")

    def test_slow_health_answer_is_a_timeout_failure(self):
        self.start_three()
        fake = self.fakes[2]
        fake.control(latency_ms=5000)  # every answer (not /_control) waits past the timeout
        self.assertDownBy("emu3", "timeout", 0)
        fake.control(latency_ms=0)
        self.assertBackUp("emu3", "timeout")

    def test_hanging_health_path_is_a_timeout_failure(self):
        hang = dict(HEALTH_CHECK, path="/status?misbehave=hang")
        self.fakes = [self.start_fake() for _ in NAMES]
        cfg = harness.proxy_config({n: [f.address] for n, f in zip(NAMES, self.fakes)},
                                   health_check=HEALTH_CHECK)
        cfg["upstreams"][0]["health_check"] = hang
        self.sm = self.start_speedmon(cfg)
        address = self.fakes[0].address
        s = self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, UP_HEALTHY, upstream="emu1", endpoint=address) == 0
            and prom.value_or_zero(s, CHECKS, upstream="emu1", endpoint=address,
                                   result="timeout") >= 2,
            timeout=WAIT, what="emu1 unhealthy after 2 timed-out checks")
        self.assertMetric(s, 0, CHECKS, upstream="emu1", endpoint=address, result="success")
        self.assertEqual(failure_counts(s)["status"], 0.0)
        self.assertEqual(failure_counts(s)["connect"], 0.0)
        e = self.endpoints()[0]["emu1"]
        self.assertEqual((e["healthy"], e["last_result"], e["last_status"]),
                         (False, "timeout", 0))
        self.assertNoHealthyEndpoint("emu1")
        self.assertServes("emu2")

    def test_expected_statuses_makes_200_a_failure(self):
        want_204 = dict(HEALTH_CHECK, expected_statuses=[204])
        s = self.start_three(("--status-code", "204"), {"emu1": want_204, "emu2": want_204})
        self.assertMetric(s, 3, HEALTHY_PROCS)
        self.assertEqual(self.endpoints()[0]["emu1"]["last_status"], 204)

        self.fakes[0].control(status_code=200)  # emu1 wants 204: now failing
        self.fakes[2].control(status_code=200)  # emu3 takes any 2xx: still fine
        self.assertDownBy("emu1", "status", 200)
        e = self.endpoints()[0]["emu3"]
        self.assertEqual((e["healthy"], e["last_result"], e["last_status"]),
                         (True, "success", 200))
        self.fakes[0].control(status_code=204)
        self.assertBackUp("emu1", "status")


class BalancingTest(harness.HarnessTestCase):
    def test_an_unhealthy_endpoint_gets_no_traffic_until_it_recovers(self):
        sick, well = self.start_fakes(2)
        for policy in ("least_requests", "round_robin"):
            with self.subTest(load_balancing=policy):
                sick.control(status_code=200)
                sm = self.proxy_for(sick, well, health_check=HEALTH_CHECK,
                                    upstream={"load_balancing": policy})
                sm.metrics_when(lambda s: prom.value_or_zero(s, STARTUP + "_count") == 2,
                                timeout=WAIT, what="both endpoints confirmed healthy")
                sick.control(status_code=500)
                self.waitMetric(sm, 0, UP_HEALTHY, upstream="emu", endpoint=sick.address)
                sick.reset_stats()
                well.reset_stats()
                c = self.raw(sm.port)
                for _ in range(20):
                    r = c.request("GET", "/bytes/100")
                    self.assertEqual((r.status, r.body), (200, pattern_bytes(0, 100)))
                self.assertNotIn("GET /bytes/100", sick.stats()["by_route"])
                self.assertEqual(well.stats()["by_route"]["GET /bytes/100"], 20)

                sick.control(status_code=200)
                self.waitMetric(sm, 1, UP_HEALTHY, upstream="emu", endpoint=sick.address)
                sick.reset_stats()
                for _ in range(20):
                    self.assertEqual(self.raw(sm.port).request("GET", "/bytes/100").status, 200)
                self.assertGreater(sick.stats()["by_route"].get("GET /bytes/100", 0), 0,
                                   "a recovered endpoint gets traffic again")
                self.assertEqual(sm.stop(), 0)


class BlackholeTest(HealthTestBase):
    def blackhole(self):
        """A loopback port whose connects hang: a listener with a full accept queue, on
        which the kernel drops further SYNs."""
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            self.addCleanup(filler.close)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        probe = socket.socket()
        probe.settimeout(0.5)
        with probe, self.assertRaises(socket.timeout, msg="connects should hang"):
            probe.connect(("127.0.0.1", port))
        return f"127.0.0.1:{port}"

    def test_unreachable_endpoint_is_skipped_without_a_connect_timeout(self):
        # Connects that hang are the case where waiting would cost connect_timeout on
        # every request: once the checks time out, the 503 comes without a connect.
        up = self.start_fakes(2)
        hole = self.blackhole()
        self.sm = self.start_speedmon(harness.proxy_config(
            {"emu1": [up[0].address], "emu2": [hole], "emu3": [up[1].address]},
            health_check=HEALTH_CHECK))
        self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, UP_HEALTHY, upstream="emu2", endpoint=hole) == 0
            and prom.value_or_zero(s, CHECKS, upstream="emu2", endpoint=hole,
                                   result="timeout") >= 2,
            timeout=WAIT, what="emu2 unhealthy after 2 timed-out checks")
        e = self.endpoints()[0]["emu2"]
        self.assertEqual((e["healthy"], e["last_result"], e["last_status"]),
                         (False, "timeout", 0))
        self.assertEqual(self.ready()[1]["healthy_endpoints"], 2)
        for _ in range(3):
            self.assertNoHealthyEndpoint("emu2")
        s = self.waitMetric(self.sm, 3, REQ, upstream="emu2", route="bytes", method="GET",
                            code="503")
        self.assertEqual(prom.nonzero(s, UP_ERRORS), {}, "no connect was even tried")
        self.assertServes("emu1")
        self.assertServes("emu3")


class DownAtStartTest(HealthTestBase):
    """An emulator that is not up yet when speedmon starts (unhealthy_threshold 10)."""

    def test_startup_counts_from_the_first_check(self):
        # process_startup_seconds runs "from an endpoint's first check or its
        # failure to its next healthy". This endpoint never failed after being up: its
        # startup is the whole wait since its first check, at speedmon's start.
        slow = dict(HEALTH_CHECK, unhealthy_threshold=10)
        up = self.start_fakes(2)
        port = harness.free_port()
        cfg = harness.proxy_config({"emu1": [up[0].address], "emu2": [f"127.0.0.1:{port}"],
                                    "emu3": [up[1].address]}, health_check=slow)
        self.sm = self.start_speedmon(cfg)
        t_ready = time.time()  # its first check ran before speedmon said it was ready
        address = f"127.0.0.1:{port}"
        self.sm.metrics_when(lambda s: prom.value_or_zero(
            s, CHECKS, upstream="emu2", endpoint=address, result="connect") >= 10,
            timeout=WAIT, what="10 refused checks of emu2")
        self.waitMetric(self.sm, 2, STARTUP + "_count")
        t_fake = time.time()
        self.start_fake("--port", str(port))
        s = self.sm.metrics_when(lambda s: prom.value_or_zero(s, STARTUP + "_count") == 3,
                                 timeout=WAIT, what="emu2's startup observed")
        self.assertMetric(s, 1, UP_HEALTHY, upstream="emu2", endpoint=address)
        e = self.endpoints()[0]["emu2"]
        self.assertEqual((e["healthy"], e["last_result"]), (True, "success"))
        self.assertGreaterEqual(
            e["startup_seconds"], t_fake - t_ready,
            f"startup {e['startup_seconds']:.3f}s is shorter than the {t_fake - t_ready:.3f}s "
            "emu2 was down after its first check")

    def test_an_emulator_still_booting_is_not_a_failure(self):
        # process_failures_total counts healthy -> unhealthy: an endpoint that never
        # passed a check was never healthy, so its boot is a startup, not a failure.
        up = self.start_fakes(2)
        port = harness.free_port()
        address = f"127.0.0.1:{port}"
        self.sm = self.start_speedmon(harness.proxy_config(
            {"emu1": [up[0].address], "emu2": [address], "emu3": [up[1].address]},
            health_check=HEALTH_CHECK))
        s = self.sm.metrics_when(
            lambda s: prom.value_or_zero(s, CHECKS, upstream="emu2", endpoint=address,
                                         result="connect") >= 3
            and prom.value_or_zero(s, STARTUP + "_count") == 2,
            timeout=WAIT, what="3 refused checks of emu2, 2 startups")
        self.assertMetric(s, 0, UP_HEALTHY, upstream="emu2", endpoint=address)
        self.assertMetric(s, 2, HEALTHY_PROCS)
        self.assertEqual(failure_counts(s), {k: 0.0 for k in KINDS},
                         "an emulator that never came up counted as failed")
        self.assertEqual(self.endpoints()[0]["emu2"]["failures"], 0)
        self.start_fake("--port", str(port))
        s = self.waitMetric(self.sm, 3, STARTUP + "_count")
        self.assertEqual(failure_counts(s), {k: 0.0 for k in KINDS})


if __name__ == "__main__":
    unittest.main()
