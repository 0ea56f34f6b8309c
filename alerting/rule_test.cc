// Rules: JSON validation (exact messages), config rules, defaults, comparisons,
// templates. Test thread only.
#include "alerting/rule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace speedmon::alerting {
namespace {

using nlohmann::json;

constexpr const char* kGood =
    R"({"id":"custom_performance","name":"Custom Performance Alert",)"
    R"("description":"Custom performance threshold exceeded",)"
    R"("metric":"speedrun.average_script_compilation_ms","operator":">","threshold":120.0,)"
    R"("for":"5m","keep_firing_for":"30s","severity":"warning",)"
    R"("labels":{"team":"speedrun"},"annotations":{"summary":"slow","runbook_url":"http://x"}})";

// kGood with one key replaced (or removed when value is nullptr).
std::string With(const std::string& key, const json* value) {
  json j = json::parse(kGood);
  if (value) {
    j[key] = *value;
  } else {
    j.erase(key);
  }
  return j.dump();
}

TEST(RuleFromJsonTest, AcceptsACustomRuleOnADottedName) {
  base::StatusOr<Rule> r = RuleFromJson(kGood);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Rule& rule = *r;
  EXPECT_EQ(rule.id, "custom_performance");
  EXPECT_EQ(rule.name, "Custom Performance Alert");
  EXPECT_EQ(rule.description, "Custom performance threshold exceeded");
  EXPECT_EQ(rule.metric_text, "speedrun.average_script_compilation_ms");
  EXPECT_EQ(rule.metric, "pokemon_speedrun_script_compilation_average_seconds");
  EXPECT_EQ(rule.scale, 1000);
  EXPECT_TRUE(rule.matchers.empty());
  EXPECT_EQ(rule.aggregation, Aggregation::kPerSeries);
  EXPECT_EQ(rule.op, config::CompareOp::kGt);
  EXPECT_EQ(rule.threshold, 120.0);
  EXPECT_EQ(rule.for_duration, std::chrono::minutes(5));
  EXPECT_EQ(rule.keep_firing_for, std::chrono::seconds(30));
  EXPECT_EQ(rule.severity, config::Severity::kWarning);
  EXPECT_EQ(rule.labels, (Labels{{"team", "speedrun"}}));
  EXPECT_EQ(rule.annotations, (Labels{{"runbook_url", "http://x"}, {"summary", "slow"}}));
  EXPECT_EQ(rule.origin, RuleOrigin::kApi);

  EXPECT_EQ(RuleToJson(rule).dump(),
            R"({"aggregation":"none","annotations":{"runbook_url":"http://x","summary":"slow"},)"
            R"("description":"Custom performance threshold exceeded","for":"5m",)"
            R"("id":"custom_performance","keep_firing_for":"30s","labels":{"team":"speedrun"},)"
            R"("metric":"speedrun.average_script_compilation_ms",)"
            R"("name":"Custom Performance Alert","operator":">","origin":"api",)"
            R"("severity":"warning","threshold":120.0})");
}

TEST(RuleFromJsonTest, MinimalRuleGetsDefaults) {
  base::StatusOr<Rule> r = RuleFromJson(
      R"({"id":"up","metric":"pokemon_speedrun_upstream_healthy{upstream=\"emulator-1\"}",)"
      R"("operator":"==","threshold":0,"aggregation":"count"})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->name, "up");
  EXPECT_EQ(r->metric, "pokemon_speedrun_upstream_healthy");
  EXPECT_EQ(r->matchers, (Labels{{"upstream", "emulator-1"}}));
  EXPECT_EQ(r->aggregation, Aggregation::kCount);
  EXPECT_EQ(r->scale, 1);
  EXPECT_EQ(r->for_duration.count(), 0);
  EXPECT_EQ(r->severity, config::Severity::kWarning);
  EXPECT_TRUE(r->labels.empty());
}

TEST(RuleFromJsonTest, RefusesBadRulesWithExactMessages) {
  const json kNull = nullptr;
  const json kNum = 5;
  const json kEmpty = "";
  const json kObj = json::object();
  struct Case {
    std::string body;
    const char* error;
    const char* field;
  };
  auto with = [](const char* key, json v) { return With(key, &v); };
  const Case cases[] = {
      {"", "body is not valid JSON", ""},
      {"{", "body is not valid JSON", ""},
      {"{\"id\":\"a\"} trailing", "body is not valid JSON", ""},
      {"[]", "body must be a JSON object", ""},
      {"\"rule\"", "body must be a JSON object", ""},
      {with("threshhold", 1), "unknown field \"threshhold\"", "threshhold"},
      {With("id", nullptr), "id is required", "id"},
      {With("id", &kNull), "id is required", "id"},
      {With("id", &kNum), "id must be a string", "id"},
      {With("id", &kEmpty), "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -", "id"},
      {with("id", "a/b"), "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -", "id"},
      {with("id", "a b"), "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -", "id"},
      {with("id", std::string(129, 'a')), "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -",
       "id"},
      {With("name", &kNum), "name must be a string", "name"},
      {With("name", &kEmpty), "name must be 1 to 256 characters", "name"},
      {with("name", std::string(257, 'n')), "name must be 1 to 256 characters", "name"},
      {With("description", &kObj), "description must be a string", "description"},
      {with("description", std::string(4097, 'd')), "description is longer than 4096 characters",
       "description"},
      {With("metric", nullptr), "metric is required", "metric"},
      {With("metric", &kNum), "metric must be a string", "metric"},
      {With("metric", &kEmpty), "metric: expected a metric name", "metric"},
      {with("metric", "up{job!=\"x\"}"), "metric: only '=' matchers are supported", "metric"},
      {with("metric", "up{job=x}"), "metric: expected '\"' to start the value of label \"job\"",
       "metric"},
      {with("metric", "up{job=\"x\""), "metric: expected ',' or '}'", "metric"},
      {with("metric", "system.cpu"),
       "unknown dotted metric name \"system.cpu\"; use an exported metric name or a dotted "
       "name listed in docs/API.md (e.g. system.cpu_percent)",
       "metric"},
      {with("aggregation", "median"), "aggregation must be one of max, min, sum, avg, count",
       "aggregation"},
      {With("operator", nullptr), "operator is required", "operator"},
      {with("operator", "=>"),
       "operator must be one of > < >= <= == != (or gt, lt, ge, le, eq, ne)", "operator"},
      {with("operator", "bigger"),
       "operator must be one of > < >= <= == != (or gt, lt, ge, le, eq, ne)", "operator"},
      {With("threshold", nullptr), "threshold is required", "threshold"},
      {with("threshold", "85"), "threshold must be a number", "threshold"},
      {with("threshold", true), "threshold must be a number", "threshold"},
      // JSON has no infinity; an overflowing literal is refused by the parser itself.
      {std::string(kGood).replace(std::string(kGood).find("120.0"), 5, "1e999"),
       "body is not valid JSON", ""},
      {with("for", "5"), "for must be a duration such as \"5m\"", "for"},
      {with("for", "-5m"), "for must be a duration such as \"5m\"", "for"},
      {with("for", 300), "for must be a duration such as \"5m\"", "for"},
      {with("keep_firing_for", "soon"), "keep_firing_for must be a duration such as \"5m\"",
       "keep_firing_for"},
      {with("severity", "page"), "severity must be one of info, warning, critical", "severity"},
      {with("severity", 2), "severity must be a string", "severity"},
      {with("labels", "team=x"), "labels must be an object of strings", "labels"},
      {with("labels", json{{"team", 1}}), "labels must be an object of strings", "labels"},
      {with("labels", json{{"1team", "x"}}), "invalid label name \"1team\"", "labels"},
      {with("labels", json{{"alertname", "x"}}), "label \"alertname\" is set by the rule itself",
       "labels"},
      {with("labels", json{{"severity", "x"}}), "label \"severity\" is set by the rule itself",
       "labels"},
      {with("annotations", json::array()), "annotations must be an object of strings",
       "annotations"},
      {with("annotations", json{{"bad-name", "x"}}), "invalid annotation name \"bad-name\"",
       "annotations"},
  };
  for (const auto& c : cases) {
    base::StatusOr<Rule> r = RuleFromJson(c.body);
    EXPECT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().message(), c.error) << c.body;
    EXPECT_EQ(r.status().field(), c.field) << c.body;
  }
}

// The Python AlertRule as dataclasses.asdict() gives it, with an operator name.
TEST(RuleFromJsonTest, AcceptsThePythonFieldNames) {
  base::StatusOr<Rule> r = RuleFromJson(
      R"({"rule_id":"custom_performance","name":"Custom Performance Alert",)"
      R"("description":"Custom performance threshold exceeded",)"
      R"("metric_name":"speedrun.average_pattern_quality","threshold_value":0.7,)"
      R"("operator":"LESS_THAN","severity":"CRITICAL","evaluation_window_seconds":300.0,)"
      R"("minimum_duration_seconds":90.5,"suppression_window_seconds":3600.0,"enabled":true})");
  ASSERT_TRUE(r.ok()) << r.status().message() << " " << r.status().field();
  EXPECT_EQ(r->id, "custom_performance");
  EXPECT_EQ(r->metric_text, "speedrun.average_pattern_quality");
  EXPECT_EQ(r->metric, "pokemon_speedrun_pattern_quality_average");
  EXPECT_EQ(r->threshold, 0.7);
  EXPECT_EQ(r->op, config::CompareOp::kLt);
  EXPECT_EQ(r->severity, config::Severity::kCritical);
  EXPECT_EQ(r->for_duration, std::chrono::milliseconds(90500));
  EXPECT_EQ(RuleToJson(*r)["for"], "1m30s500ms");

  struct Op {
    const char* text;
    config::CompareOp op;
  };
  for (Op o : {Op{"gt", config::CompareOp::kGt}, Op{"greater_than", config::CompareOp::kGt},
               Op{"lte", config::CompareOp::kLe}, Op{"GE", config::CompareOp::kGe},
               Op{"not_equal", config::CompareOp::kNe}, Op{"eq", config::CompareOp::kEq},
               Op{"<=", config::CompareOp::kLe}}) {
    json op = o.text;
    base::StatusOr<Rule> rule = RuleFromJson(With("operator", &op));
    ASSERT_TRUE(rule.ok()) << o.text;
    EXPECT_EQ(rule->op, o.op) << o.text;
  }
}

TEST(RuleFromJsonTest, RefusesBadPythonFields) {
  struct Case {
    const char* body;
    const char* error;
    const char* field;
  };
  const Case cases[] = {
      {R"({"id":"a","rule_id":"a","metric":"m","operator":">","threshold":1})",
       "give id or rule_id, not both", "rule_id"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"threshold_value":2})",
       "give threshold or threshold_value, not both", "threshold_value"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"minimum_duration_seconds":-1})",
       "minimum_duration_seconds must be a number of seconds from 0 to one year",
       "minimum_duration_seconds"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"minimum_duration_seconds":"5m"})",
       "minimum_duration_seconds must be a number of seconds from 0 to one year",
       "minimum_duration_seconds"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"enabled":false})",
       "a disabled rule is not kept; delete the rule instead", "enabled"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"enabled":"yes"})",
       "enabled must be true or false", "enabled"},
      {R"({"id":"a","metric":"m","operator":">","threshold":1,"evaluation_window_seconds":"x"})",
       "evaluation_window_seconds must be a number >= 0", "evaluation_window_seconds"},
      {R"({"id":"a","metric":"m","operator":"bigger","threshold":1})",
       "operator must be one of > < >= <= == != (or gt, lt, ge, le, eq, ne)", "operator"},
      {R"({"rule_id":"a","metric_name":"system.disk_free","operator":">","threshold_value":1})",
       "unknown dotted metric name \"system.disk_free\"; use an exported metric name or a "
       "dotted name listed in docs/API.md (e.g. system.cpu_percent)",
       "metric"},
  };
  for (const Case& c : cases) {
    base::StatusOr<Rule> r = RuleFromJson(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().message(), c.error) << c.body;
    EXPECT_EQ(r.status().field(), c.field) << c.body;
  }
}

