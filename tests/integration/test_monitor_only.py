"""A config without [[listeners]] runs speedmon as a monitor only: it says so at start,
is ready without proxying anything, stores experiments, samples the host and a watched
process, health-checks an upstream, and evaluates and raises alerts."""

import json
import os
import sys
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402


class MonitorOnlyTest(harness.HarnessTestCase):
    def test_no_listeners_runs_everything_but_the_proxy(self):
        fake = self.start_fake()
        admin_port = harness.free_port()
        config = {
            "admin": {"address": f"127.0.0.1:{admin_port}"},
            "upstreams": [{"name": "emu", "endpoints": [fake.address],
                           "health_check": {"path": "/status", "interval": "100ms",
                                            "timeout": "100ms"}}],
            "processes": [{"name": "watched", "pid": fake.proc.pid}],
            "speedrun": {"store_path": os.path.join(self.workdir, "speedmon.db")},
            "alerting": {"default_rules": False, "evaluation_interval": "100ms",
                         "rules": [{"id": "always", "metric": "system.cpu_percent",
                                    "operator": ">=", "threshold": 0.0, "for": "0s"}]},
        }
        sm = self.start_speedmon(config)
        self.assertIn("monitor-only: the config has no [[listeners]], so nothing is proxied",
                      sm.stderr())
        self.assertNotIn("listening:", sm.stderr())

        status, _, body = sm.get("/ready")  # ready although no endpoint may be healthy yet
        self.assertEqual((status, json.loads(body)["ready"]), (200, True), body)

        r = requests.post(sm.admin_url + "/api/v1/experiments", timeout=10, json={
            "experiment_id": "mon-1", "status": "success", "duration_seconds": 2.5})
        self.assertEqual((r.status_code, r.json()),
                         (201, {"experiment_id": "mon-1", "status": "created"}))

        samples = self.waitMetric(sm, 1.0, "pokemon_speedrun_upstream_healthy",
                                  upstream="emu", endpoint=fake.address)
        self.assertMetric(samples, 1.0, "pokemon_speedrun_experiments_total",
                          status="success", strategy="unknown")
        self.assertGreater(prom.value(samples, "pokemon_speedrun_process_resident_memory_bytes",
                                      process="watched"), 0)
        self.assertGreater(prom.value(samples, "pokemon_speedrun_system_memory_bytes"), 0)
        self.assertEqual(prom.select(samples, "pokemon_speedrun_http_requests_total"), {})

        procs = sm.get_json("/api/v1/processes")["processes"]
        self.assertEqual([(p["name"], p["running"], p["pid"]) for p in procs],
                         [("watched", True, fake.proc.pid)])
        self.assertEqual(sm.get_json("/api/v1/upstreams")["upstreams"][0]["listeners"], [])

        def firing():
            alerts = sm.get_json("/api/v1/alerts")["alerts"]
            return [a for a in alerts if a.get("state") == "firing"]
        alerts = harness.wait_for(firing, 10, what="the rule firing")
        self.assertEqual([a["labels"]["rule_id"] for a in alerts], ["always"])


if __name__ == "__main__":
    unittest.main()
