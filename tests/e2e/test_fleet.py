"""A fleet: three speedmons, each in front of its own two fake emulators and each given
its own experiments and patterns, and one real Prometheus that finds them through
file_sd_configs and loads the shipped monitoring/alert_rules.yml.

The fleet's SLA figures, recorded by Prometheus from the window counts each speedmon
exports (group speedmon.fleet), must equal what this test computes from the union of
every experiment and pattern it posted; the healthy-emulators alert must follow the sum
over the pool (two healthy emulators behind each speedmon is six, not three alerts);
and a speedmon killed with SIGKILL must show as up == 0 while the figures, now from the
two left, stay exact.
"""

import math
import os
import signal
import sys
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import stack  # noqa: E402  (tests/e2e/stack.py)

# The default [sla] targets: compile under 100 ms, checkpoint under 500 ms.
COMPILE_TARGET_MS = 100.0
CHECKPOINT_TARGET_MS = 500.0


def experiments_for(i):
    """Instance i's experiments: (id, status, compile ms or None, checkpoint ms or None).
    A time of 0.0 (a runner's default) is "not measured", like an absent one."""
    rows = {
        0: [("ok", "success", 87.3, 425.8), ("slow", "success", 120.0, 510.0),
            ("zero", "failure", 0.0, 0.0), ("bare", "success", None, None)],
        1: [("a", "success", 56.7, 480.0), ("b", "timeout", 99.9, 499.9),
            ("c", "success", 0.0, 650.0), ("d", "success", 150.5, None),
            ("e", "error", 42.0, 12.5)],
        2: [("x", "success", 100.0, 500.0), ("y", "cancelled", None, 0.0),
            ("z", "success", 63.4, 300.0)],
    }[i]
    return [(f"fleet-{i}-{name}", status, c, k) for name, status, c, k in rows]


def patterns_for(i):
    return [(f"pat-{i}-{n}", q) for n, q in enumerate({0: [0.82, 0.5], 1: [0.91, 0.66, 0.7],
                                                       2: [0.33]}[i])]


def fleet_figures(instances):
    """The five SLA figures and the two mean times over the union of these instances'
    posts, computed as speedmon defines them (times <= 0 or absent: not measured)."""
    exps = [e for i in instances for e in experiments_for(i)]
    pats = [p for i in instances for p in patterns_for(i)]
    compiles = [c for _, _, c, _ in exps if c is not None and c > 0]
    checkpoints = [k for _, _, _, k in exps if k is not None and k > 0]
    return {
        "job:pokemon_speedrun_sla_experiment_success_rate:percent":
            sum(s == "success" for _, s, _, _ in exps) * 100 / len(exps),
        "job:pokemon_speedrun_sla_script_compilation_under_target:percent":
            sum(c < COMPILE_TARGET_MS for c in compiles) * 100 / len(compiles),
        "job:pokemon_speedrun_sla_checkpoint_loading_under_target:percent":
            sum(k < CHECKPOINT_TARGET_MS for k in checkpoints) * 100 / len(checkpoints),
        "job:pokemon_speedrun_sla_pattern_quality:mean": sum(q for _, q in pats) / len(pats),
        "job:pokemon_speedrun_script_compilation_seconds:mean":
            sum(compiles) / len(compiles) / 1000,
        "job:pokemon_speedrun_checkpoint_loading_seconds:mean":
            sum(checkpoints) / len(checkpoints) / 1000,
        "job:pokemon_speedrun_sla_window_experiments:sum": len(exps),
    }


# Counts and percentages of integers are exact (one division of whole numbers, in
# Prometheus as here); the means add floats in another order, so they are compared to
# 12 significant digits.
EXACT = {"job:pokemon_speedrun_sla_experiment_success_rate:percent",
         "job:pokemon_speedrun_sla_script_compilation_under_target:percent",
         "job:pokemon_speedrun_sla_checkpoint_loading_under_target:percent",
         "job:pokemon_speedrun_sla_window_experiments:sum"}


class FleetTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        health = {"path": "/status", "interval": "300ms", "timeout": "250ms",
                  "healthy_threshold": 1, "unhealthy_threshold": 1}
        self.fakes, self.speedmons = [], []
        for i in range(3):
            fakes = self.start_fakes(2)
            cfg = harness.proxy_config({"emu": [f.address for f in fakes]},
                                       health_check=health)
            # The victim is killed with SIGKILL: its exit code is not 0.
            sm = self.start_speedmon(cfg, check_exit=(i != 2))
            self.fakes.append(fakes)
            self.speedmons.append(sm)
        self.instances = [f"127.0.0.1:{sm.admin_port}" for sm in self.speedmons]
        targets = os.path.join(self.workdir, "speedmon-targets.json")
        stack.write_targets(targets, self.instances, {"environment": "fleet-test"})
        self.prom = stack.Prometheus(self.workdir, None, targets_file=targets).start()
        self.addCleanup(self.prom.stop)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    # ---- helpers ----------------------------------------------------------------------

    def post(self, sm, path, doc):
        r = self.session.post(sm.admin_url + path, json=doc, timeout=10)
        self.assertEqual(r.status_code, 201, r.text)

    def post_all(self, i):
        sm = self.speedmons[i]
        docs = []
        for eid, status, compile_ms, checkpoint_ms in experiments_for(i):
            doc = {"experiment_id": eid, "status": status, "duration_seconds": 30.0,
                   "ai_strategy": "genetic_algorithm"}
            if compile_ms is not None:
                doc["script_compilation_time_ms"] = compile_ms
            if checkpoint_ms is not None:
                doc["checkpoint_loading_time_ms"] = checkpoint_ms
            docs.append(doc)
        self.post(sm, "/api/v1/experiments", docs)
        self.post(sm, "/api/v1/patterns", [
            {"pattern_id": pid, "pattern_type": "movement", "quality_score": q}
            for pid, q in patterns_for(i)])

    def query_value(self, expr):
        """The single sample of expr now, or None when it has none."""
        r = self.prom.query(expr)
        self.assertEqual(r.get("status"), "success", r)
        result = r["data"]["result"]
        if not result:
            return None
        self.assertEqual(len(result), 1, result)
        return float(result[0]["value"][1])

    def wait_value(self, expr, want, what, timeout=20.0):
        last = {}

        def check():
            last["v"] = self.query_value(expr)
            return last["v"] is not None and want(last["v"])
        try:
            harness.wait_for(check, timeout, interval=0.25, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; {expr} = {last.get('v')}") from None
        return last["v"]

    def alert_state(self, name):
        for g in self.prom.rules():
            for r in g["rules"]:
                if r.get("type") == "alerting" and r["name"] == name:
                    return r["state"]
        raise AssertionError(f"alert {name} not loaded")

    def assert_fleet_figures(self, instances):
        want = fleet_figures(instances)
        experiments = want["job:pokemon_speedrun_sla_window_experiments:sum"]
        # The records follow the scrapes: wait until they cover exactly these instances.
        self.wait_value("job:pokemon_speedrun_sla_window_experiments:sum",
                        lambda v: v == experiments, f"{experiments} experiments in the windows")
        self.wait_value("job:pokemon_speedrun_sla_pattern_quality:mean",
                        lambda v: math.isclose(v, want["job:pokemon_speedrun_sla_pattern_quality"
                                                       ":mean"], rel_tol=1e-12),
                        "the fleet's pattern quality")
        for record, value in want.items():
            with self.subTest(record=record, instances=instances):
                got = self.query_value(record)
                if record in EXACT:
                    self.assertEqual(got, value)
                else:
                    self.assertEqual(f"{got:.12g}", f"{value:.12g}")

    # ---- the test ---------------------------------------------------------------------

    def test_fleet_figures_alert_and_a_lost_instance(self):
        for i in range(3):
            self.post_all(i)
        # HTTP success is 2xx and 3xx: three 200s and one 404 are 75 %, not 100 %.
        sm = self.speedmons[0]
        for path, code in (("/status", 200), ("/status", 200), ("/status", 200),
                           ("/nope", 404)):
            self.assertEqual(self.session.get(sm.url + path, timeout=10).status_code, code)
        harness.wait_for(lambda: sum(r["requests"] for u in sm.get_json("/api/v1/upstreams")
                                     ["upstreams"] for r in u["routes"]) == 4, 10,
                         what="4 requests counted")
        routes = [r for u in sm.get_json("/api/v1/upstreams")["upstreams"] for r in u["routes"]]
        self.assertEqual(sum(r["requests"] for r in routes), 4)
        by_route = {r["route"]: r["success_rate"] for r in routes}
        self.assertEqual(by_route["status"], 100.0)
        self.assertEqual(by_route["other"], 0.0)

        # Every speedmon scraped through the file_sd file, each with two healthy emulators.
        self.wait_value('count(up{job="speedmon", environment="fleet-test"} == 1)',
                        lambda v: v == 3, "three speedmons up")
        self.wait_value("job:pokemon_speedrun_healthy_processes:sum", lambda v: v == 6,
                        "six healthy emulators in the pool")
        self.assert_fleet_figures([0, 1, 2])
        # The fleet's success rate is not what min() or a mean of the three gives.
        per_instance = [fleet_figures([i])["job:pokemon_speedrun_sla_experiment_success_rate"
                                           ":percent"] for i in range(3)]
        fleet = fleet_figures([0, 1, 2])["job:pokemon_speedrun_sla_experiment_success_rate"
                                         ":percent"]
        self.assertNotIn(fleet, (min(per_instance), sum(per_instance) / 3))
        # Nor would it be the same if a 0.0 time counted as measured.
        self.assertNotEqual(fleet_figures([0, 1, 2])["job:pokemon_speedrun_script_compilation"
                                                     "_seconds:mean"],
                            sum(c or 0 for i in range(3) for _, _, c, _ in experiments_for(i)
                                if c is not None)
                            / sum(c is not None for i in range(3)
                                  for _, _, c, _ in experiments_for(i)) / 1000)
        # Each speedmon has 2 healthy emulators, fewer than 3; the pool has 6: no alert.
        self.assertEqual(self.alert_state("SpeedrunInsufficientHealthyProcesses"), "inactive")

        # One speedmon dies: it shows as down, and the figures are those of the other two.
        self.speedmons[2].signal(signal.SIGKILL)
        self.speedmons[2].wait(10)
        self.wait_value(f'up{{job="speedmon", instance="{self.instances[2]}"}}',
                        lambda v: v == 0, "the killed speedmon down")
        self.assertEqual(self.query_value('count(up{job="speedmon"} == 1)'), 2)
        self.assert_fleet_figures([0, 1])
        self.wait_value("job:pokemon_speedrun_healthy_processes:sum", lambda v: v == 4,
                        "four healthy emulators left")
        self.assertEqual(self.alert_state("SpeedrunInsufficientHealthyProcesses"), "inactive")

        # Both emulators behind the second speedmon stop: 2 healthy in the pool, and the
        # alert goes pending (it fires after its `for` of 1m, longer than this test).
        for fake in self.fakes[1]:
            fake.stop()
        self.wait_value("job:pokemon_speedrun_healthy_processes:sum", lambda v: v == 2,
                        "two healthy emulators left")
        harness.wait_for(lambda: self.alert_state("SpeedrunInsufficientHealthyProcesses")
                         == "pending", 10, interval=0.25, what="the alert pending")
        self.assertEqual(
            self.query_value('ALERTS{alertname="SpeedrunInsufficientHealthyProcesses", '
                             'alertstate="pending", job="speedmon"}'), 1)


if __name__ == "__main__":
    unittest.main()
