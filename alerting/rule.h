// Alert rules: the typed rule the evaluator runs, built from the config file
// ([[alerting.rules]]), from the admin API's JSON (POST /api/v1/alert-rules) or from the
// built-in defaults; validation with {"error","field"} messages; the JSON view.
//
// Thread: main thread (plain functions and values; no shared state).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alerting/value_source.h"
#include "base/status.h"
#include "config/config.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {

// How a rule turns the series matching its metric into alert instances.
//   kPerSeries: every matching series is its own instance, labelled with the series'
//     labels (Prometheus's `metric > 5`): "endpoint down" alerts once per endpoint.
//     The default when no aggregation is given.
//   kMax..kCount: the series are reduced to one value first (`max(metric) > 5`), giving
//     one instance without series labels. NaN series are skipped; no series (or only
//     NaN ones) is "absent" for every aggregation, count included, as in Prometheus.
enum class Aggregation { kPerSeries, kMax, kMin, kSum, kAvg, kCount };

// "" or "none" -> kPerSeries; "max", "min", "sum", "avg", "count"; else nullopt.
std::optional<Aggregation> ParseAggregation(std::string_view text);
const char* AggregationName(Aggregation a);  // "none", "max", ...

enum class RuleOrigin { kDefault, kConfig, kApi };
const char* RuleOriginName(RuleOrigin o);  // "default", "config", "api"

struct Rule {
  std::string id;    // unique; [A-Za-z0-9_.-], 1..128 chars (it is a URL segment)
  std::string name;  // the alertname label
  std::string description;
  std::string metric_text;  // as the user wrote it: "system.cpu_percent", "up{job=\"x\"}"
  std::string metric;       // the exported name queried: "pokemon_speedrun_system_cpu_percent"
  double scale = 1;         // value read * scale is compared (dotted "_ms" names: 1000)
  Labels matchers;
  Aggregation aggregation = Aggregation::kPerSeries;
  config::CompareOp op = config::CompareOp::kGt;
  double threshold = 0;
  config::Duration for_duration{0};
  config::Duration keep_firing_for{0};
  config::Severity severity = config::Severity::kWarning;
  Labels labels;       // added to every instance; beat series labels of the same name
  Labels annotations;  // templated: {{ $value }}, {{ $threshold }}, {{ $labels.NAME }}
  RuleOrigin origin = RuleOrigin::kApi;

  // Same alerting meaning (everything but origin): a reload keeps the rule's state.
  bool SameDefinition(const Rule& other) const;
};

// Builds a rule from a config entry. It refuses exactly what config::CheckAlertRule
// refuses, the check config::Load already ran on every rule of a loaded file, so for
// those it cannot fail; entries built in code (tests, the defaults) get the same check.
// A refused rule is kInvalidArgument; its field() names the JSON or config key at fault
// ("" for the body as a whole).
base::StatusOr<Rule> RuleFromConfig(const config::AlertRuleConfig& c, RuleOrigin origin);

// Parses a POST /api/v1/alert-rules body into a config::AlertRuleConfig and builds it with
// RuleFromConfig, so the API and the file accept the same rules:
//   {"id": "...", "name": "...", "description": "...", "metric": "...",
//    "aggregation": "max|min|sum|avg|count" (optional; absent = per series),
//    "operator": "> < >= <= == !=", "threshold": number,
//    "for": "5m", "keep_firing_for": "0s", "severity": "info|warning|critical",
//    "labels": {"k": "v"}, "annotations": {"summary": "...", ...}}
// Required: id, metric, operator, threshold; name defaults to id (as in the config). Unknown keys
// are refused (a typo must not silently drop a setting). The first problem found is returned.
// The Python AlertRule's names are accepted too: rule_id (id), metric_name (metric),
// threshold_value (threshold), minimum_duration_seconds (a number of seconds: for), an
// operator name (gt, greater_than, lte, ... any case); evaluation_window_seconds and
// suppression_window_seconds are accepted and unused, enabled must be true if given.
// A dotted name that names a counter (speedrun.total_experiments) defaults to "sum".
base::StatusOr<Rule> RuleFromJson(std::string_view body);

// The GET /api/v1/alert-rules element: the fields above with "for" and
// "keep_firing_for" as duration strings, "metric" as written, plus "origin".
nlohmann::json RuleToJson(const Rule& rule);

// The six default rules (README.md, "Dashboards and alerts"), on the dotted names:
//   slow_script_compilation         SlowScriptCompilation         > 150 ms  5m warning
//   slow_checkpoint_loading         SlowCheckpointLoading         > 750 ms  5m warning
//   high_cpu_usage                  HighCpuUsage                  > 85 %    2m critical
//   high_memory_usage               HighMemoryUsage               > 90 %    2m critical
//   low_experiment_success_rate     LowExperimentSuccessRate      < 95 %   15m critical
//   insufficient_healthy_processes  InsufficientHealthyProcesses  < 3       1m critical
// Each has summary and description annotations. A config rule with the same id
// replaces the default.
std::vector<Rule> DefaultRules();

// value OP threshold; false for NaN (an absent or undefined value is never a breach).
bool Breaches(config::CompareOp op, double value, double threshold);

// Replaces {{ $value }}, {{ $threshold }} and {{ $labels.NAME }} (spaces optional)
// in an annotation; anything else is left as written.
std::string ExpandTemplate(const std::string& text, double value, double threshold,
                           const Labels& labels);

}  // namespace speedmon::alerting