// Every dotted name builds a rule on its exported metric; counters are summed.
TEST(RuleFromJsonTest, EveryDottedNameIsARuleMetric) {
  for (const config::DottedMetric& d : config::DottedMetrics()) {
    json metric = d.dotted;
    base::StatusOr<Rule> r = RuleFromJson(With("metric", &metric));
    ASSERT_TRUE(r.ok()) << d.dotted << ": " << r.status().message();
    EXPECT_EQ(r->metric, d.exported);
    EXPECT_EQ(r->aggregation, *ParseAggregation(d.aggregation)) << d.dotted;
  }
  json metric = "speedrun.total_experiments";
  base::StatusOr<Rule> r = RuleFromJson(With("metric", &metric));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->aggregation, Aggregation::kSum);
  EXPECT_EQ(RuleToJson(*r)["aggregation"], "sum");
  json disk = "system.disk_percent";
  r = RuleFromJson(With("metric", &disk));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->metric, "pokemon_speedrun_system_disk_percent");
  EXPECT_EQ(r->aggregation, Aggregation::kPerSeries);
}

TEST(RuleFromJsonTest, BoundsOnLabelCounts) {
  json labels = json::object();
  for (int i = 0; i < 33; ++i) labels["l" + std::to_string(i)] = "v";
  base::StatusOr<Rule> r = RuleFromJson(With("labels", &labels));
  EXPECT_EQ(r.status().message(), "at most 32 labels");
  EXPECT_EQ(r.status().field(), "labels");
  r = RuleFromJson(With("annotations", &labels));
  EXPECT_EQ(r.status().message(), "at most 32 annotations");
}

