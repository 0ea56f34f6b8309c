"""The shipped monitoring files against the real thing: a fake emulator, speedmon, a real
Prometheus (scraping every 1s with monitoring/alert_rules.yml loaded) and a real
Alertmanager. After scripted agent traffic, experiments and patterns, every query of
monitoring/grafana_dashboard.json must be answered without error and with data, and
every rule of alert_rules.yml must be loaded and healthy.

Each target is also asked without its `or on() vector(0)` fallback, so a misspelt metric
cannot hide behind the explicit zero: only the panels of NOTHING_IS_THE_TRUTH may come
back empty that way.
"""

import json
import math
import os
import re
import sys
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import stack  # noqa: E402  (tests/e2e/stack.py)

ZERO = " or on() vector(0)"

# (panel title, refId) -> why its query, without the zero fallback, has no series in
# this scenario although the query is right. Keep it short: every other target must
# show data.
NOTHING_IS_THE_TRUTH = {
    ("Firing (Prometheus)", "A"): "every alert of alert_rules.yml has `for` >= 1m and "
                                  "the test ends before any could fire",
}

# What one round of agent traffic sends: (listener, method, path, expected status).
ROUND = ([("emu", "POST", "/initialize", 200)] + [("emu", "POST", "/action", 200)] * 5
         + [("emu", "GET", "/status", 200)] * 3 + [("emu", "GET", "/nope", 404)] * 2
         + [("emu", "GET", "/misbehave/reset", 502), ("down", "POST", "/action", 503)])
FIRST_BEFORE_EVAL = "0001-01-01T00:00:00Z"  # Prometheus's lastEvaluation before the first


def finite_values(result):
    """The finite sample values of a /api/v1/query result (vector, matrix or scalar)."""
    data = result["data"]
    if data["resultType"] == "scalar":
        values = [data["result"][1]]
    elif data["resultType"] == "vector":
        values = [r["value"][1] for r in data["result"]]
    else:
        values = [v[1] for r in data["result"] for v in r["values"]]
    return [float(v) for v in values if math.isfinite(float(v))]


