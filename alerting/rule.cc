// Rules from config, JSON and the defaults; validation; templates. Main thread.
#include "alerting/rule.h"

#include <cmath>
#include <tuple>

#include "base/json.h"

namespace speedmon::alerting {
namespace {

using config::CompareOp;
using config::Duration;
using config::Severity;
using nlohmann::json;

base::Status Fail(std::string error, std::string field) {
  return base::InvalidArgumentError(std::move(error), std::move(field));
}

// Reads an optional {"k": "v"} object into `out`.
base::Status ReadStringMap(const json& body, const char* field, Labels* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return base::OkStatus();
  const std::string error = std::string(field) + " must be an object of strings";
  if (!it->is_object()) return base::InvalidArgumentError(error, field);
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return base::InvalidArgumentError(error, field);
    (*out)[k] = v.get<std::string>();
  }
  return base::OkStatus();
}

// Reads a string field; absent or null is an error only when `required`.
base::Status ReadString(const json& body, const char* field, std::string* out, bool required) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) {
    if (required) return base::InvalidArgumentError(std::string(field) + " is required", field);
    return base::OkStatus();
  }
  if (!it->is_string())
    return base::InvalidArgumentError(std::string(field) + " must be a string", field);
  *out = it->get<std::string>();
  return base::OkStatus();
}

base::Status ReadDuration(const json& body, const char* field, Duration* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return base::OkStatus();
  std::optional<Duration> d;
  if (it->is_string()) d = config::ParseDuration(it->get<std::string>());
  if (!d)
    return base::InvalidArgumentError(std::string(field) + " must be a duration such as \"5m\"",
                                      field);
  *out = *d;
  return base::OkStatus();
}

Rule MakeDefault(const char* id, const char* name, const char* description, const char* metric,
                 CompareOp op, double threshold, int for_seconds, Severity severity,
                 const char* summary, const char* long_description) {
  config::AlertRuleConfig c;
  c.id = id;
  c.name = name;
  c.description = description;
  c.metric = metric;
  c.op = op;
  c.threshold = threshold;
  c.for_duration = Duration(for_seconds * 1000LL);
  c.severity = severity;
  c.annotations["summary"] = summary;
  c.annotations["description"] = long_description;
  // The table below is valid by construction (rule_test checks it).
  return *RuleFromConfig(c, RuleOrigin::kDefault);
}

// The Python AlertRule's field names, accepted beside speedmon's own so that
// dataclasses.asdict(AlertRule(...)) posts as it is.
struct RuleAlias {
  const char* alias;  // the Python name
  const char* own;    // speedmon's
};
constexpr RuleAlias kRuleAliases[] = {{"rule_id", "id"},
                                      {"metric_name", "metric"},
                                      {"threshold_value", "threshold"},
                                      {"minimum_duration_seconds", "for"}};
// Python fields with no counterpart here: accepted (numbers >= 0) and not used. Rules
// are evaluated on the current value every evaluation_interval, and repeats are paced by
// [alerting].resend_interval.
constexpr const char* kIgnoredPythonFields[] = {"evaluation_window_seconds",
                                                "suppression_window_seconds", "enabled"};

// Rewrites the Python names into speedmon's in `body` (the value of
// minimum_duration_seconds, a number of seconds, becomes a duration string) and checks
// the fields that are only accepted.
base::Status ApplyPythonFields(json* body) {
  for (const RuleAlias& a : kRuleAliases) {
    auto it = body->find(a.alias);
    if (it == body->end()) continue;
    if (body->contains(a.own)) {
      return Fail(std::string("give ") + a.own + " or " + a.alias + ", not both", a.alias);
    }
    json value = *it;
    if (std::string_view(a.own) == "for" && !value.is_null()) {
      if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0 ||
          value.get<double>() * 1000 > static_cast<double>(config::kMaxDuration.count())) {
        return Fail("minimum_duration_seconds must be a number of seconds from 0 to one year",
                    a.alias);
      }
      value = config::FormatDuration(Duration(std::llround(value.get<double>() * 1000)));
    }
    body->erase(it);
    (*body)[a.own] = std::move(value);
  }
  for (const char* field : {"evaluation_window_seconds", "suppression_window_seconds"}) {
    auto it = body->find(field);
    if (it == body->end() || it->is_null()) continue;
    if (!it->is_number() || !(it->get<double>() >= 0)) {
      return Fail(std::string(field) + " must be a number >= 0", field);
    }
    body->erase(it);
  }
  if (auto it = body->find("enabled"); it != body->end()) {
    if (!it->is_null() && !it->is_boolean())
      return Fail("enabled must be true or false", "enabled");
    if (it->is_boolean() && !it->get<bool>()) {
      return Fail("a disabled rule is not kept; delete the rule instead", "enabled");
    }
    body->erase(it);
  }
  return base::OkStatus();
}

