"""SIGHUP: a valid file reloads [alerting] and [sla] at once and is counted; an invalid
one is logged and counted, and the running config keeps serving."""

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


if __name__ == "__main__":
    import unittest
    unittest.main()
