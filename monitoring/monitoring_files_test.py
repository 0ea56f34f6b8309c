#!/usr/bin/python3
"""Static checks of monitoring/: the dashboard, the rules and the Docker files.

    /usr/bin/python3 monitoring/monitoring_files_test.py [-v]
    PROMTOOL=/usr/bin/promtool (default: promtool on PATH)

promtool itself checks the Prometheus config, the rules and their unit tests (ctest runs
those separately); this file checks what promtool cannot: that the dashboard is what
make_dashboard.py generates, that every panel has a datasource and PromQL that parses,
that every metric any expr or rule names is one speedmon exports (EXPORTED below, the
contract of README.md, "Metrics") or a recording rule, that every exported metric is on the
dashboard, that every alert is tested firing and not firing, and that the compose and
provisioning files parse and point at each other. The live check (every dashboard query
answered with data by a Prometheus that scrapes a running speedmon) is an e2e test.

Needs /usr/bin/python3 with Debian's python3-yaml.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import make_dashboard  # noqa: E402

# Every metric speedmon exports, by type (README.md, "Metrics"). Histograms are exported as
# NAME_bucket, NAME_sum and NAME_count.
EXPORTED = {
    # proxy
    "pokemon_speedrun_http_requests_total": "counter",
    "pokemon_speedrun_http_request_duration_seconds": "histogram",
    "pokemon_speedrun_http_request_bytes_total": "counter",
    "pokemon_speedrun_http_response_bytes_total": "counter",
    "pokemon_speedrun_http_requests_in_flight": "gauge",
    "pokemon_speedrun_upstream_errors_total": "counter",
    "pokemon_speedrun_upstream_healthy": "gauge",
    "pokemon_speedrun_health_checks_total": "counter",
    # emulator health
    "pokemon_speedrun_healthy_processes": "gauge",
    "pokemon_speedrun_total_processes": "gauge",
    "pokemon_speedrun_process_startup_seconds": "histogram",
    "pokemon_speedrun_process_failures_total": "counter",
    # host and watched processes
    "pokemon_speedrun_system_cpu_percent": "gauge",
    "pokemon_speedrun_system_memory_bytes": "gauge",
    "pokemon_speedrun_system_memory_percent": "gauge",
    "pokemon_speedrun_system_disk_percent": "gauge",
    "pokemon_speedrun_process_cpu_seconds_total": "counter",
    "pokemon_speedrun_process_resident_memory_bytes": "gauge",
    "pokemon_speedrun_process_open_fds": "gauge",
    # experiments, patterns, SLA
    "pokemon_speedrun_experiments_total": "counter",
    "pokemon_speedrun_experiment_success_rate": "gauge",
    "pokemon_speedrun_pattern_discoveries_total": "counter",
    "pokemon_speedrun_sla_compliance": "gauge",
    "pokemon_speedrun_sla_requirement_compliant": "gauge",
    "pokemon_speedrun_experiment_duration_seconds": "histogram",
    "pokemon_speedrun_script_compilation_seconds": "histogram",
    "pokemon_speedrun_checkpoint_loading_seconds": "histogram",
    "pokemon_speedrun_script_compilation_average_seconds": "gauge",
    "pokemon_speedrun_checkpoint_loading_average_seconds": "gauge",
    "pokemon_speedrun_pattern_quality_average": "gauge",
    "pokemon_speedrun_pattern_reuses_total": "counter",
    # what the SLA window holds, for sum(a) / sum(b) over a fleet
    "pokemon_speedrun_sla_window_experiments": "gauge",
    "pokemon_speedrun_sla_window_experiments_successful": "gauge",
    "pokemon_speedrun_sla_window_compilations_measured": "gauge",
    "pokemon_speedrun_sla_window_compilations_under_target": "gauge",
    "pokemon_speedrun_sla_window_script_compilation_seconds": "gauge",
    "pokemon_speedrun_sla_window_checkpoint_loads_measured": "gauge",
    "pokemon_speedrun_sla_window_checkpoint_loads_under_target": "gauge",
    "pokemon_speedrun_sla_window_checkpoint_loading_seconds": "gauge",
    "pokemon_speedrun_sla_window_patterns": "gauge",
    "pokemon_speedrun_sla_window_pattern_quality": "gauge",
    # alerting
    "pokemon_speedrun_alerts": "gauge",
    "pokemon_speedrun_alert_rules": "gauge",
    "pokemon_speedrun_alert_evaluations_total": "counter",
    "pokemon_speedrun_alert_evaluation_failures_total": "counter",
    "pokemon_speedrun_alert_notifications_total": "counter",
    "pokemon_speedrun_alert_notification_queue_length": "gauge",
    # speedmon's own process
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# Series Prometheus makes itself: the scrape's `up` and the rules' ALERTS.
PROMETHEUS_SERIES = {"up", "ALERTS"}

ALERTS = {
    # name: (severity, expr threshold fragment, for)  -- the six default rules, then the rest
    "SpeedrunScriptCompilationSlow": ("warning", "* 1000 > 150", "5m"),
    "SpeedrunCheckpointLoadingSlow": ("warning", "* 1000 > 750", "5m"),
    "SpeedrunHighCPUUsage": ("critical", "> 85", "2m"),
    "SpeedrunHighMemoryUsage": ("critical", "> 90", "2m"),
    "SpeedrunLowExperimentSuccessRate": ("critical", "< 95", "15m"),
    "SpeedrunInsufficientHealthyProcesses": ("critical", "< 3", "1m"),
    "SpeedrunSLAViolation": ("warning", "job:pokemon_speedrun_sla_pattern_quality:mean < 0.7",
                             "5m"),
    "SpeedmonDown": ("critical", 'absent(up{job="speedmon"})', "1m"),
    "SpeedrunEmulatorEndpointDown": ("warning", "pokemon_speedrun_upstream_healthy == 0",
                                     "1m"),
    "SpeedrunUpstreamHigh5xxRatio": ("warning", "> 0.05", "5m"),
    "SpeedrunRouteHighLatencyP95": ("warning", "> 1", "5m"),
}

ROW_TITLES = ["Fleet", "Proxy traffic", "Emulator health", "Host", "Emulator processes",
              "Experiments", "SLA", "Alerts"]

PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                "group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}


def load_yaml(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return yaml.safe_load(f)


def metric_names(expr):
    """The metric names a PromQL expression selects (a static approximation)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"\{[^}]*\}", " ", s)          # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)         # range and subquery windows
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":
            continue                           # an exponent: 1e-9
        if s[m.end():].lstrip().startswith("("):
            continue                           # a function or aggregation
        if tok in PROMQL_WORDS:
            continue
        names.add(tok)
    return names


