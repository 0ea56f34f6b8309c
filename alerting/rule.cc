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

constexpr size_t kMaxIdChars = 128;
constexpr size_t kMaxNameChars = 256;
constexpr size_t kMaxTextChars = 4096;
constexpr size_t kMaxLabels = 32;
constexpr const char* kIdError = "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -";

RuleResult Fail(std::string error, std::string field) {
  RuleResult r;
  r.error = RuleError{std::move(error), std::move(field)};
  return r;
}

bool IsValidId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Labels the rule sets itself; a user label of the same name would make the alert lie.
bool IsReservedLabel(const std::string& name) {
  return name == "alertname" || name == "severity" || name == "rule_id";
}

// Checks what both config and JSON rules must satisfy and fills metric/scale.
std::optional<RuleError> Finish(Rule* r) {
  if (!IsValidId(r->id)) {
    return RuleError{kIdError, "id"};
  }
  if (r->name.empty() || r->name.size() > kMaxNameChars) {
    return RuleError{"name must be 1 to 256 characters", "name"};
  }
  if (r->description.size() > kMaxTextChars) {
    return RuleError{"description is longer than 4096 characters", "description"};
  }
  if (const SeedMetric* seed = FindSeedMetric(r->metric)) {
    r->metric = seed->exported;
    r->scale = seed->scale;
  } else if (r->metric.find('.') != std::string::npos) {
    std::string known;
    for (const auto& s : SeedMetrics()) known += std::string(known.empty() ? "" : ", ") + s.dotted;
    return RuleError{"unknown dotted metric name \"" + r->metric +
                         "\"; use an exported metric name or one of: " + known,
                     "metric"};
  }
  if (!std::isfinite(r->threshold))
    return RuleError{"threshold must be a finite number", "threshold"};
  if (r->labels.size() > kMaxLabels) return RuleError{"at most 32 labels", "labels"};
  for (const auto& [k, v] : r->labels) {
    if (!config::IsValidLabelName(k)) {
      return RuleError{"invalid label name \"" + k + "\"", "labels"};
    }
    if (IsReservedLabel(k)) {
      return RuleError{"label \"" + k + "\" is set by the rule itself", "labels"};
    }
    if (v.size() > kMaxTextChars) return RuleError{"label \"" + k + "\" is too long", "labels"};
  }
  if (r->annotations.size() > kMaxLabels) {
    return RuleError{"at most 32 annotations", "annotations"};
  }
  for (const auto& [k, v] : r->annotations) {
    if (!config::IsValidLabelName(k)) {
      return RuleError{"invalid annotation name \"" + k + "\"", "annotations"};
    }
    if (v.size() > kMaxTextChars) {
      return RuleError{"annotation \"" + k + "\" is too long", "annotations"};
    }
  }
  return std::nullopt;
}

// Reads an optional {"k": "v"} object into `out`.
std::optional<RuleError> ReadStringMap(const json& body, const char* field, Labels* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  const std::string error = std::string(field) + " must be an object of strings";
  if (!it->is_object()) return RuleError{error, field};
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return RuleError{error, field};
    (*out)[k] = v.get<std::string>();
  }
  return std::nullopt;
}

// Reads a string field; absent or null is an error only when `required`.
std::optional<RuleError> ReadString(const json& body, const char* field, std::string* out,
                                    bool required) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) {
    if (required) return RuleError{std::string(field) + " is required", field};
    return std::nullopt;
  }
  if (!it->is_string()) return RuleError{std::string(field) + " must be a string", field};
  *out = it->get<std::string>();
  return std::nullopt;
}

std::optional<RuleError> ReadDuration(const json& body, const char* field, Duration* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  std::optional<Duration> d;
  if (it->is_string()) d = config::ParseDuration(it->get<std::string>());
  if (!d) return RuleError{std::string(field) + " must be a duration such as \"5m\"", field};
  *out = *d;
  return std::nullopt;
}

