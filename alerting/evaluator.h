// The rule evaluator: per rule and label set, inactive -> pending -> firing -> resolved,
// with Prometheus's semantics, and the decision of what to send and when.
//
// Thread: main thread only; not thread-safe. It never blocks: it reads values from a
// ValueSource and returns notices for the caller to hand to the notifier. Time is passed
// in (a fake clock in the tests, system_clock::now() in the daemon).
//
// Semantics, per instance (one per matching series, or one per rule when aggregated):
//   - the condition holds (value OP threshold; NaN and absent never hold):
//       inactive -> pending, active_at = now;
//       pending -> firing at the first evaluation where now - active_at >= for
//       (for = 0 fires at the evaluation that first sees the breach);
//   - the condition does not hold:
//       pending -> dropped (no notification; a new breach starts the timer again);
//       firing with keep_firing_for > 0 -> stays firing until
//       now - first_clear >= keep_firing_for (a breach in between resets first_clear);
//       firing -> resolved, resolved_at = now: kept in the resolved list for
//       resolved_retention and sent once as resolved.
//   - a new breach of a resolved label set starts a new instance (pending again).
// Sending (Alertmanager): a firing instance is sent when it fires and then every
// resend_interval, with ends_at = now + 4 * max(evaluation_interval, resend_interval)
// so Alertmanager resolves it by itself if speedmon dies; a resolved one is sent once
// with ends_at = resolved_at. Removing a rule resolves its firing instances.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "alerting/payload.h"
#include "alerting/rule.h"
#include "alerting/value_source.h"

namespace speedmon::alerting {

enum class AlertState { kPending, kFiring, kResolved };
const char* AlertStateName(AlertState s);  // "pending", "firing", "resolved"

struct AlertInstance {
  std::string rule_id;
  std::string rule_name;
  config::Severity severity = config::Severity::kWarning;
  Labels series_labels;  // from the matching series; empty for aggregated rules
  Labels labels;         // as sent: series labels + rule labels + alertname/severity/rule_id
  Labels annotations;    // expanded with the latest value
  std::string fingerprint;
  AlertState state = AlertState::kPending;
  double value = 0;  // the latest value seen breaching (scaled)
  Time active_at{};
  std::optional<Time> fired_at;
  std::optional<Time> resolved_at;
  std::optional<Time> last_sent_at;
  std::optional<Time> keep_firing_since;  // first clear while kept firing
};

struct EvaluatorOptions {
  config::Duration evaluation_interval{15000};
  config::Duration resend_interval{60000};
  config::Duration resolved_retention{900000};
  // Base of each notice's generatorURL (speedmon's admin address).
  std::string external_url = "http://127.0.0.1:8000";
  // One line per state change; default: stderr.
  std::function<void(const std::string&)> log;
};

class Evaluator {
 public:
  // At most this many instances per rule per evaluation; more series are ignored and
  // the evaluation counted as failed (an unbounded label would otherwise grow memory).
  static constexpr size_t kMaxInstancesPerRule = 1000;
  static constexpr size_t kMaxRules = 1000;
  static constexpr size_t kMaxResolved = 1000;

  // `source` must outlive the evaluator.
  Evaluator(ValueSource* source, EvaluatorOptions options);

  // Adds a rule; false (and nothing changes) when its id is taken or kMaxRules reached.
  bool AddRule(Rule rule);
  // Removes a rule. Its firing instances become resolved at `now`; their notices are
  // appended to *notices. False when no rule has this id.
  bool RemoveRule(const std::string& id, Time now, std::vector<AlertNotice>* notices);
  // Replaces all rules (config reload). A rule whose id and definition are unchanged keeps
  // its instances; instances of dropped or changed rules resolve (notices appended).
  void ReplaceRules(std::vector<Rule> rules, Time now, std::vector<AlertNotice>* notices);

  // Config reload: new intervals apply from the next evaluation.
  void SetTiming(config::Duration evaluation_interval, config::Duration resend_interval,
                 config::Duration resolved_retention);

  // One round: every rule once. Returns what to send now.
  std::vector<AlertNotice> Evaluate(Time now);

  struct RuleStatus {
    Rule rule;
    std::string last_error;  // "" when the last evaluation succeeded
    std::optional<Time> last_evaluation;
    size_t pending = 0;
    size_t firing = 0;
  };
  std::vector<RuleStatus> Rules() const;
  const Rule* FindRule(const std::string& id) const;
  size_t rule_count() const { return rules_.size(); }

  // Pending and firing instances, rule order then label order.
  std::vector<AlertInstance> Active() const;
  // Resolved instances still within retention as of `now`, newest first.
  std::vector<AlertInstance> Resolved(Time now) const;

  uint64_t evaluations() const { return evaluations_; }  // rule evaluations
  uint64_t failures() const { return failures_; }

 private:
  struct RuleState {
    Rule rule;
    std::map<Labels, AlertInstance> active;  // by series labels
    std::string last_error;
    std::optional<Time> last_evaluation;
  };

  void EvaluateRule(RuleState* rs, Time now, std::vector<AlertNotice>* out);
  // value per instance key, or an error message.
  std::map<Labels, double> ReadValues(RuleState* rs);
  void ResolveAll(RuleState* rs, Time now, std::vector<AlertNotice>* out);
  void Resolve(AlertInstance inst, Time now, std::vector<AlertNotice>* out);
  AlertNotice MakeNotice(const AlertInstance& inst, Time now, bool transition) const;
  AlertInstance NewInstance(const Rule& rule, const Labels& series, double value, Time now) const;
  void Log(const AlertInstance& inst, const char* from, const char* to) const;
  void Prune(Time now);

  ValueSource* source_;
  EvaluatorOptions options_;
  std::vector<RuleState> rules_;
  std::deque<AlertInstance> resolved_;  // newest first
  uint64_t evaluations_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace speedmon::alerting
