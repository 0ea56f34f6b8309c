// speedmon's alerting as one object for the daemon to wire: rules (defaults, config,
// admin API), the evaluator, the notifier, the JSON answers of /api/v1/alerts and
// /api/v1/alert-rules, and a prometheus::Collectable with alerting's own metrics.
//
// Threads: Evaluate, AddRule, RemoveRule, Reload and the JSON views are for the main
// thread only (the proxy calls Evaluate from a timer every evaluation_interval()).
// None of them waits on the network: notices go to the notifier's sender threads.
// The collectable may be collected from any thread.
//
// Exported metrics (all from Collect()):
//   pokemon_speedrun_alerts{alertname,severity,alertstate}  gauge: pending / firing
//       instances per rule; both states are present (0) for every rule
//   pokemon_speedrun_alert_rules                             gauge: rules loaded
//   pokemon_speedrun_alert_evaluations_total                 counter: rule evaluations
//   pokemon_speedrun_alert_evaluation_failures_total         counter: rule evaluations
//       whose metric could not be read (e.g. a bare histogram name, too many series)
//   pokemon_speedrun_alert_notifications_total{target,result}  counter, per notice and
//       target URL: result="sent" (2xx), "failed" (each failed attempt), "dropped"
//       (pushed out of a full queue)
//   pokemon_speedrun_alert_notification_queue_length{target}  gauge: notices waiting
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "alerting/evaluator.h"
#include "alerting/notifier.h"
#include "alerting/rule.h"
#include "alerting/rule_store.h"
#include "alerting/value_source.h"
#include "base/status.h"
#include "config/config.h"
#include "prometheus/collectable.h"

namespace speedmon::alerting {

struct ServiceOptions {
  // speedmon's admin base URL, e.g. "http://127.0.0.1:8000": notices' generatorURL is
  // external_url + "/api/v1/alerts"; the webhook's externalURL is external_url.
  std::string external_url = "http://127.0.0.1:8000";
  std::function<void(const std::string&)> log;  // state changes, send failures; default stderr
  size_t max_pending = 1024;                    // per target
  config::Duration initial_backoff{500};
  config::Duration max_backoff{30000};
  // Where rule changes made through the API are kept (see rule_store.h); "" = in memory
  // only (they survive a SIGHUP but not a restart).
  std::string rules_path;
};

class Service {
 public:
  // Rules: DefaultRules() when config.default_rules, then config.rules in order (a config
  // rule with a default's id replaces that default), minus the ids deleted through the
  // API, plus the rules added through it (both read from options.rules_path; a config
  // rule wins over an API rule of the same id). Targets: every alertmanager, then every
  // webhook. kInvalidArgument when a rule is refused (two config rules with one id, an
  // unknown dotted metric name, ...), a URL does not parse or the rules file is malformed.
  static base::StatusOr<std::unique_ptr<Service>> Create(const config::AlertingConfig& config,
                                                         std::shared_ptr<ValueSource> source,
                                                         ServiceOptions options);
  ~Service();  // stops the sender threads (see Notifier::~Notifier)

  config::Duration evaluation_interval() const { return config_.evaluation_interval; }

  // One evaluation round at `now` (system_clock::now() in the daemon).
  void Evaluate(Time now);

  // POST /api/v1/alert-rules with `body` (see RuleFromJson): the rule as added, evaluated
  // from the next round on; kInvalidArgument (with the field) when RuleFromJson refuses
  // it, kAlreadyExists (field "id") for a taken id, kTooLarge past 1000 rules,
  // kUnavailable when the rules file cannot be written (then nothing changes). Posting
  // the id of a deleted config rule adds the posted rule under that id (the config's
  // stays deleted).
  base::StatusOr<Rule> AddRule(std::string_view body);

  // DELETE /api/v1/alert-rules/{id} (id already URL-decoded): its firing alerts are sent
  // as resolved; kNotFound (field "id") for an unknown id, kUnavailable when the rules
  // file cannot be written (then nothing changes). Deleting a config or default rule is
  // remembered: it stays deleted across restarts and reloads.
  base::Status RemoveRule(std::string_view id, Time now);

  // GET /api/v1/alerts:
  //   {"alerts": [{"id": rule id, "name": alertname, "state": "pending|firing",
  //                "severity": "...", "value": number|null, "labels": {...},
  //                "annotations": {...}, "activeAt": RFC 3339, "firedAt": RFC 3339|null,
  //                "fingerprint": "..."}],
  //    "resolved": [the same with "state": "resolved", "resolvedAt": RFC 3339], newest
  //                 first, for resolved_retention]}
  std::string AlertsJson(Time now) const;

  // GET /api/v1/alert-rules:
  //   {"rules": [RuleToJson(rule) + {"state": "inactive|pending|firing", "pending": n,
  //              "firing": n, "health": "unknown|ok|error", "lastError": "...",
  //              "lastEvaluation": RFC 3339|null}],
  //    "deleted": [ids of config and default rules deleted through the API]}
  std::string RulesJson() const;

  // SIGHUP: reads the rules file again and rebuilds the default and config rules from
  // `config`; rules added through the API stay (unless the config now has their id), and
  // deleted ones stay deleted. Unchanged rules keep their
  // alerts; changed or dropped ones resolve. The notifier is rebuilt only when the
  // targets change (joining the old sender threads: at most one request timeout).
  // On error nothing changes.
  base::Status Reload(const config::AlertingConfig& config, Time now);

  // alerting's metrics; register it with the exposition. Safe to outlive the Service.
  std::shared_ptr<prometheus::Collectable> collectable() const;

  // For drain at shutdown: waits until the notifier's queues are empty (see Notifier).
  bool WaitIdle(std::chrono::milliseconds timeout) { return notifier_->WaitIdle(timeout); }

  const Evaluator& evaluator() const { return *evaluator_; }
  std::vector<TargetStats> NotifierStats() const { return notifier_->Stats(); }

  class Metrics;  // the collectable (service.cc)

 private:
  Service() = default;
  void Publish();  // copies counts to the collectable
  // `built` (BuildRules) with `changes` applied: deleted ids dropped, added rules appended
  // unless `built` has their id.
  std::vector<Rule> Compose(std::vector<Rule> built, const RuleChanges& changes) const;
  // Saves `next` (when there is a rules file) and adopts it; on error nothing changes.
  base::Status Commit(RuleChanges next);

  config::AlertingConfig config_;
  ServiceOptions options_;
  std::shared_ptr<ValueSource> source_;
  std::unique_ptr<Evaluator> evaluator_;
  std::shared_ptr<Notifier> notifier_;
  std::shared_ptr<Metrics> collectable_;
  RuleChanges changes_;  // what the API changed, as in the rules file
};

// The rule list Create/Reload build from a config (exposed for tests).
base::StatusOr<std::vector<Rule>> BuildRules(const config::AlertingConfig& config);

}  // namespace speedmon::alerting
