#!/usr/bin/python3
"""Writes grafana_dashboard.json, speedmon's Grafana dashboard, from the panel list below.

    /usr/bin/python3 monitoring/make_dashboard.py            # rewrite the JSON
    /usr/bin/python3 monitoring/make_dashboard.py --check    # exit 1 if it is stale

The JSON is what users import or provision; this script is how it is edited, so the
layout (ids, grid positions) stays consistent and the queries stay in one readable list.
monitoring_files_test.py fails when the committed JSON differs from this script's output.

Query rules (the e2e test runs every target's expr against a real Prometheus after
replacing $instance and $upstream with .* and $__rate_interval with 1m):
  - the Fleet row reads the job-level recording rules (every speedmon of the job added
    up: sum(part) / sum(whole), never min() or an average of percentages) and is not
    filtered by instance; every other row is the per-instance drill-down: speedmon's
    series are filtered with instance=~"$instance" (and upstream=~"$upstream" where the
    metric has that label).
  - rate() and increase() of raw counters use [$__rate_interval] (at least four scrape
    intervals, whatever the zoom) unless the window is the point ("last hour"); no other
    Grafana variables or macros in exprs.
  - where zero is the truth (no requests, no failures, no alerts), the query ends in
    `or on() vector(0)` so the panel shows 0 instead of "No data".
  - rates and quantiles that alert_rules.yml records are read from its recording rules.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grafana_dashboard.json")

DS = {"type": "prometheus", "uid": "${datasource}"}
I = 'instance=~"$instance"'
IU = 'instance=~"$instance", upstream=~"$upstream"'
ZERO = " or on() vector(0)"

# Value mappings for 1/0 gauges.
UP_DOWN = [{"type": "value", "options": {
    "0": {"text": "DOWN", "color": "red", "index": 0},
    "1": {"text": "UP", "color": "green", "index": 1}}}]
OK_FAIL = [{"type": "value", "options": {
    "0": {"text": "VIOLATED", "color": "red", "index": 0},
    "1": {"text": "COMPLIANT", "color": "green", "index": 1}}}]


def steps(*pairs):
    """Threshold steps: steps("green", (85, "red")) -> base green, red from 85."""
    out = [{"color": pairs[0], "value": None}]
    out += [{"color": c, "value": v} for v, c in pairs[1:]]
    return {"mode": "absolute", "steps": out}


def target(expr, legend="", instant=False, table=False):
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


class Panel:
    def __init__(self, kind, title, desc, targets, w, h, unit="short", thresholds=None,
                 mappings=None, minv=None, maxv=None, options=None, custom=None):
        self.kind, self.title, self.desc, self.targets = kind, title, desc, targets
        self.w, self.h, self.unit = w, h, unit
        self.thresholds = thresholds or steps("green")
        self.mappings = mappings or []
        self.minv, self.maxv = minv, maxv
        self.options = options
        self.custom = custom


def ts(title, desc, targets, w=12, h=8, unit="short", thresholds=None, minv=0, maxv=None,
       threshold_style="off"):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
              "spanNulls": False, "axisSoftMin": minv,
              "thresholdsStyle": {"mode": threshold_style}}
    options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                          "calcs": ["lastNotNull", "max"]},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return Panel("timeseries", title, desc, targets, w, h, unit, thresholds, None, None,
                 maxv, options, custom)


def stat(title, desc, expr, unit="short", thresholds=None, mappings=None, w=4, h=4,
         legend=""):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "background", "graphMode": "area", "justifyMode": "auto",
               "orientation": "auto", "textMode": "auto"}
    return Panel("stat", title, desc, [target(expr, legend)], w, h, unit, thresholds,
                 mappings, None, None, options)


def timeline(title, desc, expr, legend, mappings, w=12, h=8):
    options = {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
               "alignValue": "left", "legend": {"showLegend": False},
               "tooltip": {"mode": "single", "sort": "none"}}
    return Panel("state-timeline", title, desc, [target(expr, legend)], w, h, "short",
                 steps("red", (1, "green")), mappings, None, None, options,
                 {"fillOpacity": 70, "lineWidth": 0})


def table(title, desc, expr, w=12, h=8):
    options = {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    p = Panel("table", title, desc, [target(expr, instant=True, table=True)], w, h,
              options=options)
    return p


def bars(title, desc, expr, legend, w=8, h=8):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True,
               "valueMode": "color", "minVizHeight": 10, "minVizWidth": 0}
    return Panel("bargauge", title, desc, [target(expr, legend)], w, h, options=options)


def timing(title, what, alertname, target_s, alert_s):
    """p95 and SLA-window average of one experiment phase, with its target and alert."""
    ms = lambda v: f"{v * 1000:g} ms"  # noqa: E731
    return ts(title, f"p95 from the histogram (15m) and the SLA-window average. SLA "
              f"target {ms(target_s)}; alert {alertname} fires when the average is above "
              f"{ms(alert_s)} for 5m.",
              [target(f"instance:pokemon_speedrun_{what}_seconds:p95_rate15m{{{I}}}",
                      "p95 {{instance}}"),
               target(f"pokemon_speedrun_{what}_average_seconds{{{I}}}",
                      "average {{instance}}")],
              w=8, unit="s", thresholds=steps("green", (target_s, "orange"), (alert_s, "red")),
              threshold_style="line")


REQ = "pokemon_speedrun_http_requests_total"
RI = "[$__rate_interval]"
W = "pokemon_speedrun_sla_window"
DUR = "instance_upstream_route:pokemon_speedrun_http_request_duration_seconds"
EXP = "instance_status_strategy:pokemon_speedrun_experiments:rate15m"

ROWS = [
    ("Fleet", [
        stat("Experiment success rate (fleet)", "Successful experiments of every speedmon's "
             "SLA window over all of them: sum(successful) * 100 / sum(experiments), not a "
             "min() or mean of percentages. Alert SpeedrunLowExperimentSuccessRate fires "
             "below 95 % for 15m.",
             "job:pokemon_speedrun_sla_experiment_success_rate:percent", "percent",
             steps("red", (95, "green")), w=4),
        stat("Compilations under target (fleet)", "Share of measured script compilations "
             "of every SLA window under the target; SLA minimum 95 %.",
             "job:pokemon_speedrun_sla_script_compilation_under_target:percent", "percent",
             steps("red", (95, "green")), w=4),
        stat("Checkpoint loads under target (fleet)", "Share of measured checkpoint loads of "
             "every SLA window under the target; SLA minimum 95 %.",
             "job:pokemon_speedrun_sla_checkpoint_loading_under_target:percent", "percent",
             steps("red", (95, "green")), w=4),
        stat("Pattern quality (fleet)", "Mean quality score over every speedmon's pattern "
             "window; SLA minimum 0.70.", "job:pokemon_speedrun_sla_pattern_quality:mean",
             "percentunit", steps("red", (0.7, "green")), w=4),
        stat("Availability (fleet)", "Healthy emulator endpoints of the whole pool; SLA "
             "minimum 99 %.", "job:pokemon_speedrun_sla_system_availability:percent",
             "percent", steps("red", (99, "green")), w=4),
        stat("Healthy emulators (fleet)", "Endpoints passing their health checks, summed "
             "over every speedmon. Alert SpeedrunInsufficientHealthyProcesses fires below 3 "
             "for 1m.", "job:pokemon_speedrun_healthy_processes:sum",
             thresholds=steps("red", (3, "green")), w=4),
        ts("Fleet SLA", "The five requirements over every speedmon of the job, from the "
           "summed window counts.",
           [target("job:pokemon_speedrun_sla_experiment_success_rate:percent",
                   "experiment success {{job}}"),
            target("job:pokemon_speedrun_sla_script_compilation_under_target:percent",
                   "compilations under target {{job}}"),
            target("job:pokemon_speedrun_sla_checkpoint_loading_under_target:percent",
                   "checkpoint loads under target {{job}}"),
            target("job:pokemon_speedrun_sla_pattern_quality:mean * 100",
                   "pattern quality x100 {{job}}"),
            target("job:pokemon_speedrun_sla_system_availability:percent",
                   "availability {{job}}")],
           w=8, unit="percent", maxv=100),
        ts("Fleet success from counters", "Proxied requests answered 2xx or 3xx (5m) and "
           "experiments with status success (15m), from the counters summed over every "
           "speedmon.",
           [target("job:pokemon_speedrun_http_requests_success:ratio_rate5m",
                   "requests {{job}}"),
            target("job:pokemon_speedrun_experiments_success:ratio_rate15m",
                   "experiments {{job}}")],
           w=8, unit="percentunit", maxv=1),
        ts("Fleet load and timings", "Requests per second and experiments per minute over "
           "the fleet; mean compile and checkpoint times of every SLA window (ms).",
           [target("job:pokemon_speedrun_http_requests:rate5m", "requests/s {{job}}"),
            target("job:pokemon_speedrun_experiments:rate15m * 60",
                   "experiments/min {{job}}"),
            target("job:pokemon_speedrun_script_compilation_seconds:mean * 1000",
                   "compile ms {{job}}"),
            target("job:pokemon_speedrun_checkpoint_loading_seconds:mean * 1000",
                   "checkpoint ms {{job}}"),
            target("job:pokemon_speedrun_sla_window_experiments:sum",
                   "experiments in the windows {{job}}")], w=8),
        timeline("speedmons", "Prometheus' scrape of each speedmon of the job (up). A "
                 "stopped one shows DOWN here and drops out of the fleet figures above.",
                 'up{job="speedmon"}', "{{instance}}", UP_DOWN, w=12, h=6),
        ts("Healthy emulators by speedmon", "The per-instance drill-down of the fleet's "
           "healthy emulators (the instance variable filters it).",
           [target(f"sum by (instance) (pokemon_speedrun_healthy_processes{{{I}}})",
                   "{{instance}}")], w=12, h=6),
    ]),
    ("Proxy traffic", [
        stat("Requests per second", "All proxied requests, 5m rate.",
             f"sum(instance_upstream:pokemon_speedrun_http_requests:rate5m{{{IU}}}){ZERO}",
             "reqps", w=6),
        stat("5xx ratio", "Share of requests answered 5xx over 5m (by an emulator, or by "
             "speedmon for 502/503/504). 0 when there is no traffic.",
             f'(sum(rate({REQ}{{{IU}, code=~"5.."}}{RI})){ZERO}) / '
             f"(sum(rate({REQ}{{{IU}}}{RI})) > 0){ZERO}",
             "percentunit", steps("green", (0.01, "orange"), (0.05, "red")), w=6),
        stat("p95 latency", "95th percentile over all routes, 5m.",
             "histogram_quantile(0.95, sum by (le) (instance_upstream_route_le:"
             f"pokemon_speedrun_http_request_duration_seconds_bucket:rate5m{{{IU}}}))",
             "s", steps("green", (0.5, "orange"), (1, "red")), w=6),
        stat("In flight", "Requests proxied right now.",
             f"sum(pokemon_speedrun_http_requests_in_flight{{{IU}}}){ZERO}", w=6),
        ts("Request rate by upstream, route and code", "Proxied requests per second, 5m rate.",
           [target(f"sum by (upstream, route, code) (instance_upstream_route_code:"
                   f"pokemon_speedrun_http_requests:rate5m{{{IU}}}){ZERO}",
                   "{{upstream}} {{route}} {{code}}")], unit="reqps"),
        ts("Request rate by method", "Proxied requests per second per upstream and method.",
           [target(f"sum by (upstream, method) (rate({REQ}{{{IU}}}{RI})){ZERO}",
                   "{{upstream}} {{method}}")], unit="reqps"),
        ts("Latency p50 / p95 / p99 by route", "From the request duration histogram, 5m.",
           [target(f"{DUR}:p50_rate5m{{{IU}}}", "p50 {{upstream}} {{route}}"),
            target(f"{DUR}:p95_rate5m{{{IU}}}", "p95 {{upstream}} {{route}}"),
            target(f"{DUR}:p99_rate5m{{{IU}}}", "p99 {{upstream}} {{route}}")],
           unit="s", thresholds=steps("green", (1, "red")), threshold_style="line"),
        ts("5xx ratio by upstream", "Alert SpeedrunUpstreamHigh5xxRatio fires above 5 % "
           "for 5m.",
           [target(f"instance_upstream:pokemon_speedrun_http_requests_5xx:ratio_rate5m{{{IU}}}",
                   "{{upstream}}")],
           unit="percentunit", thresholds=steps("green", (0.05, "red")),
           threshold_style="line"),
        ts("Upstream errors by kind", "Connect failures, timeouts, resets and malformed "
           "answers, per second.",
           [target(f"sum by (upstream, kind) (rate(pokemon_speedrun_upstream_errors_total"
                   f"{{{IU}}}{RI})){ZERO}", "{{upstream}} {{kind}}")], w=8, unit="reqps"),
        ts("In flight by upstream", "Requests proxied right now.",
           [target(f"sum by (upstream) (pokemon_speedrun_http_requests_in_flight{{{IU}}})"
                   f"{ZERO}", "{{upstream}}")], w=8),
        ts("Throughput", "Request bytes to and response bytes from the emulators.",
           [target(f"sum by (upstream) (rate(pokemon_speedrun_http_request_bytes_total"
                   f"{{{IU}}}{RI})){ZERO}", "{{upstream}} request"),
            target(f"sum by (upstream) (rate(pokemon_speedrun_http_response_bytes_total"
                   f"{{{IU}}}{RI})){ZERO}", "{{upstream}} response")], w=8, unit="Bps"),
    ]),
    ("Emulator health", [
        stat("Healthy emulators", "Endpoints passing their health checks. Alert "
             "SpeedrunInsufficientHealthyProcesses fires below 3 for 1m.",
             f"sum(pokemon_speedrun_healthy_processes{{{I}}})", w=6,
             thresholds=steps("red", (3, "green"))),
        stat("Emulators", "Endpoints configured.",
             f"sum(pokemon_speedrun_total_processes{{{I}}})", w=6, thresholds=steps("blue")),
        stat("Failures (1h)", "Health check failures that took an endpoint down, last hour.",
             f"sum(increase(pokemon_speedrun_process_failures_total{{{I}}}[1h])){ZERO}", w=6,
             thresholds=steps("green", (1, "orange"))),
        stat("Mean startup time", "Time from an endpoint's first appearance or restart to "
             "healthy, mean since speedmon started.",
             f"sum(pokemon_speedrun_process_startup_seconds_sum{{{I}}}) / "
             f"sum(pokemon_speedrun_process_startup_seconds_count{{{I}}})", "s", w=6),
        timeline("Endpoint health", "1 = passing health checks. Alert "
                 "SpeedrunEmulatorEndpointDown fires after 1m down.",
                 f"pokemon_speedrun_upstream_healthy{{{IU}}}", "{{upstream}} {{endpoint}}",
                 UP_DOWN),
        ts("Health checks by result", "Health check probes per second.",
           [target(f"sum by (upstream, endpoint, result) (rate("
                   f"pokemon_speedrun_health_checks_total{{{IU}}}{RI})){ZERO}",
                   "{{endpoint}} {{result}}")], unit="reqps"),
        ts("Startup time", "Quantiles of endpoint startup time since speedmon started.",
           [target("histogram_quantile(0.5, sum by (le) ("
                   f"pokemon_speedrun_process_startup_seconds_bucket{{{I}}}))", "p50"),
            target("histogram_quantile(0.95, sum by (le) ("
                   f"pokemon_speedrun_process_startup_seconds_bucket{{{I}}}))", "p95")],
           unit="s"),
        ts("Failures by type", "Failures per 5m: timeout, connect or status.",
           [target(f"sum by (failure_type) (increase(pokemon_speedrun_process_failures_total"
                   f"{{{I}}}[5m])){ZERO}", "{{failure_type}}")]),
    ]),
    ("Host", [
        ts("CPU", "Host CPU usage. Alert SpeedrunHighCPUUsage fires above 85 % for 2m.",
           [target(f"pokemon_speedrun_system_cpu_percent{{{I}}}", "{{instance}}")], w=6,
           unit="percent", maxv=100, thresholds=steps("green", (85, "red")),
           threshold_style="line"),
        ts("Memory", "Host memory in use. Alert SpeedrunHighMemoryUsage fires above 90 % "
           "for 2m.",
           [target(f"pokemon_speedrun_system_memory_percent{{{I}}}", "{{instance}}")], w=6,
           unit="percent", maxv=100, thresholds=steps("green", (90, "red")),
           threshold_style="line"),
        ts("Memory used", "Host memory in use, bytes.",
           [target(f"pokemon_speedrun_system_memory_bytes{{{I}}}", "{{instance}}")], w=6,
           unit="bytes"),
        ts("Disk used by path", "Filesystems of [sysprobe].disk_paths.",
           [target(f"pokemon_speedrun_system_disk_percent{{{I}}}", "{{instance}} {{path}}")],
           w=6, unit="percent", maxv=100),
        stat("speedmon up", "Prometheus' scrape of speedmon. Alert SpeedmonDown fires after "
             "1m down.", f"min(up{{{I}}})", mappings=UP_DOWN,
             thresholds=steps("red", (1, "green")), w=6),
        stat("speedmon uptime", "Since the speedmon process started.",
             f"time() - max(process_start_time_seconds{{{I}}})", "s", w=6),
        ts("speedmon CPU and memory", "speedmon's own process: CPU cores used and resident "
           "memory.",
           [target(f"rate(process_cpu_seconds_total{{{I}}}{RI})", "CPU cores {{instance}}"),
            target(f"process_resident_memory_bytes{{{I}}} / 2^20",
                   "RSS MiB {{instance}}")], w=6, h=4),
        ts("speedmon open fds", "speedmon's open file descriptors (sockets included).",
           [target(f"process_open_fds{{{I}}}", "{{instance}}")], w=6, h=4),
    ]),
    ("Emulator processes", [
        ts("Emulator CPU (cores)", "CPU cores used by each watched process ([[processes]]).",
           [target(f"sum by (process) (rate(pokemon_speedrun_process_cpu_seconds_total"
                   f"{{{I}}}{RI}))", "{{process}}")], w=8),
        ts("Emulator memory (RSS)", "Resident memory of each watched process.",
           [target(f"sum by (process) (pokemon_speedrun_process_resident_memory_bytes"
                   f"{{{I}}})", "{{process}}")], w=8, unit="bytes"),
        ts("Emulator open fds", "Open file descriptors of each watched process.",
           [target(f"sum by (process) (pokemon_speedrun_process_open_fds{{{I}}})",
                   "{{process}}")], w=8),
    ]),
    ("Experiments", [
        stat("Experiment success rate", "Over the SLA windows of the chosen speedmons: "
             "their successful experiments over all of theirs.",
             f"sum({W}_experiments_successful{{{I}}}) * 100 / sum({W}_experiments{{{I}}})",
             "percent", steps("red", (95, "green")), w=6),
        stat("Experiments", "Recorded since speedmon started.",
             f"sum(pokemon_speedrun_experiments_total{{{I}}}){ZERO}", w=6,
             thresholds=steps("blue")),
        stat("Experiments per minute", "15m rate.",
             f"sum({EXP}{{{I}}}) * 60{ZERO}", w=6, thresholds=steps("blue")),
        stat("Pattern quality", "Average quality score (0-1) over the pattern windows of "
             "the chosen speedmons; SLA minimum 0.70.",
             f"sum({W}_pattern_quality{{{I}}}) / sum({W}_patterns{{{I}}})",
             "percentunit", steps("red", (0.7, "green")), w=6),
        ts("Experiments per minute by status and strategy", "15m rate.",
           [target(f"sum by (status, strategy) ({EXP}{{{I}}}) * 60{ZERO}",
                   "{{status}} {{strategy}}")]),
        ts("Experiment success rate over time", "Over the SLA window; SLA minimum 95 %.",
           [target(f"pokemon_speedrun_experiment_success_rate{{{I}}}", "{{instance}}")],
           unit="percent", maxv=100, thresholds=steps("red", (95, "green")),
           threshold_style="line"),
        timing("Script compilation time", "script_compilation",
               "SpeedrunScriptCompilationSlow", 0.1, 0.15),
        timing("Checkpoint loading time", "checkpoint_loading",
               "SpeedrunCheckpointLoadingSlow", 0.5, 0.75),
        ts("Experiment duration p95", "From the experiment duration histogram, 15m.",
           [target(f"instance:pokemon_speedrun_experiment_duration_seconds:p95_rate15m"
                   f"{{{I}}}", "p95 {{instance}}")], w=8, unit="s"),
        ts("Pattern discoveries per hour by type", "Discoveries in the last hour.",
           [target(f"sum by (pattern_type) (increase("
                   f"pokemon_speedrun_pattern_discoveries_total{{{I}}}[1h])){ZERO}",
                   "{{pattern_type}}")], w=8),
        bars("Patterns by type", "Discoveries recorded since speedmon started.",
             f"sum by (pattern_type) (pokemon_speedrun_pattern_discoveries_total{{{I}}})"
             f"{ZERO}", "{{pattern_type}}"),
        ts("Pattern quality and reuse", "Average quality score (SLA minimum 0.70) and "
           "pattern reuses per minute.",
           [target(f"pokemon_speedrun_pattern_quality_average{{{I}}}", "quality {{instance}}"),
            target(f"sum(rate(pokemon_speedrun_pattern_reuses_total{{{I}}}{RI})) * 60{ZERO}",
                   "reuses per minute")], w=8),
    ]),
    ("SLA", [
        stat("SLA", "Overall: every requirement with data is met.",
             f"min(pokemon_speedrun_sla_compliance{{{I}}})", mappings=OK_FAIL,
             thresholds=steps("red", (1, "green")), w=6, h=8),
        timeline("SLA requirements", "Each requirement of GET /api/v1/sla: success rate, "
                 "script compilation, checkpoint loading, pattern quality, availability.",
                 f"pokemon_speedrun_sla_requirement_compliant{{{I}}}", "{{requirement}}",
                 OK_FAIL, w=18),
    ]),
    ("Alerts", [
        stat("Firing (speedmon)", "Alerts speedmon's own evaluator has firing.",
             f'sum(pokemon_speedrun_alerts{{{I}, alertstate="firing"}}){ZERO}', w=6,
             thresholds=steps("green", (1, "red"))),
        stat("Pending (speedmon)", "Alerts speedmon's own evaluator has pending.",
             f'sum(pokemon_speedrun_alerts{{{I}, alertstate="pending"}}){ZERO}', w=6,
             thresholds=steps("green", (1, "orange"))),
        stat("Firing (Prometheus)", "Alerts of alert_rules.yml firing in Prometheus.",
             'count(ALERTS{alertname=~"Speedrun.*|Speedmon.*", alertstate="firing"})'
             f"{ZERO}", w=6, thresholds=steps("green", (1, "red"))),
        stat("Pending (Prometheus)", "Alerts of alert_rules.yml pending in Prometheus.",
             'count(ALERTS{alertname=~"Speedrun.*|Speedmon.*", alertstate="pending"})'
             f"{ZERO}", w=6, thresholds=steps("green", (1, "orange"))),
        table("Active alerts (speedmon)", "Pending and firing alerts of speedmon's evaluator "
              "(GET /api/v1/alerts has their details).",
              f"pokemon_speedrun_alerts{{{I}}} > 0"),
        table("Active alerts (Prometheus)", "Pending and firing alerts of alert_rules.yml.",
              'ALERTS{alertname=~"Speedrun.*|Speedmon.*"}'),
        ts("speedmon alert evaluator", "Rules loaded, evaluations per second, and "
           "evaluations whose metric could not be read.",
           [target(f"sum(pokemon_speedrun_alert_rules{{{I}}})", "rules"),
            target(f"sum(rate(pokemon_speedrun_alert_evaluations_total{{{I}}}{RI}))",
                   "evaluations/s"),
            target(f"sum(rate(pokemon_speedrun_alert_evaluation_failures_total{{{I}}}{RI}))"
                   f"{ZERO}", "failures/s")]),
        ts("speedmon alert notifications", "Notices to Alertmanagers and webhooks per "
           "minute by result, and notices waiting.",
           [target(f"sum by (target, result) (rate("
                   f"pokemon_speedrun_alert_notifications_total{{{I}}}{RI})) * 60{ZERO}",
                   "{{target}} {{result}}"),
            target(f"sum by (target) (pokemon_speedrun_alert_notification_queue_length"
                   f"{{{I}}}){ZERO}", "{{target}} queued")]),
    ]),
]


def variables():
    def query_var(name, label, query, desc):
        return {
            "name": name, "label": label, "description": desc, "type": "query",
            "datasource": DS, "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "sort": 1, "multi": True, "includeAll": True,
            # No allValue: "All" expands to the listed values, so it keeps meaning "every
            # speedmon" even when the Prometheus scrapes other jobs on other instances.
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "hide": 0, "skipUrlSync": False,
        }
    return [
        {
            # Import sets this to the Prometheus chosen for DS_PROMETHEUS; provisioning
            # leaves the placeholder unmatched and Grafana picks the default Prometheus.
            "name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "regex": "", "refresh": 1, "hide": 0,
            "includeAll": False, "multi": False, "options": [], "skipUrlSync": False,
            "current": {"selected": False, "text": "Prometheus", "value": "${DS_PROMETHEUS}"},
        },
        query_var("instance", "speedmon", "label_values(pokemon_speedrun_healthy_processes, "
                  "instance)", "speedmon sidecars (Prometheus instance label)"),
        query_var("upstream", "Upstream", "label_values(pokemon_speedrun_upstream_healthy"
                  "{instance=~\"$instance\"}, upstream)", "Upstreams of the chosen sidecars"),
    ]


def render_panel(p, pid, x, y):
    d = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.desc,
        "datasource": DS, "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit, "thresholds": p.thresholds,
                                     "mappings": p.mappings, "color": {"mode": "thresholds"}},
                        "overrides": []},
        "targets": [],
    }
    defaults = d["fieldConfig"]["defaults"]
    if p.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
    if p.kind == "state-timeline":
        defaults["color"] = {"mode": "thresholds"}
    if p.minv is not None:
        defaults["min"] = p.minv
    if p.maxv is not None:
        defaults["max"] = p.maxv
    if p.custom:
        defaults["custom"] = p.custom
    if p.options:
        d["options"] = p.options
    for i, t in enumerate(p.targets):
        t = dict(t)
        t["refId"] = chr(ord("A") + i)
        d["targets"].append(t)
    return d


def build():
    panels, pid, y = [], 1, 0
    for title, row in ROWS:
        panels.append({"id": pid, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        x, line_h = 0, 0
        for p in row:
            if x + p.w > 24:
                x, y, line_h = 0, y + line_h, 0
            panels.append(render_panel(p, pid, x, y))
            pid, x, line_h = pid + 1, x + p.w, max(line_h, p.h)
        y += line_h
    kinds = sorted({p["type"] for p in panels if p["type"] != "row"})
    names = {"bargauge": "Bar gauge", "stat": "Stat", "state-timeline": "State timeline",
             "table": "Table", "timeseries": "Time series"}
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus",
                      "description": "The Prometheus that scrapes speedmon and loads "
                      "alert_rules.yml (the panels read its recording rules).",
                      "type": "datasource", "pluginId": "prometheus",
                      "pluginName": "Prometheus"}],
        "__elements": {},
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana",
                        "version": "10.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus",
                        "version": "1.0.0"}]
        + [{"type": "panel", "id": k, "name": names[k], "version": ""} for k in kinds],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": "speedmon: the Pokemon speedrun emulator proxy, emulator health, "
                       "host, experiments, SLA and alerts. Generated by "
                       "monitoring/make_dashboard.py.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "liveNow": False,
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": 38,
        "style": "dark",
        "tags": ["speedmon", "pokemon", "speedrun"],
        "templating": {"list": variables()},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": "Pokemon Speedrun - speedmon",
        "uid": "speedmon-overview",
        "version": 1,
        "weekStart": "",
    }


def render():
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    text = render()
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{OUT} is stale: run {sys.argv[0]}", file=sys.stderr)
                return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
