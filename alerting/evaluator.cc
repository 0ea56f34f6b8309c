// The evaluator's state machine (see evaluator.h for the semantics). Main thread.
#include "alerting/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "base/json.h"
#include "base/log.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {
namespace {

std::string LabelsText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ",";
    out += k + "=";
    base::AppendJsonString(v, &out);
  }
  return out + "}";
}

void Annotate(const Rule& rule, AlertInstance* inst) {
  inst->annotations.clear();
  for (const auto& [k, v] : rule.annotations) {
    inst->annotations[k] = ExpandTemplate(v, inst->value, rule.threshold, inst->labels);
  }
  if (!inst->annotations.count("summary")) inst->annotations["summary"] = rule.name;
  if (!inst->annotations.count("description") && !rule.description.empty()) {
    inst->annotations["description"] =
        ExpandTemplate(rule.description, inst->value, rule.threshold, inst->labels);
  }
}

// value * scale, without the last-bit noise of a unit change: 0.1501 s * 1000 is
// 150.10000000000002 in binary, and a ">= 150.1" rule must see 150.1. Twelve significant
// digits are far beyond any measurement we export.
double Scale(double value, double scale) {
  if (scale == 1 || !std::isfinite(value)) return value * scale;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.12g", value * scale);
  return std::strtod(buf, nullptr);
}

}  // namespace

const char* AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "pending";
}

Evaluator::Evaluator(ValueSource* source, EvaluatorOptions options)
    : source_(source), options_(std::move(options)) {
  if (!options_.log) {
    options_.log = [](const std::string& line) { base::LogInfo(line); };
  }
}

bool Evaluator::AddRule(Rule rule) {
  if (FindRule(rule.id) || rules_.size() >= kMaxRules) return false;
  rules_.push_back(RuleState{std::move(rule), {}, {}, {}});
  return true;
}

bool Evaluator::RemoveRule(const std::string& id, Time now, std::vector<AlertNotice>* notices) {
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->rule.id != id) continue;
    ResolveAll(&*it, now, notices);
    rules_.erase(it);
    return true;
  }
  return false;
}

void Evaluator::ReplaceRules(std::vector<Rule> rules, Time now, std::vector<AlertNotice>* notices) {
  std::vector<RuleState> next;
  for (auto& rule : rules) {
    if (next.size() >= kMaxRules) break;
    bool duplicate = false;
    for (const auto& n : next) duplicate = duplicate || n.rule.id == rule.id;
    if (duplicate) continue;
    RuleState state{std::move(rule), {}, {}, {}};
    for (auto& old : rules_) {
      if (old.rule.id == state.rule.id && old.rule.SameDefinition(state.rule)) {
        state.active = std::move(old.active);
        state.last_error = old.last_error;
        state.last_evaluation = old.last_evaluation;
        old.active.clear();
      }
    }
    next.push_back(std::move(state));
  }
  for (auto& old : rules_) ResolveAll(&old, now, notices);
  rules_ = std::move(next);
}

void Evaluator::SetTiming(config::Duration evaluation_interval, config::Duration resend_interval,
                          config::Duration resolved_retention) {
  options_.evaluation_interval = evaluation_interval;
  options_.resend_interval = resend_interval;
  options_.resolved_retention = resolved_retention;
}

std::vector<AlertNotice> Evaluator::Evaluate(Time now) {
  std::vector<AlertNotice> out;
  source_->BeginRound();
  for (auto& rs : rules_) EvaluateRule(&rs, now, &out);
  Prune(now);
  return out;
}

std::map<Labels, double> Evaluator::ReadValues(RuleState* rs) {
  const Rule& rule = rs->rule;
  std::map<Labels, double> values;
  base::StatusOr<std::vector<Sample>> queried = source_->Query(rule.metric, rule.matchers);
  if (!queried.ok()) {
    ++failures_;
    std::string error = queried.status().message();
    // Once per change, not every round: a broken rule must not flood the log.
    if (error != rs->last_error) options_.log("alerting: rule " + rule.id + ": " + error);
    rs->last_error = error;
    return values;
  }
  rs->last_error.clear();
  const std::vector<Sample>& samples = *queried;
  if (samples.empty()) return values;
  if (rule.aggregation == Aggregation::kPerSeries) {
    for (const auto& s : samples) {
      if (values.size() >= kMaxInstancesPerRule) {
        rs->last_error = "more than 1000 matching series; the rest are ignored";
        ++failures_;
        break;
      }
      values[s.labels] = Scale(s.value, rule.scale);
    }
    return values;
  }
  double acc = 0;
  size_t n = 0;
  for (const auto& s : samples) {
    if (std::isnan(s.value)) continue;
    double v = Scale(s.value, rule.scale);
    switch (rule.aggregation) {
      case Aggregation::kMax:
        acc = n == 0 ? v : std::max(acc, v);
        break;
      case Aggregation::kMin:
        acc = n == 0 ? v : std::min(acc, v);
        break;
      case Aggregation::kSum:
      case Aggregation::kAvg:
        acc += v;
        break;
      case Aggregation::kCount:
      case Aggregation::kPerSeries:
        break;
    }
    ++n;
  }
  if (n == 0) return values;
  if (rule.aggregation == Aggregation::kAvg) acc /= static_cast<double>(n);
  if (rule.aggregation == Aggregation::kCount) acc = static_cast<double>(n);
  values[Labels{}] = acc;
  return values;
}

