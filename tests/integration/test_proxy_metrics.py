"""What speedmon reports about proxied requests: exact /metrics samples after a scripted
agent session, the recent-requests and upstreams APIs, and `promtool check metrics`.
"""

import gzip
import os
import subprocess
import sys
import time
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import REQUEST_ID, prom  # noqa: E402

REQ = "pokemon_speedrun_http_requests_total"
DUR = "pokemon_speedrun_http_request_duration_seconds"
REQ_BYTES = "pokemon_speedrun_http_request_bytes_total"
RESP_BYTES = "pokemon_speedrun_http_response_bytes_total"
IN_FLIGHT = "pokemon_speedrun_http_requests_in_flight"
UP_ERRORS = "pokemon_speedrun_upstream_errors_total"
PROMTOOL = "/usr/bin/promtool"

ACTION_BODY = b'{"action_type":"press_key","keys":["a"]}'
BODY = harness.fake.DEFAULT_BODY_BYTES


class SessionTest(harness.HarnessTestCase):
    """1x initialize, 10x action, 5x status, 1x stop, 2x GET /nope, as an agent would."""

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake, workers=2)
        self.t0 = time.time()
        s = requests.Session()
        self.addCleanup(s.close)
        self.ids = []

        def call(method, path, data=None, code=200):
            r = s.request(method, self.sm.url + path, data=data,
                          headers={"Content-Type": "application/json"} if data else {})
            self.assertEqual(r.status_code, code, path)
            self.ids.append(r.headers["X-Request-Id"])
            return r
        self.init = call("POST", "/initialize", b'{"headless":true}')
        self.actions = [call("POST", "/action", ACTION_BODY) for _ in range(10)]
        self.statuses = [call("GET", "/status") for _ in range(5)]
        self.stop_resp = call("POST", "/stop", b"{}")
        self.nopes = [call("GET", "/nope", code=404) for _ in range(2)]
        self.t1 = time.time()
        self.sm.metrics_after(19)
        harness.wait_for(lambda: len(self.sm.get_json("/api/v1/requests?limit=100")
                                     ["requests"]) >= 19, 10, what="19 recent requests")

    def test_request_counts_per_route_method_code(self):
        samples = self.sm.metrics()
        expected = {("initialize", "POST", "200"): 1, ("action", "POST", "200"): 10,
                    ("status", "GET", "200"): 5, ("stop", "POST", "200"): 1,
                    ("other", "GET", "404"): 2}
        got = {(dict(k)["route"], dict(k)["method"], dict(k)["code"]): v
               for k, v in prom.nonzero(samples, REQ, upstream="emu").items()}
        self.assertEqual(got, expected)
        for lbls in prom.select(samples, REQ):
            self.assertEqual(set(dict(lbls)), {"upstream", "route", "method", "code"})

    def test_duration_histograms_count_every_request(self):
        samples = self.sm.metrics()
        for route, n in [("initialize", 1), ("action", 10), ("status", 5), ("stop", 1),
                         ("other", 2)]:
            with self.subTest(route=route):
                self.assertMetric(samples, n, DUR + "_count", upstream="emu", route=route)
                self.assertMetric(samples, n, DUR + "_bucket", upstream="emu", route=route,
                                  le="+Inf")
                total = prom.value(samples, DUR + "_sum", upstream="emu", route=route)
                self.assertGreater(total, 0)
                buckets = sorted((float(dict(k)["le"]), v) for k, v in prom.select(
                    samples, DUR + "_bucket", upstream="emu", route=route).items())
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts), "buckets are cumulative")

    def test_byte_counters_are_body_bytes(self):
        samples = self.sm.metrics()
        self.assertMetric(samples, 10 * len(ACTION_BODY), REQ_BYTES, upstream="emu",
                          route="action")
        self.assertMetric(samples, 10 * BODY, RESP_BYTES, upstream="emu", route="action")
        self.assertMetric(samples, len(b'{"headless":true}'), REQ_BYTES, upstream="emu",
                          route="initialize")
        self.assertMetric(samples, BODY, RESP_BYTES, upstream="emu", route="initialize")
        self.assertMetric(samples, 0, REQ_BYTES, upstream="emu", route="status")
        self.assertMetric(samples, 5 * len(self.statuses[0].content), RESP_BYTES,
                          upstream="emu", route="status")
        self.assertMetric(samples, 2 * len(self.nopes[0].content), RESP_BYTES, upstream="emu",
                          route="other")

    def test_nothing_in_flight_and_no_upstream_errors(self):
        samples = self.waitMetric(self.sm, 0, IN_FLIGHT, upstream="emu")
        self.assertEqual(prom.nonzero(samples, UP_ERRORS), {})

    def test_recent_requests_newest_first(self):
        doc = self.sm.get_json("/api/v1/requests?limit=5")
        self.assertEqual(list(doc), ["requests"])
        recs = doc["requests"]
        self.assertEqual([(r["method"], r["path"], r["route"], r["status"]) for r in recs],
                         [("GET", "/nope", "other", 404)] * 2 + [("POST", "/stop", "stop", 200)]
                         + [("GET", "/status", "status", 200)] * 2)
        keys = {"time", "upstream", "endpoint", "route", "method", "path", "status",
                "duration_ms", "request_bytes", "response_bytes", "request_id"}
        for rec in recs:
            self.assertEqual(set(rec), keys)
            self.assertEqual(rec["upstream"], "emu")
            self.assertEqual(rec["endpoint"], self.fake.address)
            self.assertIsInstance(rec["time"], (int, float))
            self.assertTrue(self.t0 - 1 <= rec["time"] <= self.t1 + 1, rec)
            self.assertGreaterEqual(rec["duration_ms"], 0)
            self.assertRegex(rec["request_id"], REQUEST_ID)
        self.assertEqual([r["request_id"] for r in recs], self.ids[::-1][:5])
        self.assertEqual(recs[2]["request_bytes"], 2)
        self.assertEqual(recs[2]["response_bytes"], len(self.stop_resp.content))
        everything = self.sm.get_json("/api/v1/requests?limit=100")["requests"]
        self.assertEqual(len(everything), 19)
        self.assertEqual([r["request_id"] for r in everything], self.ids[::-1])
        action = everything[-2]
        self.assertEqual((action["route"], action["request_bytes"], action["response_bytes"]),
                         ("action", len(ACTION_BODY), BODY))

    def test_upstreams_api(self):
        doc = self.sm.get_json("/api/v1/upstreams")
        self.assertEqual(list(doc), ["upstreams"])
        self.assertEqual(len(doc["upstreams"]), 1)
        up = doc["upstreams"][0]
        self.assertEqual(up["name"], "emu")
        self.assertEqual(up["endpoints"], [{"address": self.fake.address, "healthy": True}])
        self.assertEqual(up["listeners"],
                         [{"name": "emu", "address": f"127.0.0.1:{self.sm.port}"}])
        routes = {r["route"]: r for r in up["routes"]}
        for name, n in [("initialize", 1), ("action", 10), ("status", 5), ("stop", 1),
                        ("other", 2)]:
            with self.subTest(route=name):
                r = routes[name]
                self.assertLessEqual({"route", "requests", "success_rate", "latency_ms",
                                      "errors_5xx", "request_bytes", "response_bytes"}, set(r))
                self.assertEqual((r["requests"], r["errors_5xx"]), (n, 0))
                lat = r["latency_ms"]
                self.assertEqual(set(lat), {"min", "avg", "p50", "p95", "p99", "max"})
                self.assertTrue(0 <= lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"]
                                <= lat["max"], lat)
                self.assertTrue(lat["min"] <= lat["avg"] <= lat["max"], lat)
                if name != "other":
                    self.assertEqual(r["success_rate"], 100.0)
        # The two GET /nope were answered 404: success is 2xx and 3xx only.
        self.assertEqual(routes["other"]["success_rate"], 0.0)
        self.assertEqual((routes["action"]["request_bytes"], routes["action"]["response_bytes"]),
                         (10 * len(ACTION_BODY), 10 * BODY))

    def test_promtool_accepts_live_metrics(self):
        text = self.sm.metrics_text()
        res = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=60)
        self.assertEqual((res.returncode, res.stdout + res.stderr), (0, b""))

    def test_metrics_content_type_and_gzip(self):
        status, headers, body = self.sm.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"),
                        headers)
        status, headers, zbody = self.sm.get("/metrics", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((status, headers.get("Content-Encoding")), (200, "gzip"))
        plain = prom.parse(gzip.decompress(zbody).decode())
        self.assertEqual(prom.value(plain, REQ, upstream="emu", route="action", method="POST",
                                    code="200"), 10.0)


class FromTheStartTest(harness.HarnessTestCase):
    """Before any traffic or post, every series whose labels the config and speedmon
    know is in the first scrape, at 0, so Prometheus' increase() sees the first event."""

    def test_known_series_exist_at_zero_before_any_traffic(self):
        a, b, c = self.start_fakes(3)
        cfg = harness.proxy_config(
            {"emu-1": [a.address, b.address], "emu-2": [c.address]},
            routes=[("action", "/action"), ("status", "/status")])
        cfg["alerting"] = {"default_rules": True}
        sm = self.start_speedmon(cfg)
        s = sm.metrics()
        # Both states of each of the six default rules (the values are the host's to say).
        self.assertEqual(
            {(dict(k)["alertname"], dict(k)["alertstate"])
             for k in prom.select(s, "pokemon_speedrun_alerts")},
            {(n, st) for st in ("pending", "firing") for n in (
                "SlowScriptCompilation", "SlowCheckpointLoading", "HighCpuUsage",
                "HighMemoryUsage", "LowExperimentSuccessRate", "InsufficientHealthyProcesses")})
        endpoints = {"emu-1": [a.address, b.address], "emu-2": [c.address]}
        routes = ["action", "status", "other"]
        kinds = ["connect", "timeout", "reset", "bad_response"]
        self.assertEqual(prom.select(s, UP_ERRORS), {
            frozenset({("upstream", u), ("endpoint", e), ("kind", k)}): 0.0
            for u, eps in endpoints.items() for e in eps for k in kinds})
        pairs = {frozenset({("upstream", u), ("route", r)}) for u in endpoints for r in routes}
        for name in (REQ_BYTES, RESP_BYTES, DUR + "_count", DUR + "_sum"):
            with self.subTest(family=name):
                self.assertEqual(prom.select(s, name), dict.fromkeys(pairs, 0.0))
        self.assertEqual(len(prom.select(s, DUR + "_bucket")), len(pairs) * 16)
        self.assertEqual(prom.nonzero(s, DUR + "_bucket"), {})
        self.assertEqual(prom.select(s, REQ), {})  # method and code come from traffic
        statuses = ["success", "failure", "timeout", "error", "cancelled"]
        self.assertEqual(prom.select(s, "pokemon_speedrun_experiments_total"), {
            frozenset({("status", st), ("strategy", "other")}): 0.0 for st in statuses})
        self.assertEqual(set(prom.select(s, "pokemon_speedrun_pattern_discoveries_total")),
                         {frozenset({("pattern_type", t)}) for t in (
                             "movement", "battle", "menu_navigation", "item_usage",
                             "dialogue", "optimization")})
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_pattern_discoveries_total"), {})
        self.assertEqual(prom.select(s, "pokemon_speedrun_process_failures_total"), {
            frozenset({("failure_type", t)}): 0.0
            for t in ("crash", "exit", "oom", "hang", "timeout", "connect", "status", "other",
                      "resolve")})
        for name in ("experiments", "experiments_successful", "compilations_measured",
                     "compilations_under_target", "script_compilation_seconds",
                     "checkpoint_loads_measured", "checkpoint_loads_under_target",
                     "checkpoint_loading_seconds", "patterns", "pattern_quality"):
            with self.subTest(window=name):
                self.assertEqual(prom.value(s, "pokemon_speedrun_sla_window_" + name), 0.0)


class LabelsTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.sm = self.proxy_for(self.fake)

    def test_methods_outside_the_standard_set_fold_into_other(self):
        c = self.raw(self.sm.port)
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                       "PROPFIND", "MKCOL"]:
            r = c.request(method, "/echo", [], b"x" if method in ("POST", "PUT") else b"")
            self.assertEqual(r.status, 200, method)
        samples = self.sm.metrics_after(9)
        got = {dict(k)["method"]: v for k, v in
               prom.nonzero(samples, REQ, upstream="emu", route="echo", code="200").items()}
        self.assertEqual(got, {"GET": 1, "HEAD": 1, "POST": 1, "PUT": 1, "DELETE": 1,
                               "PATCH": 1, "OPTIONS": 1, "other": 2})

    def test_first_matching_prefix_names_the_route(self):
        sm = self.start_speedmon(harness.proxy_config(
            {"emu": [self.fake.address]},
            routes=[("echo-deep", "/echo/deep"), ("echo", "/echo"), ("b", "/bytes/1")]))
        c = self.raw(sm.port)
        for target in ["/echo/deep/x", "/echo", "/echo/other", "/bytes/1", "/bytes/10",
                       "/bytes/2"]:
            self.assertEqual(c.request("GET", target).status, 200, target)
        got = {dict(k)["route"]: v for k, v in prom.nonzero(sm.metrics_after(6), REQ).items()}
        self.assertEqual(got, {"echo-deep": 1, "echo": 2, "b": 2, "other": 1})

    def test_in_flight_gauge_counts_a_hanging_request(self):
        c = self.raw(self.sm.port)
        c.send(harness.build_request("GET", "/misbehave/slow?ms=3000&bytes=10"))
        harness.wait_for(lambda: self.fake.stats()["in_flight"] == 1, 10, what="fake busy")
        self.assertMetric(self.sm.metrics(), 1, IN_FLIGHT, upstream="emu")
        self.assertEqual(c.read_response().status, 200)
        harness.wait_for(lambda: prom.value_or_zero(self.sm.metrics(), IN_FLIGHT,
                                                    upstream="emu") == 0, 10, what="gauge 0")


