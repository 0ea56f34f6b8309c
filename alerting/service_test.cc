// The alerting service end to end: config -> rules -> evaluation with a fake clock ->
// Alertmanager and webhook receivers on 127.0.0.1; admin API answers; metrics.
#include "alerting/service.h"

#include <cstdlib>

#include <gtest/gtest.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "alerting/test_receiver.h"
#include "base/json.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::TestReceiver;

constexpr milliseconds kWait{10000};
constexpr int64_t kEpoch = 1767225600;  // 2026-01-01T00:00:00Z
Time T(double s) { return Time{} + milliseconds(kEpoch * 1000 + static_cast<int64_t>(s * 1000)); }

class MapSource : public ValueSource {
 public:
  base::StatusOr<std::vector<Sample>> Query(const std::string& metric,
                                            const std::map<std::string, std::string>&) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = values.find(metric);
    if (it == values.end()) return std::vector<Sample>{};
    return std::vector<Sample>{Sample{{}, it->second}};
  }
  void Set(const std::string& m, double v) {
    std::lock_guard<std::mutex> lock(mu);
    values[m] = v;
  }
  std::mutex mu;
  std::map<std::string, double> values;
};

constexpr const char* kCpu = "pokemon_speedrun_system_cpu_percent";

class ServiceTest : public ::testing::Test {
 protected:
  config::AlertingConfig Config() {
    config::AlertingConfig c;
    c.evaluation_interval = seconds(15);
    c.resend_interval = seconds(60);
    c.resolved_retention = seconds(900);
    c.default_rules = true;
    c.alertmanagers.push_back({am_.url(), milliseconds(2000)});
    c.webhooks.push_back({hook_.url("/hook"), milliseconds(2000)});
    return c;
  }
  std::unique_ptr<Service> Make(const config::AlertingConfig& c, std::string rules_path = "") {
    ServiceOptions o;
    o.rules_path = std::move(rules_path);
    o.external_url = "http://127.0.0.1:8000";
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    o.initial_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    base::StatusOr<std::unique_ptr<Service>> s = Service::Create(c, source_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  void Evaluate(Service* s, double t) {
    s->Evaluate(T(t));
    ASSERT_TRUE(s->WaitIdle(kWait));
  }

  TestReceiver am_, hook_;
  std::shared_ptr<MapSource> source_ = std::make_shared<MapSource>();
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

constexpr const char* kCpuFiring =
    R"([{"annotations":{"description":"CPU usage is 90%, above 85% for 2 minutes.",)"
    R"("summary":"High CPU usage"},"endsAt":"ENDS",)"
    R"("generatorURL":"http://127.0.0.1:8000/api/v1/alerts",)"
    R"("labels":{"alertname":"HighCpuUsage","rule_id":"high_cpu_usage","severity":"critical"},)"
    R"("startsAt":"2026-01-01T00:02:00.000Z"}])";

std::string CpuFiring(const std::string& ends) {
  std::string s = kCpuFiring;
  return s.replace(s.find("ENDS"), 4, ends);
}

TEST_F(ServiceTest, DefaultRuleFiresIsResentAndResolvesAtBothTargets) {
  auto s = Make(Config());
  source_->Set(kCpu, 90);
  Evaluate(s.get(), 0);
  Evaluate(s.get(), 105);
  EXPECT_TRUE(am_.Requests().empty());  // pending alerts are not sent

  Evaluate(s.get(), 120);
  auto am = am_.Requests();
  ASSERT_EQ(am.size(), 1u);
  EXPECT_EQ(am[0].path, "/api/v2/alerts");
  EXPECT_EQ(am[0].body, CpuFiring("2026-01-01T00:06:00.000Z"));
  auto hook = hook_.Requests();
  ASSERT_EQ(hook.size(), 1u);
  json wh = json::parse(hook[0].body);
  EXPECT_EQ(wh["status"], "firing");
  EXPECT_EQ(wh["alerts"][0]["labels"]["alertname"], "HighCpuUsage");
  EXPECT_EQ(wh["alerts"][0]["startsAt"], "2026-01-01T00:02:00.000Z");
  EXPECT_EQ(wh["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

  Evaluate(s.get(), 135);
  Evaluate(s.get(), 165);
  EXPECT_EQ(am_.Requests().size(), 1u);
  Evaluate(s.get(), 180);  // resend_interval after the first send
  am = am_.Requests();
  ASSERT_EQ(am.size(), 2u);
  EXPECT_EQ(am[1].body, CpuFiring("2026-01-01T00:07:00.000Z"));
  EXPECT_EQ(hook_.Requests().size(), 1u);  // webhooks get transitions only

  source_->Set(kCpu, 85);  // at the threshold: not a breach
  Evaluate(s.get(), 195);
  am = am_.Requests();
  ASSERT_EQ(am.size(), 3u);
  json resolved = json::parse(am[2].body);
  EXPECT_EQ(resolved[0]["endsAt"], "2026-01-01T00:03:15.000Z");
  EXPECT_EQ(resolved[0]["startsAt"], "2026-01-01T00:02:00.000Z");
  EXPECT_EQ(resolved[0]["labels"]["alertname"], "HighCpuUsage");
  hook = hook_.Requests();
  ASSERT_EQ(hook.size(), 2u);
  wh = json::parse(hook[1].body);
  EXPECT_EQ(wh["status"], "resolved");
  EXPECT_EQ(wh["alerts"][0]["endsAt"], "2026-01-01T00:03:15.000Z");

  Evaluate(s.get(), 255);
  EXPECT_EQ(am_.Requests().size(), 3u);  // resolved is sent once
  std::lock_guard<std::mutex> lock(log_mu_);
  EXPECT_EQ(log_, (std::vector<std::string>{
                      "alerting: HighCpuUsage inactive -> pending value=90 rule=high_cpu_usage",
                      "alerting: HighCpuUsage pending -> firing value=90 rule=high_cpu_usage",
                      "alerting: HighCpuUsage firing -> resolved value=90 rule=high_cpu_usage"}));
}

TEST_F(ServiceTest, AlertsJsonListsActiveAndResolved) {
  auto c = Config();
  c.resolved_retention = seconds(60);
  auto s = Make(c);
  EXPECT_EQ(s->AlertsJson(T(0)), R"({"alerts":[],"resolved":[]})");
  source_->Set(kCpu, 90);
  source_->Set("pokemon_speedrun_healthy_processes", 2);
  Evaluate(s.get(), 0);
  Evaluate(s.get(), 60);  // healthy processes fire (for 1m); CPU pending
  json j = json::parse(s->AlertsJson(T(60)));
  ASSERT_EQ(j["alerts"].size(), 2u);
  json cpu = j["alerts"][0];
  EXPECT_EQ(cpu["id"], "high_cpu_usage");
  EXPECT_EQ(cpu["name"], "HighCpuUsage");
  EXPECT_EQ(cpu["state"], "pending");
  EXPECT_EQ(cpu["severity"], "critical");
  EXPECT_EQ(cpu["value"], 90.0);
  EXPECT_EQ(cpu["activeAt"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(cpu["firedAt"], nullptr);
  EXPECT_EQ(cpu["labels"]["rule_id"], "high_cpu_usage");
  json hp = j["alerts"][1];
  EXPECT_EQ(hp["name"], "InsufficientHealthyProcesses");
  EXPECT_EQ(hp["state"], "firing");
  EXPECT_EQ(hp["firedAt"], "2026-01-01T00:01:00.000Z");
  EXPECT_EQ(hp["annotations"]["description"],
            "Only 2 emulator processes are healthy, fewer than 3, for 1 minute.");
  EXPECT_EQ(j["resolved"], json::array());

  source_->Set("pokemon_speedrun_healthy_processes", 3);
  Evaluate(s.get(), 75);
  j = json::parse(s->AlertsJson(T(75)));
  ASSERT_EQ(j["alerts"].size(), 1u);
  ASSERT_EQ(j["resolved"].size(), 1u);
  EXPECT_EQ(j["resolved"][0]["state"], "resolved");
  EXPECT_EQ(j["resolved"][0]["resolvedAt"], "2026-01-01T00:01:15.000Z");
  EXPECT_EQ(json::parse(s->AlertsJson(T(135)))["resolved"].size(), 1u);
  EXPECT_EQ(json::parse(s->AlertsJson(T(135.001)))["resolved"].size(), 0u);
}

TEST_F(ServiceTest, AddAndRemoveRulesThroughTheApi) {
  auto s = Make(Config());
  base::StatusOr<Rule> added = s->AddRule(
      R"({"id":"custom_performance","name":"Custom Performance Alert",)"
      R"("metric":"speedrun.average_script_compilation_ms","operator":">","threshold":120})");
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(base::ToJson(RuleToJson(*added)),
            R"({"aggregation":"none","annotations":{},"description":"","for":"0s",)"
            R"("id":"custom_performance","keep_firing_for":"0s","labels":{},)"
            R"("metric":"speedrun.average_script_compilation_ms",)"
            R"("name":"Custom Performance Alert","operator":">","origin":"api",)"
            R"("severity":"warning","threshold":120.0})");

  EXPECT_EQ(
      s->AddRule(R"({"id":"high_cpu_usage","metric":"x","operator":">","threshold":1})").status(),
      base::AlreadyExistsError("rule \"high_cpu_usage\" already exists", "id"));
  EXPECT_EQ(s->AddRule(R"({"id":"x","metric":"x","operator":"~","threshold":1})").status(),
            base::InvalidArgumentError(
                "operator must be one of > < >= <= == != (or gt, lt, ge, le, eq, ne)", "operator"));
  EXPECT_EQ(s->AddRule("not json").status(), base::InvalidArgumentError("body is not valid JSON"));

  source_->Set("pokemon_speedrun_script_compilation_average_seconds", 0.121);
  Evaluate(s.get(), 0);
  ASSERT_EQ(am_.Requests().size(), 1u);
  EXPECT_EQ(json::parse(am_.Requests()[0].body)[0]["labels"]["alertname"],
            "Custom Performance Alert");

  json rules = json::parse(s->RulesJson())["rules"];
  ASSERT_EQ(rules.size(), 7u);
  EXPECT_EQ(rules[0]["id"], "slow_script_compilation");
  EXPECT_EQ(rules[0]["state"], "inactive");
  EXPECT_EQ(rules[0]["health"], "ok");
  EXPECT_EQ(rules[0]["origin"], "default");
  EXPECT_EQ(rules[6]["id"], "custom_performance");
  EXPECT_EQ(rules[6]["state"], "firing");
  EXPECT_EQ(rules[6]["firing"], 1);
  EXPECT_EQ(rules[6]["lastEvaluation"], "2026-01-01T00:00:00.000Z");

  EXPECT_TRUE(s->RemoveRule("custom_performance", T(10)).ok());
  ASSERT_TRUE(s->WaitIdle(kWait));
  ASSERT_EQ(am_.Requests().size(), 2u);
  EXPECT_EQ(json::parse(am_.Requests()[1].body)[0]["endsAt"], "2026-01-01T00:00:10.000Z");
  EXPECT_EQ(s->RemoveRule("custom_performance", T(10)),
            base::NotFoundError("no rule with id \"custom_performance\"", "id"));
  EXPECT_EQ(json::parse(s->RulesJson())["rules"].size(), 6u);

  // Not UTF-8: answered, not thrown (the admin layer repairs the bytes in its JSON).
  EXPECT_EQ(s->RemoveRule("bad\xff", T(10)).code(), base::StatusCode::kNotFound);
}

// Families by name -> {labels text -> value}.
std::map<std::string, std::map<std::string, double>> Collected(prometheus::Collectable& c) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& f : c.Collect()) {
    auto& series = out[f.name];
    for (const auto& m : f.metric) {
      std::string key;
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      series[key] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return out;
}

TEST_F(ServiceTest, CollectableExportsAlertCountsAndCounters) {
  auto c = Config();
  c.webhooks.clear();
  auto s = Make(c);
  auto collectable = s->collectable();
  source_->Set(kCpu, 90);
  source_->Set("pokemon_speedrun_healthy_processes", 1);
  Evaluate(s.get(), 0);
  Evaluate(s.get(), 60);
  auto m = Collected(*collectable);
  EXPECT_EQ(
      m["pokemon_speedrun_alerts"]["alertname=HighCpuUsage,alertstate=pending,severity=critical,"],
      1);
  EXPECT_EQ(
      m["pokemon_speedrun_alerts"]["alertname=HighCpuUsage,alertstate=firing,severity=critical,"],
      0);
  EXPECT_EQ(m["pokemon_speedrun_alerts"]
             ["alertname=InsufficientHealthyProcesses,alertstate=firing,severity=critical,"],
            1);
  EXPECT_EQ(m["pokemon_speedrun_alerts"]
             ["alertname=SlowScriptCompilation,alertstate=firing,severity=warning,"],
            0);
  EXPECT_EQ(m["pokemon_speedrun_alerts"].size(), 12u);  // 6 rules x 2 states
  EXPECT_EQ(m["pokemon_speedrun_alert_rules"][""], 6);
  EXPECT_EQ(m["pokemon_speedrun_alert_evaluations_total"][""], 12);
  EXPECT_EQ(m["pokemon_speedrun_alert_evaluation_failures_total"][""], 0);
  const std::string t = "target=" + am_.url() + ",";
  EXPECT_EQ(m["pokemon_speedrun_alert_notifications_total"]["result=sent," + t], 1);
  EXPECT_EQ(m["pokemon_speedrun_alert_notifications_total"]["result=failed," + t], 0);
  EXPECT_EQ(m["pokemon_speedrun_alert_notifications_total"]["result=dropped," + t], 0);
  EXPECT_EQ(m["pokemon_speedrun_alert_notification_queue_length"][t], 0);

  s.reset();  // the collectable outlives the service and keeps the final counts
  m = Collected(*collectable);
  EXPECT_EQ(m["pokemon_speedrun_alert_notifications_total"]["result=sent," + t], 1);
}

TEST_F(ServiceTest, CreateRefusesBadConfig) {
  auto c = Config();
  config::AlertRuleConfig r;
  r.id = "dup";
  r.name = "Dup";
  r.metric = "up";
  c.rules = {r, r};
  EXPECT_EQ(Service::Create(c, source_, {}).status(),
            base::InvalidArgumentError("alerting rule \"dup\": duplicate id", "id"));

  c.rules = {r};
  c.rules[0].metric = "system.load";
  base::Status status = Service::Create(c, source_, {}).status();
  EXPECT_EQ(status.code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind("alerting rule \"dup\": metric: unknown dotted metric name", 0),
            0u)
      << status.ToString();

  c = Config();
  c.webhooks[0].url = "ftp://x";
  EXPECT_EQ(Service::Create(c, source_, {}).status(),
            base::InvalidArgumentError(
                "webhook URL \"ftp://x\": only http:// and https:// URLs are supported", "url"));
}

TEST_F(ServiceTest, ConfigRuleReplacesTheDefaultWithItsId) {
  auto c = Config();
  config::AlertRuleConfig r;
  r.id = "high_cpu_usage";
  r.name = "HighCpuUsage";
  r.metric = "system.cpu_percent";
  r.aggregation = "max";
  r.op = config::CompareOp::kGt;
  r.threshold = 50;
  c.rules = {r};
  base::StatusOr<std::vector<Rule>> built = BuildRules(c);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  std::vector<Rule> rules = *built;
  ASSERT_EQ(rules.size(), 6u);
  EXPECT_EQ(rules[2].id, "high_cpu_usage");
  EXPECT_EQ(rules[2].threshold, 50);
  EXPECT_EQ(rules[2].origin, RuleOrigin::kConfig);
  c.default_rules = false;
  built = BuildRules(c);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->size(), 1u);
}

TEST_F(ServiceTest, ReloadKeepsUnchangedRulesAndApiRules) {
  auto s = Make(Config());
  ASSERT_TRUE(s->AddRule(R"({"id":"mine","metric":"m","operator":">","threshold":1})").ok());
  source_->Set(kCpu, 90);
  Evaluate(s.get(), 0);
  ASSERT_EQ(s->evaluator().Active().size(), 1u);

  TestReceiver am2;
  auto c = Config();
  c.alertmanagers = {{am2.url(), milliseconds(2000)}};
  base::Status reloaded = s->Reload(c, T(30));
  ASSERT_TRUE(reloaded.ok()) << reloaded.ToString();
  auto active = s->evaluator().Active();
  ASSERT_EQ(active.size(), 1u);  // CPU rule unchanged: still pending since 0
  EXPECT_EQ(FormatRfc3339(active[0].active_at), "2026-01-01T00:00:00.000Z");
  EXPECT_NE(s->evaluator().FindRule("mine"), nullptr);
  Evaluate(s.get(), 120);
  EXPECT_EQ(am2.Requests().size(), 1u);  // the new target
  EXPECT_TRUE(am_.Requests().empty());

  c.default_rules = false;
  ASSERT_TRUE(s->Reload(c, T(130)).ok());
  ASSERT_TRUE(s->WaitIdle(kWait));
  ASSERT_EQ(am2.Requests().size(), 2u);  // the dropped default rule's alert resolves
  EXPECT_EQ(json::parse(am2.Requests()[1].body)[0]["endsAt"], "2026-01-01T00:02:10.000Z");
  EXPECT_EQ(s->evaluator().rule_count(), 1u);

  c.webhooks[0].url = "bad";
  EXPECT_EQ(s->Reload(c, T(140)).code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->evaluator().rule_count(), 1u);
}

// Rules added and deleted through the API are in the rules file: a new Service (a
// restart) and a Reload (a SIGHUP) both see them, with their origin.
TEST_F(ServiceTest, ApiChangesSurviveARestartAndAReload) {
  char dir[] = "/tmp/speedmon-alert-rules-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/rules.json";
  auto c = Config();
  config::AlertRuleConfig mine;
  mine.id = "from_config";
  mine.name = "from_config";
  mine.metric = "m";
  mine.threshold = 1;
  c.rules.push_back(mine);
  {
    auto s = Make(c, path);
    ASSERT_TRUE(s->AddRule(R"({"rule_id":"disk","metric_name":"system.disk_percent",)"
                           R"("operator":"greater_than","threshold_value":90})")
                    .ok());
    ASSERT_TRUE(s->RemoveRule("high_cpu_usage", T(0)).ok());
    ASSERT_TRUE(s->RemoveRule("from_config", T(0)).ok());
  }
  auto ids = [](const Service& s) {
    std::vector<std::string> out;
    const json doc = json::parse(s.RulesJson());
    for (const auto& r : doc["rules"]) {
      out.push_back(r["id"].get<std::string>() + ":" + r["origin"].get<std::string>());
    }
    return out;
  };
  const std::vector<std::string> kExpected = {"slow_script_compilation:default",
                                              "slow_checkpoint_loading:default",
                                              "high_memory_usage:default",
                                              "low_experiment_success_rate:default",
                                              "insufficient_healthy_processes:default",
                                              "disk:api"};
  auto restarted = Make(c, path);
  EXPECT_EQ(ids(*restarted), kExpected);
  EXPECT_EQ(json::parse(restarted->RulesJson())["deleted"],
            json::parse(R"(["from_config","high_cpu_usage"])"));
  ASSERT_TRUE(restarted->Reload(c, T(10)).ok());
  EXPECT_EQ(ids(*restarted), kExpected);

  // Deleting the API rule and re-adding a deleted config id through the API are kept too.
  ASSERT_TRUE(restarted->RemoveRule("disk", T(20)).ok());
  ASSERT_TRUE(
      restarted
          ->AddRule(R"({"id":"high_cpu_usage","metric":"system.cpu_percent","operator":">",)"
                    R"("threshold":99})")
          .ok());
  auto again = Make(c, path);
  std::vector<std::string> expected = kExpected;
  expected.back() = "high_cpu_usage:api";
  EXPECT_EQ(ids(*again), expected);
  EXPECT_EQ(json::parse(again->RulesJson())["deleted"],
            json::parse(R"(["from_config","high_cpu_usage"])"));

  // A file that cannot be written refuses the change and keeps the running set.
  auto unwritable = Make(c, std::string(dir) + "/missing-dir/rules.json");
  EXPECT_EQ(unwritable->RemoveRule("high_cpu_usage", T(30)).code(), base::StatusCode::kUnavailable);
  EXPECT_NE(unwritable->evaluator().FindRule("high_cpu_usage"), nullptr);
}

// The daemon's wiring: rules read registries through CollectablesValueSource, and that
// source may include alerting's own collectable without deadlocking.
TEST(ServiceWiringTest, RulesOverRegistriesIncludingAlertingsOwnMetrics) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& up = prometheus::BuildGauge().Name("pokemon_speedrun_upstream_healthy").Register(*registry);
  up.Add({{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8081"}}).Set(0);
  up.Add({{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8082"}}).Set(1);
  auto source = std::make_shared<CollectablesValueSource>();
  source->Add(registry);
  config::AlertingConfig c;
  c.default_rules = false;
  ServiceOptions o;
  o.log = [](const std::string&) {};
  base::StatusOr<std::unique_ptr<Service>> created = Service::Create(c, source, o);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<Service> s = std::move(created).value();
  source->Add(s->collectable());
  ASSERT_TRUE(s->AddRule(R"({"id":"down","name":"EndpointDown",)"
                         R"("metric":"pokemon_speedrun_upstream_healthy","operator":"==",)"
                         R"("threshold":0})")
                  .ok());
  ASSERT_TRUE(s->AddRule(R"({"id":"meta","metric":"pokemon_speedrun_alert_rules",)"
                         R"("operator":">=","threshold":2})")
                  .ok());
  s->Evaluate(T(0));
  json alerts = json::parse(s->AlertsJson(T(0)))["alerts"];
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["labels"]["endpoint"], "127.0.0.1:8081");
  EXPECT_EQ(alerts[0]["labels"]["upstream"], "emulator-1");
  EXPECT_EQ(alerts[1]["id"], "meta");
  EXPECT_EQ(alerts[1]["value"], 2.0);
}

}  // namespace
}  // namespace speedmon::alerting
