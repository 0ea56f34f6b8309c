// Evaluator state machine with a fake clock and a fake value source. Test thread only.
#include "alerting/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace speedmon::alerting {
namespace {

using std::chrono::seconds;

// A fixed epoch so RFC 3339 strings are checkable: 2026-01-01T00:00:00Z.
constexpr int64_t kEpoch = 1767225600;
Time T(double s) {
  return Time{} + std::chrono::milliseconds(kEpoch * 1000 + static_cast<int64_t>(s * 1000));
}

class FakeSource : public ValueSource {
 public:
  base::StatusOr<std::vector<Sample>> Query(
      const std::string& metric, const std::map<std::string, std::string>& matchers) override {
    queries.push_back(metric);
    std::vector<Sample> out;
    for (const auto& s : series[metric]) {
      bool match = true;
      for (const auto& [k, v] : matchers) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) out.push_back(s);
    }
    auto error = errors.find(metric);
    if (out.empty() && error != errors.end()) return base::InvalidArgumentError(error->second);
    return out;
  }

  void Set(const std::string& metric, double v) { series[metric] = {Sample{{}, v}}; }
  void Clear(const std::string& metric) { series.erase(metric); }

  std::map<std::string, std::vector<Sample>> series;
  std::map<std::string, std::string> errors;  // answered instead of no samples
  std::vector<std::string> queries;
};

constexpr const char* kCpu = "pokemon_speedrun_system_cpu_percent";

class EvaluatorTest : public ::testing::Test {
 protected:
  EvaluatorTest() : evaluator_(&source_, Options()) {}

  EvaluatorOptions Options() {
    EvaluatorOptions o;
    o.evaluation_interval = seconds(15);
    o.resend_interval = seconds(60);
    o.resolved_retention = seconds(900);
    o.external_url = "http://127.0.0.1:8000";
    o.log = [this](const std::string& line) { log_.push_back(line); };
    return o;
  }

  static Rule CpuRule(int for_s, int keep_s = 0) {
    Rule r;
    r.id = "cpu";
    r.name = "HighCpuUsage";
    r.description = "CPU at {{ $value }}";
    r.metric_text = "system.cpu_percent";
    r.metric = kCpu;
    r.op = config::CompareOp::kGt;
    r.threshold = 85;
    r.for_duration = seconds(for_s);
    r.keep_firing_for = seconds(keep_s);
    r.severity = config::Severity::kCritical;
    return r;
  }

  std::vector<AlertInstance> Active() { return evaluator_.Active(); }
  AlertState StateOf() {
    auto a = Active();
    EXPECT_EQ(a.size(), 1u);
    return a.empty() ? AlertState::kResolved : a[0].state;
  }

  FakeSource source_;
  std::vector<std::string> log_;
  Evaluator evaluator_;
};

TEST_F(EvaluatorTest, PendingThenFiringExactlyAtFor) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(120)));
  source_.Set(kCpu, 90);
  EXPECT_TRUE(evaluator_.Evaluate(T(0)).empty());
  EXPECT_EQ(StateOf(), AlertState::kPending);
  EXPECT_TRUE(evaluator_.Evaluate(T(105)).empty());
  EXPECT_TRUE(evaluator_.Evaluate(T(119.999)).empty());  // one evaluation before: pending
  EXPECT_EQ(StateOf(), AlertState::kPending);

  auto notices = evaluator_.Evaluate(T(120));
  EXPECT_EQ(StateOf(), AlertState::kFiring);
  ASSERT_EQ(notices.size(), 1u);
  const AlertNotice& n = notices[0];
  EXPECT_FALSE(n.resolved);
  EXPECT_TRUE(n.transition);
  EXPECT_EQ(FormatRfc3339(n.starts_at), "2026-01-01T00:02:00.000Z");
  // endsAt = now + 4 * max(15s, 60s)
  EXPECT_EQ(FormatRfc3339(n.ends_at), "2026-01-01T00:06:00.000Z");
  EXPECT_EQ(n.labels,
            (Labels{{"alertname", "HighCpuUsage"}, {"rule_id", "cpu"}, {"severity", "critical"}}));
  EXPECT_EQ(n.annotations, (Labels{{"description", "CPU at 90"}, {"summary", "HighCpuUsage"}}));
  EXPECT_EQ(n.generator_url, "http://127.0.0.1:8000/api/v1/alerts");
  EXPECT_EQ(n.fingerprint, Fingerprint(n.labels));

  auto a = Active()[0];
  EXPECT_EQ(FormatRfc3339(a.active_at), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(*a.fired_at), "2026-01-01T00:02:00.000Z");
  EXPECT_EQ(log_, (std::vector<std::string>{
                      "alerting: HighCpuUsage inactive -> pending value=90 rule=cpu",
                      "alerting: HighCpuUsage pending -> firing value=90 rule=cpu"}));
}