// The comparison as a symbol or a name, any case: "gt", "greater_than", "GREATER_THAN".
std::optional<CompareOp> ParseOperatorName(std::string_view text) {
  if (auto op = config::ParseCompareOp(text)) return op;
  std::string lower;
  for (char ch : text) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  static const std::pair<const char*, CompareOp> kNames[] = {
      {"gt", CompareOp::kGt},
      {"greater_than", CompareOp::kGt},
      {"lt", CompareOp::kLt},
      {"less_than", CompareOp::kLt},
      {"ge", CompareOp::kGe},
      {"gte", CompareOp::kGe},
      {"greater_than_or_equal", CompareOp::kGe},
      {"greater_or_equal", CompareOp::kGe},
      {"le", CompareOp::kLe},
      {"lte", CompareOp::kLe},
      {"less_than_or_equal", CompareOp::kLe},
      {"less_or_equal", CompareOp::kLe},
      {"eq", CompareOp::kEq},
      {"equal", CompareOp::kEq},
      {"equals", CompareOp::kEq},
      {"ne", CompareOp::kNe},
      {"not_equal", CompareOp::kNe},
      {"not_equals", CompareOp::kNe},
  };
  for (const auto& [name, op] : kNames) {
    if (lower == name) return op;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Aggregation> ParseAggregation(std::string_view text) {
  if (text.empty() || text == "none") return Aggregation::kPerSeries;
  if (text == "max") return Aggregation::kMax;
  if (text == "min") return Aggregation::kMin;
  if (text == "sum") return Aggregation::kSum;
  if (text == "avg") return Aggregation::kAvg;
  if (text == "count") return Aggregation::kCount;
  return std::nullopt;
}

const char* AggregationName(Aggregation a) {
  switch (a) {
    case Aggregation::kPerSeries:
      return "none";
    case Aggregation::kMax:
      return "max";
    case Aggregation::kMin:
      return "min";
    case Aggregation::kSum:
      return "sum";
    case Aggregation::kAvg:
      return "avg";
    case Aggregation::kCount:
      return "count";
  }
  return "none";
}

const char* RuleOriginName(RuleOrigin o) {
  switch (o) {
    case RuleOrigin::kDefault:
      return "default";
    case RuleOrigin::kConfig:
      return "config";
    case RuleOrigin::kApi:
      return "api";
  }
  return "api";
}

bool Rule::SameDefinition(const Rule& o) const {
  auto key = [](const Rule& r) {
    return std::tie(r.id, r.name, r.description, r.metric_text, r.metric, r.scale, r.matchers,
                    r.aggregation, r.op, r.threshold, r.for_duration, r.keep_firing_for, r.severity,
                    r.labels, r.annotations);
  };
  return key(*this) == key(o);
}

base::StatusOr<Rule> RuleFromConfig(const config::AlertRuleConfig& c, RuleOrigin origin) {
  if (base::Status problem = config::CheckAlertRule(c); !problem.ok()) return problem;
  Rule r;
  r.id = c.id;
  r.name = c.name;
  r.description = c.description;
  r.metric = c.metric;
  r.aggregation = *ParseAggregation(c.aggregation);  // CheckAlertRule accepted it
  if (const config::DottedMetric* dotted = config::FindDottedMetric(c.metric)) {
    r.metric = dotted->exported;
    r.scale = dotted->scale;
    if (c.aggregation.empty()) r.aggregation = *ParseAggregation(dotted->aggregation);
  }
  r.matchers = c.match_labels;
  r.metric_text = c.metric;
  if (!c.match_labels.empty()) {
    r.metric_text += "{";
    bool first = true;
    for (const auto& [k, v] : c.match_labels) {
      r.metric_text += (first ? "" : ",") + k + "=";
      base::AppendJsonString(v, &r.metric_text);
      first = false;
    }
    r.metric_text += "}";
  }
  r.op = c.op;
  r.threshold = c.threshold;
  r.for_duration = c.for_duration;
  r.keep_firing_for = c.keep_firing_for;
  r.severity = c.severity;
  r.labels = c.labels;
  r.annotations = c.annotations;
  r.origin = origin;
  return r;
}

// The JSON is read into the config's struct, so an API rule passes the same checks
// (CheckAlertRule, in RuleFromConfig) as one from the file.
base::StatusOr<Rule> RuleFromJson(std::string_view body_text) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Fail("body is not valid JSON", "");
  if (!body.is_object()) return Fail("body must be a JSON object", "");
  static const char* const kKnown[] = {
      "id",        "name", "description",     "metric",   "aggregation", "operator",
      "threshold", "for",  "keep_firing_for", "severity", "labels",      "annotations"};
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    for (const RuleAlias& a : kRuleAliases) known = known || key == a.alias;
    for (const char* k : kIgnoredPythonFields) known = known || key == k;
    if (!known) return Fail("unknown field \"" + key + "\"", key);
  }
  if (base::Status e = ApplyPythonFields(&body); !e.ok()) return e;

  config::AlertRuleConfig c;
  if (base::Status e = ReadString(body, "id", &c.id, true); !e.ok()) return e;
  if (base::Status e = ReadString(body, "name", &c.name, false); !e.ok()) return e;
  if (body.find("name") == body.end()) c.name = c.id;  // as in the config file
  if (base::Status e = ReadString(body, "description", &c.description, false); !e.ok()) return e;
  std::string metric_text;
  if (base::Status e = ReadString(body, "metric", &metric_text, true); !e.ok()) return e;
  base::StatusOr<config::MetricSelector> selector = config::ParseMetricSelector(metric_text);
  if (!selector.ok()) return selector.status().WithContext("metric");
  c.metric = std::move(selector->metric);
  c.match_labels = std::move(selector->match_labels);

  if (base::Status e = ReadString(body, "aggregation", &c.aggregation, false); !e.ok()) return e;

  std::string text;
  if (base::Status e = ReadString(body, "operator", &text, true); !e.ok()) return e;
  auto op = ParseOperatorName(text);
  if (!op) {
    return Fail("operator must be one of > < >= <= == != (or gt, lt, ge, le, eq, ne)", "operator");
  }
  c.op = *op;

  auto threshold = body.find("threshold");
  if (threshold == body.end() || threshold->is_null()) {
    return Fail("threshold is required", "threshold");
  }
  if (!threshold->is_number()) return Fail("threshold must be a number", "threshold");
  c.threshold = threshold->get<double>();

  if (base::Status e = ReadDuration(body, "for", &c.for_duration); !e.ok()) return e;
  if (base::Status e = ReadDuration(body, "keep_firing_for", &c.keep_firing_for); !e.ok()) return e;

  text.clear();
  if (base::Status e = ReadString(body, "severity", &text, false); !e.ok()) return e;
  if (!text.empty()) {
    auto severity = config::ParseSeverity(text);
    if (!severity) return Fail("severity must be one of info, warning, critical", "severity");
    c.severity = *severity;
  }
  if (base::Status e = ReadStringMap(body, "labels", &c.labels); !e.ok()) return e;
  if (base::Status e = ReadStringMap(body, "annotations", &c.annotations); !e.ok()) return e;
  base::StatusOr<Rule> r = RuleFromConfig(c, RuleOrigin::kApi);
  if (r.ok()) r->metric_text = std::move(metric_text);  // shown as the user wrote it
  return r;
}

