// The alerting facade and its collectable (see service.h). Main thread, except
// Metrics::Collect which any thread may call.
#include "alerting/service.h"

#include <cmath>
#include <map>
#include <mutex>
#include <string_view>
#include <tuple>

#include "base/json.h"
#include "nlohmann/json.hpp"
#include "prometheus/metric_family.h"

namespace speedmon::alerting {
namespace {

using nlohmann::json;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::string Dump(const json& j) { return base::ToJson(j); }

json TimeOrNull(const std::optional<Time>& t) {
  return t ? json(FormatRfc3339(*t)) : json(nullptr);
}

json ValueOrNull(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json InstanceJson(const AlertInstance& inst) {
  json j{{"id", inst.rule_id},
         {"name", inst.rule_name},
         {"state", AlertStateName(inst.state)},
         {"severity", config::SeverityName(inst.severity)},
         {"value", ValueOrNull(inst.value)},
         {"labels", inst.labels},
         {"annotations", inst.annotations},
         {"activeAt", FormatRfc3339(inst.active_at)},
         {"firedAt", TimeOrNull(inst.fired_at)},
         {"fingerprint", inst.fingerprint}};
  if (inst.state == AlertState::kResolved) j["resolvedAt"] = TimeOrNull(inst.resolved_at);
  return j;
}

std::vector<TargetConfig> Targets(const config::AlertingConfig& c) {
  std::vector<TargetConfig> out;
  for (const auto& am : c.alertmanagers) {
    out.push_back(TargetConfig{TargetKind::kAlertmanager, am.url, am.timeout, am.http});
  }
  for (const auto& wh : c.webhooks) {
    out.push_back(TargetConfig{TargetKind::kWebhook, wh.url, wh.timeout, wh.http});
  }
  return out;
}

// Includes TLS and auth, secrets read from their files: a token file changed before a
// SIGHUP rebuilds the notifier with the new token.
bool SameTargets(const config::AlertingConfig& a, const config::AlertingConfig& b) {
  return Targets(a) == Targets(b);
}

NotifierOptions MakeNotifierOptions(const ServiceOptions& options) {
  NotifierOptions no;
  no.max_pending = options.max_pending;
  no.initial_backoff = options.initial_backoff;
  no.max_backoff = options.max_backoff;
  no.external_url = options.external_url;
  no.log = options.log;
  return no;
}

ClientMetric Metric(std::vector<ClientMetric::Label> labels, double value, MetricType type) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

}  // namespace

// The collectable: a snapshot the main thread publishes after each change, plus the
// notifier's live counters. Its own mutex only; never calls back into the Service.
class Service::Metrics : public prometheus::Collectable {
 public:
  struct RuleCount {
    std::string alertname;
    std::string severity;
    size_t pending = 0;
    size_t firing = 0;
  };

  void Publish(std::vector<RuleCount> rules, uint64_t evaluations, uint64_t failures) {
    std::lock_guard<std::mutex> lock(mu_);
    rules_ = std::move(rules);
    evaluations_ = evaluations;
    failures_ = failures;
  }

  // Switches to `next`. The old notifier is stopped first (outside the lock, so a
  // scrape meanwhile still reads it) and its final counters are kept, so the exported
  // counters never run backwards.
  void SetNotifier(std::shared_ptr<Notifier> next) {
    std::shared_ptr<Notifier> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      old = notifier_;
    }
    if (old) old->Stop();
    std::lock_guard<std::mutex> lock(mu_);
    if (old) {
      for (const auto& s : old->Stats()) {
        auto& base = retired_[s.target];
        base.target = s.target;
        base.sent += s.sent;
        base.failed += s.failed;
        base.dropped += s.dropped;
      }
    }
    notifier_ = std::move(next);
  }

  std::vector<MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<MetricFamily> out;