def shipped_rule_groups():
    """[(group name, [rule names in order])] as written in monitoring/alert_rules.yml."""
    groups = []
    with open(stack.monitoring_path("alert_rules.yml"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"  - name: (\S+)\s*$", line)
            if m:
                groups.append((m.group(1), []))
            m = re.match(r"      - (?:record|alert): (\S+)\s*$", line)
            if m:
                groups[-1][1].append(m.group(1))
    return groups


class DashboardTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        refused = self.start_fake("--refuse")  # the second upstream never gets healthy
        self.am = stack.Alertmanager(self.workdir).start()
        self.addCleanup(self.am.stop)
        cfg = harness.proxy_config(
            {"emu": [self.fake.address], "down": [refused.address]}, workers=2,
            health_check={"path": "/status", "interval": "500ms", "timeout": "250ms",
                          "healthy_threshold": 1, "unhealthy_threshold": 1})
        cfg["processes"] = [{"name": "emulator-1", "pid": self.fake.proc.pid}]
        cfg["speedrun"]["store_path"] = os.path.join(self.workdir, "speedmon.db")
        cfg["alerting"] = {
            "default_rules": True, "evaluation_interval": "1s", "resend_interval": "2s",
            # Fires at once and is re-sent every 2s, so the notification panels have data.
            "rules": [{"id": "down_upstream", "name": "DownUpstream",
                       "metric": 'pokemon_speedrun_upstream_healthy{upstream="down"}',
                       "operator": "==", "threshold": 0, "for": "0s",
                       "severity": "warning"}],
            "alertmanagers": [{"url": self.am.url}],
        }
        self.sm = self.start_speedmon(cfg)
        self.instance = f"127.0.0.1:{self.sm.admin_port}"
        self.prom = stack.Prometheus(self.workdir, self.instance, self.am.address).start()
        self.addCleanup(self.prom.stop)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    # ---- helpers ----------------------------------------------------------------------

    def wait_query(self, expr, timeout=30.0):
        """Polls Prometheus until expr has a finite sample; returns the answer."""
        last = {}

        def check():
            last["r"] = self.prom.query(expr)
            return last["r"].get("status") == "success" and finite_values(last["r"])
        try:
            harness.wait_for(check, timeout, interval=0.25, what=expr)
        except AssertionError as e:
            raise AssertionError(f"{e}; last answer {last.get('r')}") from None
        return last["r"]

    def agent_round(self):
        for listener, method, path, code in ROUND:
            url = f"http://127.0.0.1:{self.sm.listener_port(listener)}{path}"
            r = self.session.request(method, url, json={} if method == "POST" else None)
            self.assertEqual(r.status_code, code, f"{method} {listener}{path}: {r.text[:200]}")
            if code == 503:
                self.assertEqual(r.json()["upstream"], "down")

    def post(self, path, doc, code):
        r = requests.post(self.sm.admin_url + path, json=doc, timeout=10)
        self.assertEqual(r.status_code, code, f"POST {path}: {r.text}")
        return r.json()

    def speedrun_round(self, n):
        ok = {"experiment_id": f"exp-{n}-ok", "status": "success", "duration_seconds": 41.5,
              "script_length": 120, "script_compilation_time_ms": 80.0,
              "checkpoint_loading_time_ms": 420.0, "ai_strategy": "genetic",
              "pattern_discoveries": 2, "performance_score": 0.9}
        bad = {"experiment_id": f"exp-{n}-bad", "status": "failure", "duration_seconds": 12,
               "script_compilation_time_ms": 160.0, "checkpoint_loading_time_ms": 800.0,
               "ai_strategy": "reinforcement", "error_message": "stuck in a menu"}
        self.post("/api/v1/experiments", ok, 201)
        self.post("/api/v1/experiments", [bad], 201)
        self.post("/api/v1/patterns", [
            {"pattern_id": f"pat-{n}-move", "pattern_type": "movement", "quality_score": 0.85,
             "discovery_time_seconds": 3.5, "experiment_id": ok["experiment_id"],
             "ai_worker": "worker-1"},
            {"pattern_id": f"pat-{n}-battle", "pattern_type": "battle", "quality_score": 0.75,
             "experiment_id": ok["experiment_id"], "ai_worker": "worker-2"}], 201)
        reuse = self.post(f"/api/v1/patterns/pat-{n}-move/reuse", None, 200)
        self.assertEqual(reuse, {"status": "counted", "pattern_id": f"pat-{n}-move",
                                 "reuse_count": 1})

    def drive(self):
        """Two rounds, each seen by Prometheus: the series exist from the first, and the
        second makes every rate (and every quantile of rates) non-zero."""
        def down_unhealthy():
            ups = {u["name"]: u for u in self.sm.get_json("/api/v1/upstreams")["upstreams"]}
            return [e["healthy"] for e in ups["down"]["endpoints"]] == [False]
        harness.wait_for(down_unhealthy, 10, what="upstream down unhealthy")
        self.wait_query(f'up{{job="speedmon", instance="{self.instance}"}} == 1')
        for n in (1, 2):
            self.agent_round()
            self.speedrun_round(n)
            self.wait_query(f"sum(pokemon_speedrun_http_requests_total) == {n * len(ROUND)}")
            self.wait_query(f"sum(pokemon_speedrun_experiments_total) == {2 * n}")
            self.wait_query(f"sum(pokemon_speedrun_pattern_discoveries_total) == {2 * n}")
            self.wait_query(f"pokemon_speedrun_pattern_reuses_total == {n}")

    def dashboard_targets(self):
        with open(stack.monitoring_path("grafana_dashboard.json"), encoding="utf-8") as f:
            dash = json.load(f)
        variables = {v["name"] for v in dash["templating"]["list"]}
        out = []
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                out.append((panel["title"], t["refId"],
                            stack.substitute_variables(t["expr"], variables)))
        return dash, out

    # ---- the test ---------------------------------------------------------------------

    def test_every_dashboard_query_has_data_and_every_rule_is_healthy(self):
        self.drive()
        dash, targets = self.dashboard_targets()
        self.assertGreater(len(targets), 50)

        # Each query as Grafana sends it, and without its zero fallback. Polled, since
        # recording rules and ALERTS appear one evaluation after the samples.
        pending = {}
        for title, ref, expr in targets:
            pending[(title, ref, "as shipped")] = expr
            if ZERO in expr and (title, ref) not in NOTHING_IS_THE_TRUTH:
                pending[(title, ref, "without the zero fallback")] = expr.replace(ZERO, "")
        answers = {}

        def all_answered():
            for key, expr in list(pending.items()):
                r = self.prom.query(expr)
                answers[key] = r
                if r.get("status") == "success" and finite_values(r):
                    del pending[key]
            return not pending
        try:
            harness.wait_for(all_answered, 30, interval=1.0, what="every dashboard query")
        except AssertionError:
            pass
        failures = [f"{t} [{ref}] {how}: {expr}\n    -> {json.dumps(answers[(t, ref, how)])[:400]}"
                    for (t, ref, how), expr in pending.items()]
        if failures:
            self.fail(f"{len(failures)} dashboard queries without data:\n" + "\n".join(failures))

        # The allow-list names real targets, and they really are empty (else drop them).
        by_key = {(t, ref): expr for t, ref, expr in targets}
        for key, why in NOTHING_IS_THE_TRUTH.items():
            with self.subTest(nothing=key):
                self.assertIn(key, by_key)
                r = self.prom.query(by_key[key].replace(ZERO, ""))
                self.assertEqual(r["status"], "success", r)
                self.assertEqual(r["data"]["result"], [], f"{key} has data now: {why}")

        self.check_variables(dash)
        self.check_rules()

    def check_variables(self, dash):
        """The instance and upstream variables list this speedmon and its upstreams."""
        queries = {v["name"]: v["query"]["query"] for v in dash["templating"]["list"]
                   if v["type"] == "query"}
        self.assertEqual(set(queries), {"instance", "upstream"})
        for name, want in (("instance", [self.instance]), ("upstream", ["down", "emu"])):
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", queries[name])
            self.assertIsNotNone(m, queries[name])
            selector = stack.substitute_variables(m.group(1), set(queries))
            status, doc = self.prom.get_json(f"/api/v1/label/{m.group(2)}/values",
                                             **{"match[]": selector})
            self.assertEqual((status, doc["status"]), (200, "success"), doc)
            self.assertEqual(doc["data"], want, f"variable {name}")

    def check_rules(self):
        """Every group of alert_rules.yml loaded (the API lists groups by name), each with
        its rules in order; every rule evaluated and ok."""
        shipped = shipped_rule_groups()
        self.assertEqual(len(shipped), 5)

        def evaluated():
            groups = self.prom.rules()
            rules = [r for g in groups for r in g["rules"]]
            return groups if all(r["lastEvaluation"] != FIRST_BEFORE_EVAL for r in rules) \
                else None
        groups = harness.wait_for(evaluated, 15, interval=0.5, what="every rule evaluated")
        self.assertEqual({g["name"]: [r["name"] for r in g["rules"]] for g in groups},
                         dict(shipped))
        for g in groups:
            self.assertEqual(g["file"], stack.monitoring_path("alert_rules.yml"))
            self.assertEqual(g["interval"], 1)
            for r in g["rules"]:
                with self.subTest(group=g["name"], rule=r["name"]):
                    self.assertEqual((r["health"], r.get("lastError", "")), ("ok", ""), r)

        targets = self.prom.targets()
        self.assertEqual([(t["labels"]["job"], t["labels"]["instance"], t["health"])
                          for t in targets], [("speedmon", self.instance, "up")])


if __name__ == "__main__":
    unittest.main()