json RuleToJson(const Rule& r) {
  return json{{"id", r.id},
              {"name", r.name},
              {"description", r.description},
              {"metric", r.metric_text},
              {"aggregation", AggregationName(r.aggregation)},
              {"operator", config::CompareOpName(r.op)},
              {"threshold", r.threshold},
              {"for", config::FormatDuration(r.for_duration)},
              {"keep_firing_for", config::FormatDuration(r.keep_firing_for)},
              {"severity", config::SeverityName(r.severity)},
              {"labels", r.labels},
              {"annotations", r.annotations},
              {"origin", RuleOriginName(r.origin)}};
}

std::vector<Rule> DefaultRules() {
  return {
      MakeDefault("slow_script_compilation", "SlowScriptCompilation",
                  "Script compilation performance regression",
                  "speedrun.average_script_compilation_ms", CompareOp::kGt, 150, 300,
                  Severity::kWarning, "Script compilation is slow",
                  "Average script compilation time is {{ $value }} ms, above the "
                  "{{ $threshold }} ms alert threshold (SLA target 100 ms), for 5 minutes."),
      MakeDefault("slow_checkpoint_loading", "SlowCheckpointLoading",
                  "Checkpoint loading performance regression",
                  "speedrun.average_checkpoint_loading_ms", CompareOp::kGt, 750, 300,
                  Severity::kWarning, "Checkpoint loading is slow",
                  "Average checkpoint loading time is {{ $value }} ms, above the "
                  "{{ $threshold }} ms alert threshold (SLA target 500 ms), for 5 minutes."),
      MakeDefault("high_cpu_usage", "HighCpuUsage", "Host CPU usage is high", "system.cpu_percent",
                  CompareOp::kGt, 85, 120, Severity::kCritical, "High CPU usage",
                  "CPU usage is {{ $value }}%, above {{ $threshold }}% for 2 minutes."),
      MakeDefault("high_memory_usage", "HighMemoryUsage", "Host memory usage is high",
                  "system.memory_percent", CompareOp::kGt, 90, 120, Severity::kCritical,
                  "High memory usage",
                  "Memory usage is {{ $value }}%, above {{ $threshold }}% for 2 minutes."),
      MakeDefault("low_experiment_success_rate", "LowExperimentSuccessRate",
                  "Experiment success rate below the SLA", "speedrun.experiment_success_rate",
                  CompareOp::kLt, 95, 900, Severity::kCritical, "Low experiment success rate",
                  "Experiment success rate is {{ $value }}%, below the {{ $threshold }}% SLA "
                  "for 15 minutes."),
      MakeDefault("insufficient_healthy_processes", "InsufficientHealthyProcesses",
                  "Too few healthy emulator processes", "prometheus.healthy_processes",
                  CompareOp::kLt, 3, 60, Severity::kCritical, "Insufficient healthy processes",
                  "Only {{ $value }} emulator processes are healthy, fewer than "
                  "{{ $threshold }}, for 1 minute."),
  };
}

bool Breaches(CompareOp op, double value, double threshold) {
  if (std::isnan(value)) return false;
  switch (op) {
    case CompareOp::kGt:
      return value > threshold;
    case CompareOp::kLt:
      return value < threshold;
    case CompareOp::kGe:
      return value >= threshold;
    case CompareOp::kLe:
      return value <= threshold;
    case CompareOp::kEq:
      return value == threshold;
    case CompareOp::kNe:
      return value != threshold;
  }
  return false;
}

std::string ExpandTemplate(const std::string& text, double value, double threshold,
                           const Labels& labels) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string_view inner(text.data() + open + 2, close - open - 2);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    std::optional<std::string> replacement;
    if (inner == "$value") {
      replacement = FormatValue(value);
    } else if (inner == "$threshold") {
      replacement = FormatValue(threshold);
    } else if (inner.substr(0, 8) == "$labels.") {
      auto it = labels.find(std::string(inner.substr(8)));
      replacement = it == labels.end() ? "" : it->second;
    }
    out.append(text, pos, open - pos);
    if (replacement) {
      out += *replacement;
    } else {
      out.append(text, open, close + 2 - open);
    }
    pos = close + 2;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace speedmon::alerting