TEST_F(EvaluatorTest, ForZeroFiresAtTheFirstBreach) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  source_.Set(kCpu, 85.01);
  auto notices = evaluator_.Evaluate(T(0));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(StateOf(), AlertState::kFiring);
  EXPECT_EQ(
      log_,
      (std::vector<std::string>{"alerting: HighCpuUsage inactive -> firing value=85.01 rule=cpu"}));
}

TEST_F(EvaluatorTest, ClearDuringPendingResetsAndANewBreachRestartsTheTimer) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(120)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  evaluator_.Evaluate(T(100));
  source_.Set(kCpu, 80);
  EXPECT_TRUE(evaluator_.Evaluate(T(115)).empty());  // no notification for a pending clear
  EXPECT_TRUE(Active().empty());
  EXPECT_TRUE(evaluator_.Resolved(T(115)).empty());
  EXPECT_EQ(log_.back(), "alerting: HighCpuUsage pending -> inactive value=90 rule=cpu");

  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(130));
  EXPECT_EQ(FormatRfc3339(Active()[0].active_at), "2026-01-01T00:02:10.000Z");
  EXPECT_TRUE(evaluator_.Evaluate(T(249)).empty());  // 119 s since the new breach
  EXPECT_EQ(StateOf(), AlertState::kPending);
  EXPECT_EQ(evaluator_.Evaluate(T(250)).size(), 1u);
  EXPECT_EQ(StateOf(), AlertState::kFiring);
}

TEST_F(EvaluatorTest, KeepFiringForHoldsThenResolves) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0, 60)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  source_.Set(kCpu, 10);
  EXPECT_TRUE(evaluator_.Evaluate(T(15)).empty());  // first clear: kept firing
  EXPECT_EQ(StateOf(), AlertState::kFiring);
  // 59 s after the first clear: still firing, so re-sent (60 s since the first send).
  auto resent = evaluator_.Evaluate(T(74));
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_FALSE(resent[0].resolved);
  EXPECT_EQ(StateOf(), AlertState::kFiring);

  source_.Set(kCpu, 95);  // a breach in between resets the hold
  evaluator_.Evaluate(T(74.5));
  source_.Set(kCpu, 10);
  evaluator_.Evaluate(T(80));
  for (const auto& n : evaluator_.Evaluate(T(139))) EXPECT_FALSE(n.resolved);
  EXPECT_EQ(StateOf(), AlertState::kFiring);
  EXPECT_EQ(Active()[0].value, 95);  // the last breaching value is kept

  auto notices = evaluator_.Evaluate(T(140));  // 60 s since the clear at 80
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].resolved);
  EXPECT_TRUE(notices[0].transition);
  EXPECT_EQ(FormatRfc3339(notices[0].starts_at), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(notices[0].ends_at), "2026-01-01T00:02:20.000Z");
  EXPECT_TRUE(Active().empty());
}