AlertInstance Evaluator::NewInstance(const Rule& rule, const Labels& series, double value,
                                     Time now) const {
  AlertInstance inst;
  inst.rule_id = rule.id;
  inst.rule_name = rule.name;
  inst.severity = rule.severity;
  inst.series_labels = series;
  inst.labels = series;
  for (const auto& [k, v] : rule.labels) inst.labels[k] = v;
  inst.labels["alertname"] = rule.name;
  inst.labels["severity"] = config::SeverityName(rule.severity);
  inst.labels["rule_id"] = rule.id;
  inst.fingerprint = Fingerprint(inst.labels);
  inst.state = AlertState::kPending;
  inst.value = value;
  inst.active_at = now;
  Annotate(rule, &inst);
  return inst;
}

void Evaluator::EvaluateRule(RuleState* rs, Time now, std::vector<AlertNotice>* out) {
  const Rule& rule = rs->rule;
  ++evaluations_;
  rs->last_evaluation = now;
  std::map<Labels, double> values = ReadValues(rs);

  std::set<Labels> breaching;
  std::set<Labels> fired_now;
  for (const auto& [series, value] : values) {
    if (!Breaches(rule.op, value, rule.threshold)) continue;
    breaching.insert(series);
    auto it = rs->active.find(series);
    const bool is_new = it == rs->active.end();
    if (is_new) {
      it = rs->active.emplace(series, NewInstance(rule, series, value, now)).first;
    } else {
      it->second.value = value;
      it->second.keep_firing_since.reset();
      Annotate(rule, &it->second);
    }
    AlertInstance& inst = it->second;
    if (inst.state == AlertState::kPending && now - inst.active_at >= rule.for_duration) {
      inst.state = AlertState::kFiring;
      inst.fired_at = now;
      fired_now.insert(series);
      Log(inst, is_new ? "inactive" : "pending", "firing");
    } else if (is_new) {
      Log(inst, "inactive", "pending");
    }
  }

  for (auto it = rs->active.begin(); it != rs->active.end();) {
    if (breaching.count(it->first)) {
      ++it;
      continue;
    }
    AlertInstance& inst = it->second;
    if (inst.state == AlertState::kPending) {
      Log(inst, "pending", "inactive");
      it = rs->active.erase(it);
      continue;
    }
    if (rule.keep_firing_for.count() > 0) {
      if (!inst.keep_firing_since) inst.keep_firing_since = now;
      if (now - *inst.keep_firing_since < rule.keep_firing_for) {
        ++it;
        continue;
      }
    }
    Resolve(std::move(inst), now, out);
    it = rs->active.erase(it);
  }

  for (auto& [series, inst] : rs->active) {
    if (inst.state != AlertState::kFiring) continue;
    if (inst.last_sent_at && now - *inst.last_sent_at < options_.resend_interval) continue;
    out->push_back(MakeNotice(inst, now, fired_now.count(series) > 0));
    inst.last_sent_at = now;
  }
}

void Evaluator::ResolveAll(RuleState* rs, Time now, std::vector<AlertNotice>* out) {
  for (auto& [series, inst] : rs->active) {
    if (inst.state == AlertState::kFiring) {
      Resolve(std::move(inst), now, out);
    } else {
      Log(inst, "pending", "inactive");
    }
  }
  rs->active.clear();
}

void Evaluator::Resolve(AlertInstance inst, Time now, std::vector<AlertNotice>* out) {
  inst.state = AlertState::kResolved;
  inst.resolved_at = now;
  inst.keep_firing_since.reset();
  Log(inst, "firing", "resolved");
  out->push_back(MakeNotice(inst, now, true));
  inst.last_sent_at = now;
  resolved_.push_front(std::move(inst));
  if (resolved_.size() > kMaxResolved) resolved_.pop_back();
}

AlertNotice Evaluator::MakeNotice(const AlertInstance& inst, Time now, bool transition) const {
  AlertNotice n;
  n.fingerprint = inst.fingerprint;
  n.labels = inst.labels;
  n.annotations = inst.annotations;
  n.starts_at = inst.fired_at.value_or(inst.active_at);
  n.resolved = inst.state == AlertState::kResolved;
  if (n.resolved) {
    n.ends_at = *inst.resolved_at;
  } else {
    n.ends_at = now + 4 * std::max(options_.evaluation_interval, options_.resend_interval);
  }
  n.transition = transition;
  n.generator_url = options_.external_url + "/api/v1/alerts";
  return n;
}

void Evaluator::Log(const AlertInstance& inst, const char* from, const char* to) const {
  options_.log("alerting: " + inst.rule_name + LabelsText(inst.series_labels) + " " + from +
               " -> " + to + " value=" + FormatValue(inst.value) + " rule=" + inst.rule_id);
}

void Evaluator::Prune(Time now) {
  while (!resolved_.empty() && now - *resolved_.back().resolved_at > options_.resolved_retention) {
    resolved_.pop_back();
  }
}

std::vector<Evaluator::RuleStatus> Evaluator::Rules() const {
  std::vector<RuleStatus> out;
  for (const auto& rs : rules_) {
    RuleStatus s{rs.rule, rs.last_error, rs.last_evaluation, 0, 0};
    for (const auto& [series, inst] : rs.active) {
      (inst.state == AlertState::kFiring ? s.firing : s.pending) += 1;
    }
    out.push_back(std::move(s));
  }
  return out;
}

const Rule* Evaluator::FindRule(const std::string& id) const {
  for (const auto& rs : rules_) {
    if (rs.rule.id == id) return &rs.rule;
  }
  return nullptr;
}

std::vector<AlertInstance> Evaluator::Active() const {
  std::vector<AlertInstance> out;
  for (const auto& rs : rules_) {
    for (const auto& [series, inst] : rs.active) out.push_back(inst);
  }
  return out;
}

std::vector<AlertInstance> Evaluator::Resolved(Time now) const {
  std::vector<AlertInstance> out;
  for (const auto& inst : resolved_) {
    if (now - *inst.resolved_at > options_.resolved_retention) break;
    out.push_back(inst);
  }
  return out;
}

}  // namespace speedmon::alerting