def series_names(name):
    """The series names a metric is exported as."""
    if EXPORTED.get(name) == "histogram":
        return {name + "_bucket", name + "_sum", name + "_count"}
    return {name}


def dashboard():
    with open(os.path.join(HERE, "grafana_dashboard.json"), encoding="utf-8") as f:
        return json.load(f)


def dashboard_exprs(d):
    """(panel title, expr) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in d["panels"] if p["type"] != "row"
            for t in p["targets"]]


def panels_by_row(d):
    """{row title: [panels]} in dashboard order."""
    out, row = {}, None
    for p in d["panels"]:
        if p["type"] == "row":
            row = p["title"]
            out[row] = []
        else:
            out[row].append(p)
    return out


def rules():
    return [r for g in load_yaml("alert_rules.yml")["groups"] for r in g["rules"]]


def recorded():
    return {r["record"]: r["expr"] for r in rules() if "record" in r}


def promtool():
    return os.environ.get("PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.d = dashboard()
        self.panels = [p for p in self.d["panels"] if p["type"] != "row"]

    def test_json_is_what_make_dashboard_writes(self):
        with open(os.path.join(HERE, "grafana_dashboard.json"), encoding="utf-8") as f:
            self.assertEqual(f.read(), make_dashboard.render(),
                             "grafana_dashboard.json is stale: run make_dashboard.py")

    def test_import_input_and_variables(self):
        self.assertEqual(self.d["schemaVersion"], 38)
        self.assertIsNone(self.d["id"])
        self.assertEqual(self.d["uid"], "speedmon-overview")
        self.assertEqual([(i["name"], i["type"], i["pluginId"]) for i in self.d["__inputs"]],
                         [("DS_PROMETHEUS", "datasource", "prometheus")])
        v = {x["name"]: x for x in self.d["templating"]["list"]}
        self.assertEqual(list(v), ["datasource", "instance", "upstream"])
        self.assertEqual(v["datasource"]["type"], "datasource")
        self.assertEqual(v["datasource"]["query"], "prometheus")
        self.assertEqual(v["datasource"]["current"]["value"], "${DS_PROMETHEUS}")
        self.assertEqual(v["instance"]["definition"],
                         "label_values(pokemon_speedrun_healthy_processes, instance)")
        self.assertEqual(v["upstream"]["definition"],
                         'label_values(pokemon_speedrun_upstream_healthy'
                         '{instance=~"$instance"}, upstream)')
        for name in ("instance", "upstream"):
            self.assertEqual(v[name]["type"], "query")
            self.assertEqual(v[name]["query"]["query"], v[name]["definition"])
            self.assertTrue(v[name]["includeAll"] and v[name]["multi"])
            self.assertEqual(v[name]["datasource"], make_dashboard.DS)

    def test_rows_in_order(self):
        rows = [p["title"] for p in self.d["panels"] if p["type"] == "row"]
        self.assertEqual(rows, ROW_TITLES)
        self.assertEqual(self.d["panels"][0]["type"], "row")

    def test_every_panel_has_datasource_and_queries(self):
        self.assertEqual(len(self.panels), 63)
        for p in self.panels:
            with self.subTest(panel=p["title"]):
                self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"})
                self.assertTrue(p["targets"])
                self.assertTrue(p["description"])
                refs = [t["refId"] for t in p["targets"]]
                self.assertEqual(len(refs), len(set(refs)))
                for t in p["targets"]:
                    self.assertEqual(t["datasource"], p["datasource"])
                    self.assertTrue(t["expr"].strip())

    def test_ids_titles_and_grid(self):
        ids = [p["id"] for p in self.d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        titles = [p["title"] for p in self.panels]
        self.assertEqual(len(titles), len(set(titles)))
        cells = set()
        for p in self.d["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps")
                    cells.add((x, y))

    def test_exprs_use_only_instance_and_upstream_as_regex_matchers(self):
        for title, expr in dashboard_exprs(self.d):
            with self.subTest(panel=title, expr=expr):
                self.assertEqual(set(re.findall(r"\$\{?(\w+)", expr))
                                 - {"instance", "upstream", "__rate_interval"}, set())
                for var in re.findall(r"\$\{?\w+", expr):
                    self.assertIn(var, ('$instance', '$upstream', '$__rate_interval'))
                self.assertEqual(len(re.findall(r'instance=~"\$instance"', expr)),
                                 expr.count("$instance"))
                self.assertEqual(len(re.findall(r'upstream=~"\$upstream"', expr)),
                                 expr.count("$upstream"))
                if "ALERTS" not in expr and title not in self.fleet_titles():
                    self.assertIn('instance=~"$instance"', expr)

    def fleet_titles(self):
        rows = panels_by_row(self.d)
        return {p["title"] for p in rows["Fleet"]
                if all("$instance" not in t["expr"] for t in p["targets"])}

    def test_fleet_row_reads_job_level_records(self):
        # The fleet's figures are sum(part) / sum(whole) over every speedmon of the job,
        # recorded by group speedmon.fleet; the row's last panels drill down by instance.
        rows = panels_by_row(self.d)
        rec = recorded()
        fleet = [p for p in rows["Fleet"] if p["title"] in self.fleet_titles()]
        self.assertGreaterEqual(len(fleet), 9)
        for p in fleet:
            for t in p["targets"]:
                with self.subTest(panel=p["title"], expr=t["expr"]):
                    names = metric_names(t["expr"])
                    self.assertTrue(names)
                    for n in names - {"up"}:
                        self.assertTrue(n.startswith("job:") and n in rec, n)
        self.assertTrue(any("$instance" in t["expr"] for p in rows["Fleet"]
                            for t in p["targets"]), "no per-instance drill-down in the row")

    def test_no_min_or_mean_of_percentages(self):
        # min() of two instances' success rates (50 %) is not the fleet's (72.7 %).
        for title, expr in dashboard_exprs(self.d):
            with self.subTest(panel=title):
                self.assertNotRegex(expr, r"\b(min|avg)\s*\(\s*pokemon_speedrun_"
                                    r"(experiment_success_rate|pattern_quality_average)")

    def test_raw_counter_rates_use_rate_interval(self):
        # rate() of a raw counter uses $__rate_interval; the recorded rates carry their
        # window in their name, and increase() over a stated window ("per 5m", "1h") keeps it.
        rates = 0
        for title, expr in dashboard_exprs(self.d):
            for m in re.finditer(r"\brate\(([a-z_]+)\{[^}]*\}(\[[^\]]+\])", expr):
                with self.subTest(panel=title, expr=expr):
                    self.assertEqual(m.group(2), "[$__rate_interval]")
                    rates += 1
        self.assertGreaterEqual(rates, 10)

    def test_exprs_parse(self):
        # promtool parses PromQL only inside rules: wrap each query as a recording rule.
        exprs = [e for _, e in dashboard_exprs(self.d)]
        exprs += [v["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
                  for v in self.d["templating"]["list"] if v["type"] == "query"]
        group = {"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}",
             "expr": e.replace("$instance", ".*").replace("$upstream", ".*")
                      .replace("$__rate_interval", "1m")}
            for i, e in enumerate(exprs)]}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard_rules.yml")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"groups": [group]}, f)
            r = subprocess.run([promtool(), "check", "rules", path], capture_output=True,
                               text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"SUCCESS: {len(exprs)} rules found", r.stdout)

    def test_zero_where_zero_is_the_truth(self):
        # Counts of things that may not have happened yet show 0, not "No data".
        by_title = {}
        for title, expr in dashboard_exprs(self.d):
            by_title.setdefault(title, []).append(expr)
        for title in ("Requests per second", "5xx ratio", "In flight", "Failures (1h)",
                      "Experiments", "Experiments per minute", "Upstream errors by kind",
                      "Failures by type", "Firing (speedmon)", "Pending (speedmon)",
                      "Firing (Prometheus)", "Pending (Prometheus)",
                      "Request rate by upstream, route and code",
                      "Experiments per minute by status and strategy",
                      "Pattern discoveries per hour by type", "Patterns by type"):
            with self.subTest(panel=title):
                for expr in by_title[title]:
                    self.assertTrue(expr.endswith(" or on() vector(0)"), expr)


class MetricNamesTest(unittest.TestCase):
    def known(self):
        names = set(PROMETHEUS_SERIES) | set(recorded())
        for m in EXPORTED:
            names |= series_names(m)
        return names

    def test_parser(self):
        self.assertEqual(metric_names(
            'sum by (le, upstream) (rate(a_bucket{x=~"$y", code=~"5.."}[5m])) / '
            "b:c:rate5m * 1e-3 or on() vector(0) > bool 2^20"), {"a_bucket", "b:c:rate5m"})
        self.assertEqual(metric_names('absent(up{job="speedmon"}) or up == 0'), {"up"})
        self.assertEqual(metric_names("time() - max(x) without (a)"), {"x"})

    def test_dashboard_names_are_exported_or_recorded(self):
        known = self.known()
        d = dashboard()
        for title, expr in dashboard_exprs(d):
            with self.subTest(panel=title):
                self.assertEqual(metric_names(expr) - known, set(), expr)
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                self.assertEqual(metric_names(v["definition"].removeprefix("label_values(")
                                              .rsplit(",", 1)[0]) - known, set())

    def test_rule_names_are_exported_or_recorded(self):
        known = self.known()
        for r in rules():
            with self.subTest(rule=r.get("record") or r.get("alert")):
                self.assertEqual(metric_names(r["expr"]) - known, set(), r["expr"])

    def test_every_exported_metric_is_on_the_dashboard(self):
        used = set()
        for _, expr in dashboard_exprs(dashboard()):
            used |= metric_names(expr)
        rec = recorded()
        # Through recording rules, which may read other recording rules.
        for _ in range(len(rec)):
            for name in list(used):
                if name in rec:
                    used |= metric_names(rec[name])
        for m in EXPORTED:
            with self.subTest(metric=m):
                self.assertTrue(series_names(m) & used, f"{m} is on no panel")

    def test_recording_rules_keep_job_and_instance(self):
        for name, expr in recorded().items():
            with self.subTest(record=name):
                self.assertRegex(name, r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
                level = name.split(":")[0].split("_")
                self.assertIn(level[0], ("instance", "job"))
                for by in re.findall(r"\bby \(([^)]*)\)", expr):
                    labels = {x.strip() for x in by.split(",")}
                    if level[0] == "job":
                        # Job level (the fleet): every speedmon of the job added up.
                        self.assertEqual(level, ["job"])
                        self.assertEqual(labels, {"job"}, by)
                    else:
                        self.assertTrue({"job", "instance"} <= labels, by)


class AlertRulesTest(unittest.TestCase):
    def test_alerts_labels_annotations_thresholds(self):
        alerts = {r["alert"]: r for r in rules() if "alert" in r}
        self.assertEqual(set(alerts), set(ALERTS))
        for name, (severity, fragment, for_) in ALERTS.items():
            with self.subTest(alert=name):
                r = alerts[name]
                self.assertEqual(r["labels"], {"severity": severity})
                self.assertEqual(set(r["annotations"]), {"summary", "description"})
                self.assertTrue(all(v.strip() for v in r["annotations"].values()))
                self.assertIn(fragment, r["expr"])
                self.assertEqual(r["for"], for_)

    def test_every_alert_tested_firing_and_not_firing(self):
        firing, quiet = set(), set()
        t = load_yaml("alert_rules_test.yml")
        self.assertEqual(t["rule_files"], ["alert_rules.yml"])
        for case in t["tests"]:
            for a in case.get("alert_rule_test", []):
                if a.get("exp_alerts"):
                    firing.add(a["alertname"])
                    for e in a["exp_alerts"]:
                        self.assertEqual(e["exp_labels"]["severity"],
                                         ALERTS[a["alertname"]][0])
                        self.assertEqual(set(e["exp_annotations"]), {"summary", "description"})
                else:
                    quiet.add(a["alertname"])
        self.assertEqual(firing, set(ALERTS))
        self.assertEqual(quiet, set(ALERTS))

    def test_rules_read_records_of_their_own_group_made_before_them(self):
        # Groups run concurrently, and promtool evaluates them in random order: a rule that
        # read another group's record would see it one round late or early, and the `for`
        # of an alert would flap by one interval (promtool test rules did, 1 run in 2).
        for g in load_yaml("alert_rules.yml")["groups"]:
            earlier = set()
            for r in g["rules"]:
                with self.subTest(rule=r.get("record") or r.get("alert")):
                    self.assertEqual({n for n in metric_names(r["expr"]) if ":" in n} - earlier,
                                     set())
                if "record" in r:
                    earlier.add(r["record"])

    def test_every_recording_rule_has_a_value_test(self):
        tested = set()
        for case in load_yaml("alert_rules_test.yml")["tests"]:
            for e in case.get("promql_expr_test", []):
                tested |= metric_names(e["expr"])
        # The bucket rate is tested through the three quantiles that read it.
        untested = set(recorded()) - tested - {
            "instance_upstream_route_le:pokemon_speedrun_http_request_duration_seconds_bucket"
            ":rate5m",
            "instance_upstream_route:pokemon_speedrun_http_request_duration_seconds:p95_rate5m"}
        self.assertEqual(untested, set())


class PrometheusConfigTest(unittest.TestCase):
    def check(self, name, target, alertmanager):
        c = load_yaml(name)
        self.assertEqual(c["rule_files"], ["alert_rules.yml"])
        self.assertEqual(c["global"]["scrape_interval"], "15s")
        self.assertEqual(c["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"],
                         [alertmanager])
        jobs = {j["job_name"]: j for j in c["scrape_configs"]}
        self.assertEqual(jobs["speedmon"]["scrape_interval"], "15s")
        self.assertEqual(jobs["speedmon"]["metrics_path"], "/metrics")
        self.assertEqual(jobs["speedmon"]["static_configs"][0]["targets"], [target])

    def test_local(self):
        self.check("prometheus_config.yml", "127.0.0.1:8000", "127.0.0.1:9093")
        with open(os.path.join(HERE, "prometheus_config.yml"), encoding="utf-8") as f:
            text = f.read()
        for hint in ("# file_sd_configs:", "# dns_sd_configs:", "# - job_name: node"):
            self.assertIn(hint, text)

    def test_docker(self):
        self.check("prometheus.docker.yml", "speedmon:8000", "alertmanager:9093")


class DockerTest(unittest.TestCase):
    def setUp(self):
        self.compose = load_yaml("docker-compose.yml")
        self.services = self.compose["services"]
        with open(os.path.join(HERE, "speedmon.docker.toml"), "rb") as f:
            self.toml = tomllib.load(f)

    def test_services(self):
        self.assertEqual(set(self.services),
                         {"emulator-1", "emulator-2", "emulator-3", "emulator-4", "speedmon",
                          "prometheus", "alertmanager", "grafana"})
        build = self.services["speedmon"]["build"]
        self.assertTrue(os.path.isfile(os.path.join(HERE, build["context"],
                                                    build["dockerfile"])))

    def test_bind_mounts_exist(self):
        for name, s in self.services.items():
            for v in s.get("volumes", []):
                src = v.split(":")[0]
                if src.startswith("."):
                    with self.subTest(service=name, volume=v):
                        self.assertTrue(os.path.exists(os.path.join(HERE, src)), src)

    def test_published_ports_are_loopback(self):
        for name, s in self.services.items():
            for p in s.get("ports", []):
                with self.subTest(service=name):
                    self.assertTrue(p.startswith("127.0.0.1:"), p)

    def test_speedmon_config_points_at_the_emulators(self):
        ports = {}
        for n in range(1, 5):
            cmd = self.services[f"emulator-{n}"]["command"]
            ports[f"emulator-{n}"] = cmd[cmd.index("--port") + 1]
            self.assertEqual(cmd[cmd.index("--host") + 1], "0.0.0.0")
        ups = {u["name"]: u["endpoints"] for u in self.toml["upstreams"]}
        self.assertEqual(ups, {s: [f"{s}:{p}"] for s, p in ports.items()})
        published = {p.rsplit(":", 1)[1] for p in self.services["speedmon"]["ports"]}
        for lst in self.toml["listeners"]:
            host, port = lst["address"].rsplit(":", 1)
            self.assertEqual(host, "0.0.0.0")
            self.assertIn(port, published)
        admin_port = self.toml["admin"]["address"].rsplit(":", 1)[1]
        self.assertIn(admin_port, published)
        self.assertEqual(load_yaml("prometheus.docker.yml")["scrape_configs"][0]
                         ["static_configs"][0]["targets"], [f"speedmon:{admin_port}"])
        mounts = self.services["speedmon"]["volumes"]
        self.assertIn("./speedmon.docker.toml:/etc/speedmon/speedmon.toml:ro", mounts)
        self.assertNotIn("alertmanagers", self.toml.get("alerting", {}))
        for proc in self.toml["processes"]:
            port = ports[proc["name"]]
            cmdline = " ".join(self.services[proc["name"]]["command"])
            self.assertRegex(cmdline, proc["cmdline_regex"])
            for other, p in ports.items():
                if other != proc["name"]:
                    self.assertNotRegex(cmdline.replace(port, p), proc["cmdline_regex"])

    def test_prometheus_and_grafana_mounts(self):
        prom = self.services["prometheus"]
        self.assertIn("./prometheus.docker.yml:/etc/prometheus/prometheus.yml:ro",
                      prom["volumes"])
        self.assertIn("./alert_rules.yml:/etc/prometheus/alert_rules.yml:ro", prom["volumes"])
        self.assertIn("--config.file=/etc/prometheus/prometheus.yml", prom["command"])
        am = self.services["alertmanager"]
        self.assertIn("./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro", am["volumes"])
        g = self.services["grafana"]["volumes"]
        self.assertIn("./grafana/provisioning:/etc/grafana/provisioning:ro", g)
        self.assertIn("./grafana_dashboard.json:/var/lib/grafana/dashboards/speedmon.json:ro", g)

    def test_grafana_provisioning(self):
        ds = load_yaml("grafana/provisioning/datasources/prometheus.yml")
        self.assertEqual(ds["apiVersion"], 1)
        [p] = ds["datasources"]
        self.assertEqual((p["type"], p["url"], p["isDefault"]),
                         ("prometheus", "http://prometheus:9090", True))
        db = load_yaml("grafana/provisioning/dashboards/speedmon.yml")
        self.assertEqual(db["apiVersion"], 1)
        [prov] = db["providers"]
        self.assertEqual(prov["type"], "file")
        self.assertEqual(prov["options"]["path"], "/var/lib/grafana/dashboards")

    def test_alertmanager_config_parses(self):
        am = load_yaml("alertmanager.yml")
        names = {r["name"] for r in am["receivers"]}
        self.assertIn(am["route"]["receiver"], names)

    def test_dockerfile(self):
        with open(os.path.join(HERE, "Dockerfile"), encoding="utf-8") as f:
            text = f.read()
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        self.assertEqual(froms, ["debian:bookworm", "debian:bookworm-slim"])
        build, runtime = text.split("\nFROM debian:bookworm-slim")
        self.assertIn("RUN scripts/install-deps.sh build ", build)
        self.assertIn("RUN scripts/build.sh release", build)
        self.assertRegex(runtime, r"\nUSER speedmon\n")
        self.assertIn("EXPOSE 8000 18081-18084", runtime)
        self.assertRegex(runtime, r"HEALTHCHECK .*\n\s+CMD curl .*http://127\.0\.0\.1:8000/healthz")
        self.assertIn('ENTRYPOINT ["speedmon", "--config", "/etc/speedmon/speedmon.toml"]',
                      runtime)
        # The runtime packages exist under these names in bookworm: the -dev packages the
        # build uses depend on them, so install-deps.sh has installed them here.
        pkgs = re.search(r"--no-install-recommends \\\n\s+([^\\]+)\\", runtime).group(1).split()
        self.assertIn("libprometheus-cpp-core1.0", pkgs)
        for pkg in pkgs:
            with self.subTest(package=pkg):
                r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                                   capture_output=True, text=True)
                self.assertEqual(r.stdout, "install ok installed", pkg)


if __name__ == "__main__":
    unittest.main()