TEST_F(EvaluatorTest, KeepFiringForDoesNotHoldAPendingAlert) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(60, 600)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  source_.Set(kCpu, 10);
  evaluator_.Evaluate(T(15));
  EXPECT_TRUE(Active().empty());
}

TEST_F(EvaluatorTest, ResolvedAlertStaysListedForRetention) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  source_.Set(kCpu, 50);
  auto notices = evaluator_.Evaluate(T(100));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].resolved);
  EXPECT_EQ(FormatRfc3339(notices[0].ends_at), "2026-01-01T00:01:40.000Z");
  EXPECT_EQ(log_.back(), "alerting: HighCpuUsage firing -> resolved value=90 rule=cpu");

  // Resolved ones are sent once, not again.
  EXPECT_TRUE(evaluator_.Evaluate(T(200)).empty());
  auto resolved = evaluator_.Resolved(T(1000));  // exactly retention later
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(FormatRfc3339(*resolved[0].resolved_at), "2026-01-01T00:01:40.000Z");
  EXPECT_TRUE(evaluator_.Resolved(T(1000.001)).empty());
  evaluator_.Evaluate(T(1001));
  EXPECT_TRUE(evaluator_.Resolved(T(1001)).empty());
}

TEST_F(EvaluatorTest, ANewBreachAfterResolveIsANewInstance) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(30)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  evaluator_.Evaluate(T(30));
  source_.Set(kCpu, 50);
  evaluator_.Evaluate(T(45));
  source_.Set(kCpu, 90);
  EXPECT_TRUE(evaluator_.Evaluate(T(60)).empty());
  EXPECT_EQ(StateOf(), AlertState::kPending);
  EXPECT_EQ(evaluator_.Resolved(T(60)).size(), 1u);
  auto notices = evaluator_.Evaluate(T(90));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(FormatRfc3339(notices[0].starts_at), "2026-01-01T00:01:30.000Z");
}

TEST_F(EvaluatorTest, AbsentMetricNeverFires) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(evaluator_.Evaluate(T(i * 15)).empty());
  EXPECT_TRUE(Active().empty());
  EXPECT_EQ(evaluator_.evaluations(), 10u);
  EXPECT_EQ(evaluator_.failures(), 0u);  // absent is not a failure
  EXPECT_EQ(evaluator_.Rules()[0].last_error, "");
}

TEST_F(EvaluatorTest, AbsentMetricResolvesAFiringAlert) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  source_.Clear(kCpu);
  auto notices = evaluator_.Evaluate(T(15));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].resolved);
}

TEST_F(EvaluatorTest, NaNNeverFiresAndClears) {
  Rule ne = CpuRule(0);
  ne.id = "ne";
  ne.op = config::CompareOp::kNe;  // NaN != 85 is true in IEEE arithmetic; still no breach
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  ASSERT_TRUE(evaluator_.AddRule(ne));
  source_.Set(kCpu, std::numeric_limits<double>::quiet_NaN());
  EXPECT_TRUE(evaluator_.Evaluate(T(0)).empty());
  EXPECT_TRUE(Active().empty());

  source_.Set(kCpu, 90);
  EXPECT_EQ(evaluator_.Evaluate(T(15)).size(), 2u);
  source_.Set(kCpu, std::numeric_limits<double>::quiet_NaN());
  auto notices = evaluator_.Evaluate(T(30));
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_TRUE(notices[0].resolved);
  EXPECT_TRUE(notices[1].resolved);
}

TEST_F(EvaluatorTest, FiringIsResentEveryResendInterval) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  source_.Set(kCpu, 90);
  std::vector<std::pair<int, std::string>> sent;  // (time, endsAt)
  for (int t = 0; t <= 180; t += 15) {
    for (const auto& n : evaluator_.Evaluate(T(t))) {
      sent.emplace_back(t, FormatRfc3339(n.ends_at));
      EXPECT_EQ(n.transition, t == 0);
      EXPECT_EQ(FormatRfc3339(n.starts_at), "2026-01-01T00:00:00.000Z");
    }
  }
  EXPECT_EQ(sent, (std::vector<std::pair<int, std::string>>{{0, "2026-01-01T00:04:00.000Z"},
                                                            {60, "2026-01-01T00:05:00.000Z"},
                                                            {120, "2026-01-01T00:06:00.000Z"},
                                                            {180, "2026-01-01T00:07:00.000Z"}}));
}

