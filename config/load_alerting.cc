// Internal to config/: [alerting], its [[alerting.rules]] and the notifiers. Main thread,
// while loading.
#include <cmath>
#include <string>

#include "config/load.h"
#include "config/toml_reader.h"

namespace speedmon::config::internal {
namespace {

constexpr size_t kMaxRules = 1000;
constexpr size_t kMaxNotifiers = 16;

// Ids appear in URLs (DELETE /api/v1/alert-rules/{id}): keep them path-safe.
bool IsRuleId(std::string_view id) {
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Points at the selector's bad character when the TOML string is written plainly on one
// line (source length == text length + 2 quotes); otherwise at the string's start.
toml::source_position SelectorErrorPosition(const toml::node& node, std::string_view text,
                                            size_t offset) {
  toml::source_region region = node.source();
  toml::source_position where = region.begin;
  bool plain = region.begin.line == region.end.line &&
               region.end.column - region.begin.column == text.size() + 2;
  if (plain) where.column += static_cast<toml::source_index>(1 + offset);
  return where;
}

void LoadSelector(const TableReader& r, AlertRuleConfig* rule) {
  std::string text = r.RequireString("metric");
  SelectorResult parsed = ParseMetricSelector(text);
  if (!parsed.selector) {
    Fail(SelectorErrorPosition(*r.Find("metric"), text, parsed.error_offset),
         r.Field("metric") + ": invalid selector " + Quote(text) + ": " + parsed.error);
  }
  rule->metric = std::move(parsed.selector->metric);
  rule->match_labels = std::move(parsed.selector->match_labels);
}

void LoadRule(const toml::table& table, UniqueNames* ids, AlertRuleConfig* rule) {
  TableReader r(table, "[[alerting.rules]]",
                {"id", "name", "description", "metric", "aggregation", "operator", "threshold",
                 "for", "keep_firing_for", "severity", "labels", "annotations"});
  rule->id = r.RequireName("id");
  if (!IsRuleId(rule->id)) {
    r.FailAt("id", Quote(rule->id) + " may contain only letters, digits, '_', '-' and '.'");
  }
  ids->Add(rule->id, *r.Find("id"));
  r.ReadString("name", &rule->name);
  if (rule->name.empty()) rule->name = rule->id;  // the alertname label needs a value
  r.ReadString("description", &rule->description);
  LoadSelector(r, rule);

  r.ReadString("aggregation", &rule->aggregation);
  if (!IsValidAggregation(rule->aggregation)) {
    r.FailAt("aggregation",
             Quote(rule->aggregation) + " is not one of none, max, min, sum, avg, count");
  }

  r.Require("operator");
  std::string op;
  r.ReadString("operator", &op);
  std::optional<CompareOp> parsed_op = ParseCompareOp(op);
  if (!parsed_op) r.FailAt("operator", Quote(op) + " is not one of >, <, >=, <=, ==, !=");
  rule->op = *parsed_op;

  const toml::node& threshold = r.Require("threshold");
  if (!threshold.is_number()) r.FailAt("threshold", "expected a number");
  rule->threshold = threshold.is_integer() ? static_cast<double>(threshold.as_integer()->get())
                                           : threshold.as_floating_point()->get();
  if (!std::isfinite(rule->threshold)) r.FailAt("threshold", "must be a finite number");

  r.ReadDuration("for", &rule->for_duration, Duration(0));
  r.ReadDuration("keep_firing_for", &rule->keep_firing_for, Duration(0));

  if (r.Find("severity") != nullptr) {
    std::string severity;
    r.ReadString("severity", &severity);
    std::optional<Severity> parsed = ParseSeverity(severity);
    if (!parsed) r.FailAt("severity", Quote(severity) + " is not one of info, warning, critical");
    rule->severity = *parsed;
  }

  r.ReadStringTable("labels", &rule->labels);
  if (const toml::table* labels = r.SubTable("labels")) {
    for (auto&& [key, value] : *labels) {
      if (!IsValidLabelName(key.str())) {
        Fail(key.source().begin, r.Field("labels") + ": " + Quote(key.str()) +
                                     " is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)");
      }
    }
  }
  r.ReadStringTable("annotations", &rule->annotations);

  // What the checks above leave to the rule constraints alerting applies too (an unknown
  // dotted metric, reserved labels, lengths): the same function, at the same key.
  if (std::optional<RuleProblem> problem = CheckAlertRule(*rule)) {
    r.FailAt(problem->field, problem->message);
  }
}

// [[alerting.alertmanagers]] and [[alerting.webhooks]] share one shape.
template <typename T>
void LoadNotifiers(const TableReader& alerting, std::string_view key, std::vector<T>* out) {
  std::string name = "[[alerting." + std::string(key) + "]]";
  for (const toml::table* table : alerting.TableArray(key, kMaxNotifiers)) {
    TableReader r(*table, name, {"url", "timeout"});
    T notifier;
    notifier.url = r.RequireString("url");
    std::string why;
    if (!ParseHttpUrl(notifier.url, &why)) {
      r.FailAt("url", "invalid URL " + Quote(notifier.url) + ": " + why);
    }
    r.ReadDuration("timeout", &notifier.timeout, Duration(1));
    out->push_back(std::move(notifier));
  }
}

}  // namespace

void LoadAlerting(const toml::table* table, AlertingConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[alerting]",
                {"evaluation_interval", "resend_interval", "resolved_retention", "default_rules",
                 "rules", "alertmanagers", "webhooks"});
  r.ReadDuration("evaluation_interval", &out->evaluation_interval, Duration(1));
  r.ReadDuration("resend_interval", &out->resend_interval, Duration(1));
  r.ReadDuration("resolved_retention", &out->resolved_retention, Duration(0));
  r.ReadBool("default_rules", &out->default_rules);
  UniqueNames ids("alert rule id");
  for (const toml::table* rule_table : r.TableArray("rules", kMaxRules)) {
    AlertRuleConfig rule;
    LoadRule(*rule_table, &ids, &rule);
    out->rules.push_back(std::move(rule));
  }
  LoadNotifiers(r, "alertmanagers", &out->alertmanagers);
  LoadNotifiers(r, "webhooks", &out->webhooks);
}

}  // namespace speedmon::config::internal