TEST(RuleFromConfigTest, BuildsAndChecksWhatOnlyAlertingKnows) {
  config::AlertRuleConfig c;
  c.id = "endpoint_down";
  c.name = "EndpointDown";
  c.metric = "pokemon_speedrun_upstream_healthy";
  c.match_labels = {{"upstream", "emulator-1"}, {"endpoint", "a\"b"}};
  c.aggregation = "min";
  c.op = config::CompareOp::kEq;
  c.threshold = 0;
  c.for_duration = std::chrono::seconds(30);
  c.severity = config::Severity::kCritical;
  base::StatusOr<Rule> r = RuleFromConfig(c, RuleOrigin::kConfig);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->metric_text,
            "pokemon_speedrun_upstream_healthy{endpoint=\"a\\\"b\",upstream=\"emulator-1\"}");
  EXPECT_EQ(r->aggregation, Aggregation::kMin);
  EXPECT_EQ(r->origin, RuleOrigin::kConfig);

  c.aggregation = "";
  EXPECT_EQ(RuleFromConfig(c, RuleOrigin::kConfig)->aggregation, Aggregation::kPerSeries);
  c.aggregation = "none";
  EXPECT_EQ(RuleFromConfig(c, RuleOrigin::kConfig)->aggregation, Aggregation::kPerSeries);

  c.metric = "system.disk_free";
  r = RuleFromConfig(c, RuleOrigin::kConfig);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "metric");

  c.metric = "system.memory_percent";
  c.labels = {{"rule_id", "x"}};
  r = RuleFromConfig(c, RuleOrigin::kConfig);
  EXPECT_EQ(r.status().message(), "label \"rule_id\" is set by the rule itself");
}