TEST_F(EvaluatorTest, PerSeriesInstancesCarryTheirLabels) {
  Rule r;
  r.id = "endpoint_down";
  r.name = "EndpointDown";
  r.metric = r.metric_text = "pokemon_speedrun_upstream_healthy";
  r.op = config::CompareOp::kEq;
  r.threshold = 0;
  r.labels = {{"team", "speedrun"}, {"upstream", "overridden"}};
  r.annotations = {{"summary", "{{ $labels.endpoint }} of {{$labels.upstream}} is down"}};
  ASSERT_TRUE(evaluator_.AddRule(r));
  auto& s = source_.series["pokemon_speedrun_upstream_healthy"];
  s = {Sample{{{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8081"}}, 0},
       Sample{{{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8082"}}, 1},
       Sample{{{"upstream", "emulator-2"}, {"endpoint", "127.0.0.1:8083"}}, 0}};
  auto notices = evaluator_.Evaluate(T(0));
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0].labels, (Labels{{"alertname", "EndpointDown"},
                                       {"endpoint", "127.0.0.1:8081"},
                                       {"rule_id", "endpoint_down"},
                                       {"severity", "warning"},
                                       {"team", "speedrun"},
                                       {"upstream", "overridden"}}));
  EXPECT_EQ(notices[0].annotations.at("summary"), "127.0.0.1:8081 of overridden is down");
  EXPECT_EQ(notices[1].labels.at("endpoint"), "127.0.0.1:8083");
  EXPECT_NE(notices[0].fingerprint, notices[1].fingerprint);
  auto active = Active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].series_labels,
            (Labels{{"endpoint", "127.0.0.1:8081"}, {"upstream", "emulator-1"}}));

  s[0].value = 1;  // 8081 recovers: only its instance resolves
  notices = evaluator_.Evaluate(T(15));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].resolved);
  EXPECT_EQ(notices[0].labels.at("endpoint"), "127.0.0.1:8081");
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].labels.at("endpoint"), "127.0.0.1:8083");
  EXPECT_EQ(log_[0],
            "alerting: EndpointDown{endpoint=\"127.0.0.1:8081\",upstream=\"emulator-1\"} "
            "inactive -> firing value=0 rule=endpoint_down");
}

TEST_F(EvaluatorTest, AggregationsReduceToOneInstanceWithoutSeriesLabels) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  source_.series["m"] = {Sample{{{"a", "1"}}, 2}, Sample{{{"a", "2"}}, 4},
                         Sample{{{"a", "3"}}, nan}, Sample{{{"a", "4"}}, 9}};
  struct Case {
    Aggregation a;
    double expected;
  };
  for (auto [aggregation, expected] :
       {Case{Aggregation::kMax, 9}, Case{Aggregation::kMin, 2}, Case{Aggregation::kSum, 15},
        Case{Aggregation::kAvg, 5}, Case{Aggregation::kCount, 3}}) {
    FakeSource& src = source_;
    Evaluator e(&src, Options());
    Rule r;
    r.id = r.name = AggregationName(aggregation);
    r.metric = r.metric_text = "m";
    r.aggregation = aggregation;
    r.op = config::CompareOp::kGe;
    r.threshold = 0;
    ASSERT_TRUE(e.AddRule(r));
    e.Evaluate(T(0));
    auto active = e.Active();
    ASSERT_EQ(active.size(), 1u) << r.id;
    EXPECT_EQ(active[0].value, expected) << r.id;
    EXPECT_TRUE(active[0].series_labels.empty());
    EXPECT_EQ(active[0].labels.count("a"), 0u);
  }
}