# The families every scrape shows from the start that live on prometheus-cpp registries
# (speedrun's and the main thread's, written by metrics::FamilySet), the daemon's own
# internal errors and a custom collectable's, with their types.
STARTUP_FAMILIES = {
    "pokemon_speedrun_experiments_total": "counter",
    "pokemon_speedrun_pattern_discoveries_total": "counter",
    "pokemon_speedrun_pattern_reuses_total": "counter",
    "pokemon_speedrun_sla_compliance": "gauge",
    "pokemon_speedrun_sla_window_experiments": "gauge",
    "pokemon_speedrun_sla_window_pattern_quality": "gauge",
    "pokemon_speedrun_experiment_duration_seconds": "histogram",
    "pokemon_speedrun_script_compilation_seconds": "histogram",
    "pokemon_speedrun_checkpoint_loading_seconds": "histogram",
    "pokemon_speedrun_config_reloads_total": "counter",
    "pokemon_speedrun_build_info": "gauge",
    "pokemon_speedrun_upstream_dns_changes_total": "counter",
    "pokemon_speedrun_upstream_endpoint_addresses": "gauge",
    "pokemon_speedrun_upstream_healthy": "gauge",
    "pokemon_speedrun_health_checks_total": "counter",
    "pokemon_speedrun_healthy_processes": "gauge",
    "pokemon_speedrun_total_processes": "gauge",
    "pokemon_speedrun_process_failures_total": "counter",
    "pokemon_speedrun_process_startup_seconds": "histogram",
    "pokemon_speedrun_pool_events_total": "counter",
    "pokemon_speedrun_internal_errors_total": "counter",
    "pokemon_speedrun_alert_rules": "gauge",
    "pokemon_speedrun_alerts": "gauge",
    "pokemon_speedrun_system_cpu_percent": "gauge",
    "pokemon_speedrun_http_request_duration_seconds": "histogram",
}
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