Rule MakeDefault(const char* id, const char* name, const char* description, const char* metric,
                 CompareOp op, double threshold, int for_seconds, Severity severity,
                 const char* summary, const char* long_description) {
  Rule r;
  r.id = id;
  r.name = name;
  r.description = description;
  r.metric_text = metric;
  r.metric = metric;
  r.op = op;
  r.threshold = threshold;
  r.for_duration = Duration(for_seconds * 1000LL);
  r.severity = severity;
  r.annotations["summary"] = summary;
  r.annotations["description"] = long_description;
  r.origin = RuleOrigin::kDefault;
  Finish(&r);  // resolves the dotted name; the table below is valid by construction
  return r;
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

RuleResult RuleFromConfig(const config::AlertRuleConfig& c, RuleOrigin origin) {
  Rule r;
  r.id = c.id;
  r.name = c.name;
  r.description = c.description;
  r.metric = c.metric;
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
  auto aggregation = ParseAggregation(c.aggregation);
  if (!aggregation) {
    return Fail("aggregation must be one of max, min, sum, avg, count", "aggregation");
  }
  r.aggregation = *aggregation;
  r.op = c.op;
  r.threshold = c.threshold;
  r.for_duration = c.for_duration;
  r.keep_firing_for = c.keep_firing_for;
  r.severity = c.severity;
  r.labels = c.labels;
  r.annotations = c.annotations;
  r.origin = origin;
  if (auto e = Finish(&r)) return Fail(e->error, e->field);
  return RuleResult{std::move(r), {}};
}

RuleResult RuleFromJson(std::string_view body_text) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Fail("body is not valid JSON", "");
  if (!body.is_object()) return Fail("body must be a JSON object", "");
  static const char* const kKnown[] = {
      "id",        "name", "description",     "metric",   "aggregation", "operator",
      "threshold", "for",  "keep_firing_for", "severity", "labels",      "annotations"};
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return Fail("unknown field \"" + key + "\"", key);
  }

  Rule r;
  r.origin = RuleOrigin::kApi;
  if (auto e = ReadString(body, "id", &r.id, true)) return Fail(e->error, e->field);
  if (!IsValidId(r.id)) return Fail(kIdError, "id");
  if (auto e = ReadString(body, "name", &r.name, false)) return Fail(e->error, e->field);
  if (body.find("name") == body.end()) r.name = r.id;  // as in the config file
  if (auto e = ReadString(body, "description", &r.description, false)) {
    return Fail(e->error, e->field);
  }
  if (auto e = ReadString(body, "metric", &r.metric_text, true)) return Fail(e->error, e->field);
  auto selector = config::ParseMetricSelector(r.metric_text);
  if (!selector.selector) return Fail("metric: " + selector.error, "metric");
  r.metric = selector.selector->metric;
  r.matchers = selector.selector->match_labels;

  std::string text;
  if (auto e = ReadString(body, "aggregation", &text, false)) return Fail(e->error, e->field);
  auto aggregation = ParseAggregation(text);
  if (!aggregation) {
    return Fail("aggregation must be one of max, min, sum, avg, count", "aggregation");
  }
  r.aggregation = *aggregation;

  text.clear();
  if (auto e = ReadString(body, "operator", &text, true)) return Fail(e->error, e->field);
  auto op = config::ParseCompareOp(text);
  if (!op) return Fail("operator must be one of > < >= <= == !=", "operator");
  r.op = *op;

  auto threshold = body.find("threshold");
  if (threshold == body.end() || threshold->is_null()) {
    return Fail("threshold is required", "threshold");
  }
  if (!threshold->is_number()) return Fail("threshold must be a number", "threshold");
  r.threshold = threshold->get<double>();

  if (auto e = ReadDuration(body, "for", &r.for_duration)) return Fail(e->error, e->field);
  if (auto e = ReadDuration(body, "keep_firing_for", &r.keep_firing_for)) {
    return Fail(e->error, e->field);
  }

  text.clear();
  if (auto e = ReadString(body, "severity", &text, false)) return Fail(e->error, e->field);
  if (!text.empty()) {
    auto severity = config::ParseSeverity(text);
    if (!severity) return Fail("severity must be one of info, warning, critical", "severity");
    r.severity = *severity;
  }
  if (auto e = ReadStringMap(body, "labels", &r.labels)) return Fail(e->error, e->field);
  if (auto e = ReadStringMap(body, "annotations", &r.annotations)) {
    return Fail(e->error, e->field);
  }
  if (auto e = Finish(&r)) return Fail(e->error, e->field);
  return RuleResult{std::move(r), {}};
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