TEST_F(EvaluatorTest, AggregationOverNothingOrOnlyNaNIsAbsent) {
  Rule r = CpuRule(0);
  r.aggregation = Aggregation::kCount;
  r.op = config::CompareOp::kLt;
  r.threshold = 3;
  ASSERT_TRUE(evaluator_.AddRule(r));
  EXPECT_TRUE(evaluator_.Evaluate(T(0)).empty());
  source_.Set(kCpu, std::numeric_limits<double>::quiet_NaN());
  EXPECT_TRUE(evaluator_.Evaluate(T(15)).empty());
  source_.Set(kCpu, 1);
  EXPECT_EQ(evaluator_.Evaluate(T(30)).size(), 1u);  // count 1 < 3
}

TEST_F(EvaluatorTest, MatchersAndScaleApply) {
  Rule r = CpuRule(0);
  r.metric = "pokemon_speedrun_script_compilation_average_seconds";
  r.scale = 1000;
  r.threshold = 150.1;
  r.op = config::CompareOp::kGe;
  r.matchers = {{"pool", "a"}};
  ASSERT_TRUE(evaluator_.AddRule(r));
  source_.series[r.metric] = {Sample{{{"pool", "a"}}, 0.1501}, Sample{{{"pool", "b"}}, 9}};
  evaluator_.Evaluate(T(0));
  auto active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].value, 150.1);  // not 150.10000000000002
  EXPECT_EQ(active[0].labels.at("pool"), "a");
}

TEST_F(EvaluatorTest, UnreadableMetricCountsAFailureAndLogsOnce) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  source_.errors[kCpu] = "metric x is a histogram";
  evaluator_.Evaluate(T(0));
  evaluator_.Evaluate(T(15));
  EXPECT_EQ(evaluator_.failures(), 2u);
  EXPECT_EQ(evaluator_.evaluations(), 2u);
  EXPECT_EQ(evaluator_.Rules()[0].last_error, "metric x is a histogram");
  EXPECT_EQ(log_, (std::vector<std::string>{"alerting: rule cpu: metric x is a histogram"}));
  source_.errors.clear();
  evaluator_.Evaluate(T(30));
  EXPECT_EQ(evaluator_.Rules()[0].last_error, "");
}

TEST_F(EvaluatorTest, TooManySeriesAreCappedAndCounted) {
  Rule r = CpuRule(0);
  ASSERT_TRUE(evaluator_.AddRule(r));
  auto& s = source_.series[kCpu];
  for (int i = 0; i < 1005; ++i) s.push_back(Sample{{{"i", std::to_string(i)}}, 99});
  evaluator_.Evaluate(T(0));
  EXPECT_EQ(Active().size(), Evaluator::kMaxInstancesPerRule);
  EXPECT_EQ(evaluator_.failures(), 1u);
  EXPECT_EQ(evaluator_.Rules()[0].last_error,
            "more than 1000 matching series; the rest are ignored");
}

TEST_F(EvaluatorTest, RemovingARuleResolvesItsFiringAlerts) {
  ASSERT_TRUE(evaluator_.AddRule(CpuRule(0)));
  EXPECT_FALSE(evaluator_.AddRule(CpuRule(5)));  // duplicate id
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  std::vector<AlertNotice> notices;
  EXPECT_FALSE(evaluator_.RemoveRule("nope", T(5), &notices));
  EXPECT_TRUE(evaluator_.RemoveRule("cpu", T(5), &notices));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_TRUE(notices[0].resolved);
  EXPECT_EQ(FormatRfc3339(notices[0].ends_at), "2026-01-01T00:00:05.000Z");
  EXPECT_EQ(evaluator_.rule_count(), 0u);
  EXPECT_EQ(evaluator_.Resolved(T(5)).size(), 1u);
}