    MetricFamily alerts{"pokemon_speedrun_alerts",
                        "Alert instances per rule and state (pending, firing).",
                        MetricType::Gauge,
                        {}};
    // Views into rules_ (held under mu_ until the labels are copied out), so that adding
    // up the rules copies no strings; they order as the strings would.
    std::map<std::tuple<std::string_view, std::string_view, std::string_view>, size_t> counts;
    for (const auto& r : rules_) {
      counts[{r.alertname, r.severity, "pending"}] += r.pending;
      counts[{r.alertname, r.severity, "firing"}] += r.firing;
    }
    alerts.metric.reserve(counts.size());
    for (const auto& [key, n] : counts) {
      const auto& [alertname, severity, state] = key;
      alerts.metric.push_back(Metric({{"alertname", std::string(alertname)},
                                      {"alertstate", std::string(state)},
                                      {"severity", std::string(severity)}},
                                     static_cast<double>(n), MetricType::Gauge));
    }
    out.push_back(std::move(alerts));

    out.push_back(
        MetricFamily{"pokemon_speedrun_alert_rules",
                     "Alert rules loaded.",
                     MetricType::Gauge,
                     {Metric({}, static_cast<double>(rules_.size()), MetricType::Gauge)}});
    out.push_back(
        MetricFamily{"pokemon_speedrun_alert_evaluations_total",
                     "Alert rule evaluations.",
                     MetricType::Counter,
                     {Metric({}, static_cast<double>(evaluations_), MetricType::Counter)}});
    out.push_back(MetricFamily{"pokemon_speedrun_alert_evaluation_failures_total",
                               "Alert rule evaluations whose metric could not be read.",
                               MetricType::Counter,
                               {Metric({}, static_cast<double>(failures_), MetricType::Counter)}});