TEST(DefaultRulesTest, TheSixDefaultRules) {
  auto rules = DefaultRules();
  ASSERT_EQ(rules.size(), 6u);
  struct Expect {
    const char* id;
    const char* name;
    const char* metric;
    double scale;
    const char* op;
    double threshold;
    const char* for_text;
    const char* severity;
  };
  const Expect expected[] = {
      {"slow_script_compilation", "SlowScriptCompilation",
       "pokemon_speedrun_script_compilation_average_seconds", 1000, ">", 150, "5m", "warning"},
      {"slow_checkpoint_loading", "SlowCheckpointLoading",
       "pokemon_speedrun_checkpoint_loading_average_seconds", 1000, ">", 750, "5m", "warning"},
      {"high_cpu_usage", "HighCpuUsage", "pokemon_speedrun_system_cpu_percent", 1, ">", 85, "2m",
       "critical"},
      {"high_memory_usage", "HighMemoryUsage", "pokemon_speedrun_system_memory_percent", 1, ">", 90,
       "2m", "critical"},
      {"low_experiment_success_rate", "LowExperimentSuccessRate",
       "pokemon_speedrun_experiment_success_rate", 1, "<", 95, "15m", "critical"},
      {"insufficient_healthy_processes", "InsufficientHealthyProcesses",
       "pokemon_speedrun_healthy_processes", 1, "<", 3, "1m", "critical"},
  };
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    const Expect& e = expected[i];
    EXPECT_EQ(r.id, e.id);
    EXPECT_EQ(r.name, e.name);
    EXPECT_EQ(r.metric, e.metric);
    EXPECT_EQ(r.scale, e.scale);
    EXPECT_STREQ(config::CompareOpName(r.op), e.op);
    EXPECT_EQ(r.threshold, e.threshold);
    EXPECT_EQ(config::FormatDuration(r.for_duration), e.for_text);
    EXPECT_STREQ(config::SeverityName(r.severity), e.severity);
    EXPECT_EQ(r.aggregation, Aggregation::kPerSeries);
    EXPECT_EQ(r.origin, RuleOrigin::kDefault);
    EXPECT_EQ(r.annotations.count("summary"), 1u);
    EXPECT_EQ(r.annotations.count("description"), 1u);
  }
  EXPECT_EQ(ExpandTemplate(rules[2].annotations.at("description"), 91.5, 85, {}),
            "CPU usage is 91.5%, above 85% for 2 minutes.");
}

