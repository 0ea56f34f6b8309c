"""A runner script written against the in-process monitoring API (agent_script.py) runs
unchanged against speedmon through the compatibility modules, in its own process: its
emulator requests are proxied and counted, its experiments, pattern and reuse are stored
(the last one recorded just before the script ends, delivered at exit), its SLA check
prints what speedmon says and its alert rule is in speedmon."""

import os
import re
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


class ReadmeExamplesTest(clientcase.ClientCase):
    """The README examples that make a SpeedmonClient run as written against a live
    speedmon (its address and a spool directory substituted)."""

    def examples(self):
        source = harness.fake._source_dir()
        out = []
        for doc in ("README.md", os.path.join("clients", "python", "README.md")):
            with open(os.path.join(source, doc)) as f:
                blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
            out += [(doc, b) for b in blocks if "SpeedmonClient(" in b]
        self.assertEqual(len(out), 2, "one SpeedmonClient example in each README")
        return out

    def test_the_readme_examples_run(self):
        sm = self.start_speedmon(self.config(alerting={"evaluation_interval": "100ms"}))
        for n, (doc, code) in enumerate(self.examples()):
            with self.subTest(doc=doc):
                spool = os.path.join(self.workdir, f"spool-{n}")
                code = (code.replace('"http://127.0.0.1:8000"', repr(sm.admin_url))
                        .replace('"/var/lib/agent/speedmon-spool"', repr(spool)))
                p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, timeout=60, cwd=self.workdir)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.splitlines()[0], "False")  # exp_002 failed
        rows = dict(clientcase.sqlite3.connect(self.store).execute(
            "SELECT id, status FROM experiments").fetchall())
        self.assertEqual(rows, {"exp_001": "success", "exp_002": "failure"})


if __name__ == "__main__":
    unittest.main()