    std::map<std::string, TargetStats> stats = retired_;
    std::map<std::string, size_t> queued;
    if (notifier_) {
      for (const auto& s : notifier_->Stats()) {
        auto& t = stats[s.target];
        t.sent += s.sent;
        t.failed += s.failed;
        t.dropped += s.dropped;
        queued[s.target] = s.queued;
      }
    }
    MetricFamily notifications{"pokemon_speedrun_alert_notifications_total",
                               "Alert notices per target: sent, failed attempts, dropped.",
                               MetricType::Counter,
                               {}};
    for (const auto& [target, s] : stats) {
      for (auto [result, n] : {std::pair<const char*, uint64_t>{"dropped", s.dropped},
                               {"failed", s.failed},
                               {"sent", s.sent}}) {
        notifications.metric.push_back(Metric({{"result", result}, {"target", target}},
                                              static_cast<double>(n), MetricType::Counter));
      }
    }
    out.push_back(std::move(notifications));
    MetricFamily queue{"pokemon_speedrun_alert_notification_queue_length",
                       "Alert notices waiting per target.",
                       MetricType::Gauge,
                       {}};
    for (const auto& [target, n] : queued) {
      queue.metric.push_back(
          Metric({{"target", target}}, static_cast<double>(n), MetricType::Gauge));
    }
    out.push_back(std::move(queue));
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<RuleCount> rules_;
  uint64_t evaluations_ = 0;
  uint64_t failures_ = 0;
  std::shared_ptr<Notifier> notifier_;
  std::map<std::string, TargetStats> retired_;
};

base::StatusOr<std::vector<Rule>> BuildRules(const config::AlertingConfig& config) {
  std::vector<Rule> rules;
  if (config.default_rules) rules = DefaultRules();
  std::map<std::string, bool> config_ids;
  for (const auto& rc : config.rules) {
    base::StatusOr<Rule> r = RuleFromConfig(rc, RuleOrigin::kConfig);
    if (!r.ok()) {
      return base::InvalidArgumentError(
          "alerting rule \"" + rc.id + "\": " + r.status().field() + ": " + r.status().message(),
          r.status().field());
    }
    if (config_ids[r->id]) {
      return base::InvalidArgumentError("alerting rule \"" + rc.id + "\": duplicate id", "id");
    }
    config_ids[r->id] = true;
    bool replaced = false;
    for (auto& existing : rules) {
      if (existing.id == r->id) {
        existing = *r;
        replaced = true;
      }
    }
    if (!replaced) rules.push_back(std::move(r).value());
  }
  return rules;
}

base::StatusOr<std::unique_ptr<Service>> Service::Create(const config::AlertingConfig& config,
                                                         std::shared_ptr<ValueSource> source,
                                                         ServiceOptions options) {
  base::StatusOr<std::vector<Rule>> rules = BuildRules(config);
  if (!rules.ok()) return rules.status();
  RuleChanges changes;
  if (!options.rules_path.empty()) {
    base::StatusOr<RuleChanges> loaded = LoadRuleChanges(options.rules_path);
    if (!loaded.ok()) return loaded.status();
    changes = std::move(loaded).value();
  }
  base::StatusOr<std::shared_ptr<Notifier>> notifier =
      Notifier::Create(Targets(config), MakeNotifierOptions(options));
  if (!notifier.ok()) return notifier.status();

  std::unique_ptr<Service> s(new Service());
  s->config_ = config;
  s->options_ = std::move(options);
  s->source_ = std::move(source);
  EvaluatorOptions eo;
  eo.evaluation_interval = config.evaluation_interval;
  eo.resend_interval = config.resend_interval;
  eo.resolved_retention = config.resolved_retention;
  eo.external_url = s->options_.external_url;
  eo.log = s->options_.log;
  s->evaluator_ = std::make_unique<Evaluator>(s->source_.get(), std::move(eo));
  s->changes_ = std::move(changes);
  std::vector<AlertNotice> none;
  s->evaluator_->ReplaceRules(s->Compose(std::move(rules).value(), s->changes_), Time{}, &none);
  s->notifier_ = std::move(notifier).value();
  s->collectable_ = std::make_shared<Metrics>();
  s->collectable_->SetNotifier(s->notifier_);
  s->Publish();
  return s;
}

Service::~Service() {
  // The collectable may outlive us; it keeps the final counts but not the threads.
  if (collectable_) collectable_->SetNotifier(nullptr);
}

std::shared_ptr<prometheus::Collectable> Service::collectable() const { return collectable_; }

void Service::Publish() {
  std::vector<Metrics::RuleCount> counts;
  for (const auto& status : evaluator_->Rules()) {
    counts.push_back(Metrics::RuleCount{status.rule.name,
                                        config::SeverityName(status.rule.severity), status.pending,
                                        status.firing});
  }
  collectable_->Publish(std::move(counts), evaluator_->evaluations(), evaluator_->failures());
}

void Service::Evaluate(Time now) {
  notifier_->Send(evaluator_->Evaluate(now));
  Publish();
}

std::vector<Rule> Service::Compose(std::vector<Rule> built, const RuleChanges& changes) const {
  std::vector<Rule> rules;
  for (Rule& r : built) {
    if (!changes.deleted.count(r.id)) rules.push_back(std::move(r));
  }
  for (const Rule& added : changes.added) {
    bool taken = false;
    for (const Rule& r : rules) taken = taken || r.id == added.id;
    if (taken) {
      if (options_.log) {
        options_.log("alert rule \"" + added.id +
                     "\" added through the API is shadowed by the config rule of the same id");
      }
      continue;
    }
    rules.push_back(added);
  }
  return rules;
}

base::Status Service::Commit(RuleChanges next) {
  if (!options_.rules_path.empty()) {
    if (base::Status saved = SaveRuleChanges(options_.rules_path, next); !saved.ok()) return saved;
  }
  changes_ = std::move(next);
  return base::OkStatus();
}

base::StatusOr<Rule> Service::AddRule(std::string_view body) {
  base::StatusOr<Rule> r = RuleFromJson(body);
  if (!r.ok()) return r.status();
  if (evaluator_->FindRule(r->id)) {
    return base::AlreadyExistsError("rule \"" + r->id + "\" already exists", "id");
  }
  if (evaluator_->Rules().size() >= Evaluator::kMaxRules)
    return base::TooLargeError("at most 1000 rules");
  // A deleted config rule's id stays in `deleted`: the config's rule stays out, this one
  // takes its place.
  RuleChanges next = changes_;
  next.added.push_back(*r);
  if (base::Status saved = Commit(std::move(next)); !saved.ok()) return saved;
  Rule added = *r;
  if (!evaluator_->AddRule(std::move(r).value())) {
    return base::TooLargeError("at most 1000 rules");
  }
  Publish();
  return added;
}

base::Status Service::RemoveRule(std::string_view id_view, Time now) {
  std::string id(id_view);
  const Rule* rule = evaluator_->FindRule(id);
  if (!rule) return base::NotFoundError("no rule with id \"" + id + "\"", "id");
  RuleChanges next = changes_;
  if (rule->origin == RuleOrigin::kApi) {
    std::erase_if(next.added, [&](const Rule& r) { return r.id == id; });
  } else {
    next.deleted.insert(id);
  }
  if (base::Status saved = Commit(std::move(next)); !saved.ok()) return saved;
  std::vector<AlertNotice> notices;
  evaluator_->RemoveRule(id, now, &notices);
  notifier_->Send(notices);
  Publish();
  return base::OkStatus();
}

std::string Service::AlertsJson(Time now) const {
  json alerts = json::array();
  for (const auto& inst : evaluator_->Active()) alerts.push_back(InstanceJson(inst));
  json resolved = json::array();
  for (const auto& inst : evaluator_->Resolved(now)) resolved.push_back(InstanceJson(inst));
  return Dump(json{{"alerts", std::move(alerts)}, {"resolved", std::move(resolved)}});
}

std::string Service::RulesJson() const {
  json rules = json::array();
  for (const auto& s : evaluator_->Rules()) {
    json j = RuleToJson(s.rule);
    j["state"] = s.firing > 0 ? "firing" : s.pending > 0 ? "pending" : "inactive";
    j["pending"] = s.pending;
    j["firing"] = s.firing;
    j["health"] = !s.last_evaluation ? "unknown" : s.last_error.empty() ? "ok" : "error";
    j["lastError"] = s.last_error;
    j["lastEvaluation"] = TimeOrNull(s.last_evaluation);
    rules.push_back(std::move(j));
  }
  json deleted = json::array();
  for (const std::string& id : changes_.deleted) deleted.push_back(id);
  return Dump(json{{"rules", std::move(rules)}, {"deleted", std::move(deleted)}});
}

base::Status Service::Reload(const config::AlertingConfig& config, Time now) {
  base::StatusOr<std::vector<Rule>> built = BuildRules(config);
  if (!built.ok()) return built.status();
  RuleChanges changes = changes_;
  if (!options_.rules_path.empty()) {
    base::StatusOr<RuleChanges> loaded = LoadRuleChanges(options_.rules_path);
    if (!loaded.ok()) return loaded.status();
    changes = std::move(loaded).value();
  }
  std::vector<Rule> rules = Compose(std::move(built).value(), changes);
  std::shared_ptr<Notifier> notifier;
  if (!SameTargets(config, config_)) {
    base::StatusOr<std::shared_ptr<Notifier>> created =
        Notifier::Create(Targets(config), MakeNotifierOptions(options_));
    if (!created.ok()) return created.status();
    notifier = std::move(created).value();
  }
  std::vector<AlertNotice> notices;
  evaluator_->ReplaceRules(std::move(rules), now, &notices);
  evaluator_->SetTiming(config.evaluation_interval, config.resend_interval,
                        config.resolved_retention);
  if (notifier) {
    collectable_->SetNotifier(notifier);
    notifier_ = std::move(notifier);
  }
  notifier_->Send(notices);
  config_ = config;
  changes_ = std::move(changes);
  Publish();
  return base::OkStatus();
}

}  // namespace speedmon::alerting