class ExpositionTest(harness.HarnessTestCase):
    """Each family once, HELP then TYPE then its samples, in both formats."""

    def families(self, body, openmetrics):
        """{name: type} of `body`'s families, checking that each is announced once and
        that every sample follows the TYPE line of its own family."""
        families, current = {}, None
        lines = body.split("\n")
        self.assertEqual(lines[-1], "")
        for i, line in enumerate(lines[:-1]):
            if line == "# EOF":
                self.assertTrue(openmetrics)
                self.assertEqual(i, len(lines) - 2, "# EOF is the last line")
                continue
            if line.startswith("# HELP "):
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.assertNotIn(name, families, "a family announced twice")
                self.assertTrue(lines[i - 1].startswith(f"# HELP {name} "), line)
                families[name] = kind
                current = (name, kind)
                continue
            self.assertIsNotNone(current, line)
            name, kind = current
            suffixes = ("_total",) if openmetrics and kind == "counter" else SUFFIXES[kind]
            sample = line.split("{", 1)[0].split(" ", 1)[0]
            self.assertIn(sample, [name + s for s in suffixes], f"{line!r} under {name}")
        return families

    def test_every_family_once_in_both_formats(self):
        cfg = harness.proxy_config({"emu": [self.start_fake().address]},
                                   health_check={"interval": "100ms", "timeout": "100ms"})
        cfg["alerting"] = {"default_rules": True}
        sm = self.start_speedmon(cfg)
        # Once the health checks have run (their counters start with the first check).
        harness.wait_for(lambda: prom.select(sm.metrics(), "pokemon_speedrun_health_checks_total"),
                         10, what="a health check")
        status, _, text = sm.get("/metrics")
        self.assertEqual(status, 200)
        status, _, om = sm.get("/metrics", headers={"Accept": OPENMETRICS})
        self.assertEqual(status, 200)
        text, om = text.decode(), om.decode()
        self.assertNotIn("# EOF", text)
        self.assertTrue(om.endswith("\n# EOF\n"), om[-200:])
        self.assertEqual(om.count("# EOF"), 1)
        in_text = self.families(text, openmetrics=False)
        in_om = self.families(om, openmetrics=True)
        # OpenMetrics names a counter family without _total; the rest is the same.
        self.assertEqual(
            {n[:-6] if k == "counter" and n.endswith("_total") else n: k
             for n, k in in_text.items()}, in_om)
        self.assertEqual({n: in_text.get(n) for n in STARTUP_FAMILIES}, STARTUP_FAMILIES)
        self.assertGreater(len(in_text), 50)


if __name__ == "__main__":
    unittest.main()