TEST(BreachesTest, OperatorsAtAndAroundTheThreshold) {
  using config::CompareOp;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(Breaches(CompareOp::kGt, 85.0, 85));
  EXPECT_TRUE(Breaches(CompareOp::kGt, 85.01, 85));
  EXPECT_FALSE(Breaches(CompareOp::kLt, 95.0, 95));
  EXPECT_TRUE(Breaches(CompareOp::kLt, 94.99, 95));
  EXPECT_TRUE(Breaches(CompareOp::kGe, 85, 85));
  EXPECT_FALSE(Breaches(CompareOp::kGe, 84.99, 85));
  EXPECT_TRUE(Breaches(CompareOp::kLe, 85, 85));
  EXPECT_FALSE(Breaches(CompareOp::kLe, 85.01, 85));
  EXPECT_TRUE(Breaches(CompareOp::kEq, 0, 0));
  EXPECT_FALSE(Breaches(CompareOp::kEq, 1, 0));
  EXPECT_TRUE(Breaches(CompareOp::kNe, 1, 0));
  EXPECT_FALSE(Breaches(CompareOp::kNe, 0, 0));
  for (auto op : {CompareOp::kGt, CompareOp::kLt, CompareOp::kGe, CompareOp::kLe, CompareOp::kEq,
                  CompareOp::kNe}) {
    EXPECT_FALSE(Breaches(op, nan, 0));
  }
  EXPECT_TRUE(Breaches(CompareOp::kGt, std::numeric_limits<double>::infinity(), 1e308));
}

TEST(ExpandTemplateTest, ValueThresholdAndLabels) {
  Labels labels{{"endpoint", "127.0.0.1:8081"}};
  EXPECT_EQ(
      ExpandTemplate("{{ $value }} > {{$threshold}} on {{ $labels.endpoint }}", 0.5, 0.25, labels),
      "0.5 > 0.25 on 127.0.0.1:8081");
  EXPECT_EQ(ExpandTemplate("{{ $labels.missing }}|", 1, 1, labels), "|");
  EXPECT_EQ(ExpandTemplate("{{ .Value }} {{ $value", 1, 1, labels), "{{ .Value }} {{ $value");
  EXPECT_EQ(ExpandTemplate("no templates", 1, 1, labels), "no templates");
  EXPECT_EQ(ExpandTemplate("", 1, 1, labels), "");
  EXPECT_EQ(ExpandTemplate("{{$value}}{{$value}}", 1e30, 1, labels),
            "1e+30"
            "1e+30");
}

TEST(AggregationTest, NamesRoundTrip) {
  for (auto a : {Aggregation::kPerSeries, Aggregation::kMax, Aggregation::kMin, Aggregation::kSum,
                 Aggregation::kAvg, Aggregation::kCount}) {
    EXPECT_EQ(ParseAggregation(AggregationName(a)), a);
  }
  EXPECT_EQ(ParseAggregation(""), Aggregation::kPerSeries);
  EXPECT_FALSE(ParseAggregation("MAX").has_value());
  EXPECT_FALSE(ParseAggregation("p99").has_value());
}

TEST(RuleTest, SameDefinitionIgnoresOriginOnly) {
  Rule a = DefaultRules()[0];
  Rule b = a;
  b.origin = RuleOrigin::kApi;
  EXPECT_TRUE(a.SameDefinition(b));
  b.threshold += 1;
  EXPECT_FALSE(a.SameDefinition(b));
  b = a;
  b.annotations["x"] = "y";
  EXPECT_FALSE(a.SameDefinition(b));
}

}  // namespace
}  // namespace speedmon::alerting
