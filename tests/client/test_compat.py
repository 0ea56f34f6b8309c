"""A runner script written against the in-process monitoring API (agent_script.py) runs
unchanged against speedmon through the compatibility modules, in its own process: its
emulator requests are proxied and counted, its experiments, pattern and reuse are stored
(the last one recorded just before the script ends, delivered at exit), its SLA check
prints what speedmon says and its alert rule is in speedmon."""

import os
import subprocess
import sys
import unittest

import clientcase
from clientcase import harness

HERE = os.path.dirname(os.path.abspath(__file__))


class CompatTest(clientcase.ClientCase):
    def test_a_script_written_for_the_in_process_api_runs_unchanged(self):
        fake = self.start_fake()
        sm = self.start_speedmon(self.config(upstreams={"emulator-1": [fake.address]}))
        env = dict(os.environ, SPEEDMON_URL=sm.admin_url,
                   SPEEDMON_SPOOL_DIR=os.path.join(self.workdir, "spool"),
                   EMULATOR_URLS=fake.url, PYTHONPATH="")
        p = subprocess.run([sys.executable, os.path.join(HERE, "agent_script.py")], env=env,
                           cwd=HERE, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Memory: True, used True\nstatus idle\n✅ Meeting SLA requirements\n"
                                   "rules ['custom_performance']\n")

        with clientcase.sqlite3.connect(self.store) as db:
            self.assertEqual(
                db.execute("SELECT id, status, script_compilation_time_ms, "
                           "checkpoint_loading_time_ms FROM experiments ORDER BY id").fetchall(),
                [("exp_001", "success", 87.3, 425.8), ("exp_002", "failure", None, None)])
            self.assertEqual(db.execute("SELECT id, reuse_count FROM patterns").fetchall(),
                             [("p_001", 1)])
        rule = {r["id"]: r for r in sm.get_json("/api/v1/alert-rules")["rules"]}
        self.assertEqual({k: rule["custom_performance"][k] for k in
                          ("metric", "operator", "threshold", "severity", "origin")},
                         {"metric": "speedrun.average_script_compilation_ms", "operator": ">",
                          "threshold": 120.0, "severity": "warning", "origin": "api"})
        samples = self.waitMetricSum(sm, 2.0, "pokemon_speedrun_http_requests_total",
                                     upstream="emulator-1")
        self.assertMetric(samples, 1.0, "pokemon_speedrun_http_requests_total",
                          upstream="emulator-1", route="action", method="POST", code="200")
        self.assertEqual(len(os.listdir(os.path.join(self.workdir, "spool"))), 1)  # slot-0


if __name__ == "__main__":
    unittest.main()
