"""SIGHUP: a valid file reloads [alerting] (evaluation_interval included) and [sla] at
once and is counted; an invalid one is logged and counted, and the running config keeps
serving."""

import copy
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

RELOADS = "pokemon_speedrun_config_reloads_total"


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
        self.assertIn("SIGHUP: reloaded [log], [alerting] and [sla]", self.sm.stderr())

        # Back to an hour: after the reload no further round, exactly.
        self.reload_interval("1h")
        settled = self.evaluations()
        time.sleep(1.0)
        self.assertEqual(self.evaluations(), settled)
        self.assertEqual(prom.value(self.sm.metrics(), RELOADS, result="failure"), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