TEST_F(EvaluatorTest, ReplaceRulesKeepsUnchangedRulesState) {
  Rule kept = CpuRule(0);
  Rule changed = CpuRule(0);
  changed.id = "cpu2";
  ASSERT_TRUE(evaluator_.AddRule(kept));
  ASSERT_TRUE(evaluator_.AddRule(changed));
  source_.Set(kCpu, 90);
  evaluator_.Evaluate(T(0));
  ASSERT_EQ(Active().size(), 2u);

  changed.threshold = 95;
  kept.origin = RuleOrigin::kConfig;  // origin alone is not a change
  std::vector<AlertNotice> notices;
  evaluator_.ReplaceRules({kept, changed}, T(10), &notices);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].labels.at("rule_id"), "cpu2");
  EXPECT_TRUE(notices[0].resolved);
  auto active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].rule_id, "cpu");
  EXPECT_EQ(FormatRfc3339(*active[0].fired_at), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(evaluator_.FindRule("cpu")->origin, RuleOrigin::kConfig);
}

// Each default rule: at its threshold (or on the safe side of it) nothing fires, however
// long it lasts; just across it, it goes pending and fires exactly at its `for`.
TEST(DefaultRulesTest, EachFiresJustAcrossItsThresholdAndNotAtIt) {
  struct Case {
    const char* id;
    const char* exported;
    double at_threshold;  // exported units
    double just_across;
    double for_seconds;
    const char* value_shown;
  };
  const Case cases[] = {
      {"slow_script_compilation", "pokemon_speedrun_script_compilation_average_seconds", 0.150,
       0.15001, 300, "150.01"},
      {"slow_checkpoint_loading", "pokemon_speedrun_checkpoint_loading_average_seconds", 0.750,
       0.75001, 300, "750.01"},
      {"high_cpu_usage", "pokemon_speedrun_system_cpu_percent", 85.0, 85.01, 120, "85.01"},
      {"high_memory_usage", "pokemon_speedrun_system_memory_percent", 90.0, 90.01, 120, "90.01"},
      {"low_experiment_success_rate", "pokemon_speedrun_experiment_success_rate", 95.0, 94.99, 900,
       "94.99"},
      {"insufficient_healthy_processes", "pokemon_speedrun_healthy_processes", 3, 2, 60, "2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.id);
    Rule rule;
    for (const auto& r : DefaultRules()) {
      if (r.id == c.id) rule = r;
    }
    ASSERT_EQ(rule.id, c.id);
    FakeSource source;
    EvaluatorOptions options;
    options.log = [](const std::string&) {};
    Evaluator e(&source, options);
    ASSERT_TRUE(e.AddRule(rule));
    source.Set(c.exported, c.at_threshold);
    for (int t = 0; t <= 3600; t += 15) ASSERT_TRUE(e.Evaluate(T(t)).empty());
    EXPECT_TRUE(e.Active().empty());

    const double start = 4000;
    source.Set(c.exported, c.just_across);
    EXPECT_TRUE(e.Evaluate(T(start)).empty());
    ASSERT_EQ(e.Active().size(), 1u);
    EXPECT_EQ(e.Active()[0].state, AlertState::kPending);
    EXPECT_TRUE(e.Evaluate(T(start + c.for_seconds - 1)).empty());
    auto notices = e.Evaluate(T(start + c.for_seconds));
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_EQ(FormatValue(e.Active()[0].value), c.value_shown);
    EXPECT_EQ(notices[0].labels.at("alertname"), rule.name);
    EXPECT_EQ(notices[0].labels.at("severity"), config::SeverityName(rule.severity));
    EXPECT_FALSE(notices[0].annotations.at("summary").empty());
    EXPECT_NE(notices[0].annotations.at("description").find(c.value_shown), std::string::npos)
        << notices[0].annotations.at("description");
  }
}

}  // namespace
}  // namespace speedmon::alerting
