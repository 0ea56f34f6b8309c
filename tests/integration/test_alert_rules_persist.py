"""Alert rules changed through the admin API are kept in the rules file next to the store:
a rule added (with the Python AlertRule's field names) and a config rule deleted are both
still so after a SIGHUP, a SIGTERM restart and a SIGKILL restart, each rule shown with its
origin."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

RELOADS = "pokemon_speedrun_config_reloads_total"

PYTHON_RULE = {
    "rule_id": "disk_full", "name": "Disk Full", "description": "Disk almost full",
    "metric_name": "system.disk_percent", "threshold_value": 97.5, "operator": "greater_than",
    "severity": "critical", "evaluation_window_seconds": 300.0,
    "minimum_duration_seconds": 120.0, "suppression_window_seconds": 3600.0, "enabled": True,
}


class AlertRulesPersistTest(harness.HarnessTestCase):
    def config(self):
        cfg = harness.proxy_config({"emu": ["127.0.0.1:9"]})
        cfg["speedrun"] = {"store_path": os.path.join(self.workdir, "speedmon.db")}
        cfg["alerting"] = {"default_rules": True, "rules": [
            {"id": "few_endpoints", "metric": "pokemon_speedrun_healthy_processes",
             "operator": "<", "threshold": 1},
            {"id": "kept", "metric": "pokemon_speedrun_total_processes", "operator": "<",
             "threshold": 1}]}
        return cfg

    def rules(self, sm):
        doc = sm.get_json("/api/v1/alert-rules")
        return {r["id"]: r["origin"] for r in doc["rules"]}, doc["deleted"]

    def expected(self):
        return ({"slow_script_compilation": "default", "slow_checkpoint_loading": "default",
                 "high_memory_usage": "default", "low_experiment_success_rate": "default",
                 "insufficient_healthy_processes": "default", "kept": "config",
                 "disk_full": "api"},
                ["few_endpoints", "high_cpu_usage"])

    def test_api_changes_survive_sighup_and_restarts(self):
        cfg = self.config()
        sm = self.start_speedmon(cfg)
        status, _, body = sm.request("POST", "/api/v1/alert-rules", PYTHON_RULE)
        self.assertEqual(status, 201, body)
        added = json.loads(body)
        self.assertEqual((added["id"], added["metric"], added["operator"], added["threshold"],
                          added["for"], added["origin"]),
                         ("disk_full", "system.disk_percent", ">", 97.5, "2m", "api"))
        for rule_id in ("few_endpoints", "high_cpu_usage"):
            status, _, body = sm.request("DELETE", "/api/v1/alert-rules/" + rule_id)
            self.assertEqual(status, 200, body)
        self.assertEqual(self.rules(sm), self.expected())

        # SIGHUP with the same file: the config rule stays deleted, the API rule stays.
        sm.signal(signal.SIGHUP)
        sm.metrics_when(lambda s: prom.value_or_zero(s, RELOADS, result="success") == 1,
                        what="one successful reload")
        self.assertEqual(self.rules(sm), self.expected())

        # A restart after SIGTERM, then one after SIGKILL.
        self.assertEqual(sm.stop(), 0)
        sm2 = self.start_speedmon(cfg)
        self.assertEqual(self.rules(sm2), self.expected())
        sm2.signal(signal.SIGKILL)
        self.assertEqual(sm2.wait(10), -signal.SIGKILL)
        sm3 = self.start_speedmon(cfg)
        self.assertEqual(self.rules(sm3), self.expected())

        # Undo: the API rule deleted, the config id posted again as an API rule.
        self.assertEqual(sm3.request("DELETE", "/api/v1/alert-rules/disk_full")[0], 200)
        status, _, body = sm3.request("POST", "/api/v1/alert-rules", {
            "id": "high_cpu_usage", "metric": "system.cpu_percent", "operator": ">",
            "threshold": 99, "for": "1m", "severity": "critical"})
        self.assertEqual(status, 201, body)
        self.assertEqual(sm3.stop(), 0)
        sm4 = self.start_speedmon(cfg)
        rules, deleted = self.rules(sm4)
        self.assertNotIn("disk_full", rules)
        self.assertEqual(rules["high_cpu_usage"], "api")
        self.assertEqual(deleted, ["few_endpoints", "high_cpu_usage"])
        with open(os.path.join(self.workdir, "speedmon.db.alert-rules.json")) as f:
            on_disk = json.load(f)
        self.assertEqual([r["id"] for r in on_disk["rules"]], ["high_cpu_usage"])
        self.assertEqual(on_disk["deleted"], ["few_endpoints", "high_cpu_usage"])

    def test_malformed_rules_file_refuses_to_start(self):
        with open(os.path.join(self.workdir, "speedmon.db.alert-rules.json"), "w") as f:
            f.write('{"version": 1, "rules": [{"id": "x"}]}')
        with self.assertRaises(AssertionError) as ctx:
            self.start_speedmon(self.config(), attempts=1)
        self.assertIn("speedmon.db.alert-rules.json: rules[0]: metric is required",
                      str(ctx.exception))


if __name__ == "__main__":
    import unittest
    unittest.main()
