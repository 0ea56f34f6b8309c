// CollectablesValueSource against real prometheus-cpp registries. Test thread only.
#include "alerting/value_source.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>

#include <cmath>
#include <limits>

namespace speedmon::alerting {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::BuildSummary;
using prometheus::Registry;

// A custom collectable, as the proxy's merged shards are.
class FixedCollectable : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    ++collects;
    prometheus::MetricFamily f;
    f.name = "custom_untyped";
    f.type = prometheus::MetricType::Untyped;
    prometheus::ClientMetric m;
    m.untyped.value = 7;
    m.label = {{"k", "v"}};
    f.metric.push_back(m);
    return {f};
  }
  mutable int collects = 0;
};

class CollectablesValueSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& gauge = BuildGauge().Name("pokemon_speedrun_upstream_healthy").Register(*registry_);
    gauge.Add({{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8081"}}).Set(1);
    gauge.Add({{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8082"}}).Set(0);
    gauge.Add({{"upstream", "emulator-2"}, {"endpoint", "127.0.0.1:8083"}}).Set(1);
    BuildGauge().Name("pokemon_speedrun_system_cpu_percent").Register(*registry_).Add({}).Set(42.5);
    BuildCounter()
        .Name("pokemon_speedrun_process_failures_total")
        .Register(*registry_)
        .Add({})
        .Increment(3);
    auto& h = BuildHistogram()
                  .Name("pokemon_speedrun_process_startup_seconds")
                  .Register(*registry_)
                  .Add({{"process", "emu"}}, prometheus::Histogram::BucketBoundaries{0.5, 1, 5});
    h.Observe(0.2);
    h.Observe(0.7);
    h.Observe(30);
    auto& s = BuildSummary()
                  .Name("latency_seconds")
                  .Register(*registry_)
                  .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}});
    s.Observe(2);
    source_.Add(registry_);
    source_.Add(custom_);
    source_.BeginRound();
  }

  // The samples of a query that must not fail.
  std::vector<Sample> Q(const std::string& m, std::map<std::string, std::string> matchers = {}) {
    base::StatusOr<std::vector<Sample>> r = source_.Query(m, matchers);
    EXPECT_TRUE(r.ok()) << m << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<Sample>{};
  }

  std::shared_ptr<Registry> registry_ = std::make_shared<Registry>();
  std::shared_ptr<FixedCollectable> custom_ = std::make_shared<FixedCollectable>();
  CollectablesValueSource source_;
};

TEST_F(CollectablesValueSourceTest, GaugeSeriesWithLabelsAndMatchers) {
  auto all = Q("pokemon_speedrun_upstream_healthy");
  ASSERT_EQ(all.size(), 3u);
  auto one = Q("pokemon_speedrun_upstream_healthy", {{"endpoint", "127.0.0.1:8082"}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].value, 0);
  EXPECT_EQ(one[0].labels, (Labels{{"endpoint", "127.0.0.1:8082"}, {"upstream", "emulator-1"}}));
  EXPECT_EQ(Q("pokemon_speedrun_upstream_healthy", {{"upstream", "emulator-2"}}).size(), 1u);
  EXPECT_TRUE(Q("pokemon_speedrun_upstream_healthy", {{"upstream", "emulator-9"}}).empty());
  EXPECT_TRUE(Q("pokemon_speedrun_upstream_healthy", {{"nolabel", "x"}}).empty());
  // An empty matcher value matches a missing label, as in Prometheus.
  EXPECT_EQ(Q("pokemon_speedrun_upstream_healthy", {{"nolabel", ""}}).size(), 3u);
}

TEST_F(CollectablesValueSourceTest, CounterGaugeAndUntyped) {
  auto cpu = Q("pokemon_speedrun_system_cpu_percent");
  ASSERT_EQ(cpu.size(), 1u);
  EXPECT_EQ(cpu[0].value, 42.5);
  EXPECT_TRUE(cpu[0].labels.empty());
  auto failures = Q("pokemon_speedrun_process_failures_total");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].value, 3);
  auto custom = Q("custom_untyped", {{"k", "v"}});
  ASSERT_EQ(custom.size(), 1u);
  EXPECT_EQ(custom[0].value, 7);
}

TEST_F(CollectablesValueSourceTest, HistogramCountSumAndBuckets) {
  const std::string h = "pokemon_speedrun_process_startup_seconds";
  auto count = Q(h + "_count");
  ASSERT_EQ(count.size(), 1u);
  EXPECT_EQ(count[0].value, 3);
  EXPECT_EQ(count[0].labels, (Labels{{"process", "emu"}}));
  auto sum = Q(h + "_sum");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_DOUBLE_EQ(sum[0].value, 30.9);
  auto buckets = Q(h + "_bucket");
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0].labels.at("le"), "0.5");
  EXPECT_EQ(buckets[3].labels.at("le"), "+Inf");
  EXPECT_EQ(buckets[3].value, 3);
  // le is matched as a number: "1", "1.0" and "1e0" are one bucket.
  for (const char* le : {"1", "1.0", "1e0"}) {
    auto b = Q(h + "_bucket", {{"le", le}});
    ASSERT_EQ(b.size(), 1u) << le;
    EXPECT_EQ(b[0].value, 2) << le;
  }
  EXPECT_EQ(Q(h + "_bucket", {{"le", "+Inf"}})[0].value, 3);
  EXPECT_TRUE(Q(h + "_bucket", {{"le", "2"}}).empty());
  EXPECT_TRUE(Q(h + "_bucket", {{"le", "garbage"}}).empty());
}

TEST_F(CollectablesValueSourceTest, BareHistogramNameIsAnError) {
  EXPECT_EQ(source_.Query("pokemon_speedrun_process_startup_seconds", {}).status(),
            base::InvalidArgumentError(
                "metric pokemon_speedrun_process_startup_seconds is a histogram: use "
                "pokemon_speedrun_process_startup_seconds_count, "
                "pokemon_speedrun_process_startup_seconds_sum or "
                "pokemon_speedrun_process_startup_seconds_bucket{le=\"...\"}"));
  EXPECT_TRUE(Q("absent_metric").empty());  // absent is not an error
}

TEST_F(CollectablesValueSourceTest, SummaryQuantilesCountAndSum) {
  auto q = Q("latency_seconds", {{"quantile", "0.50"}});
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].value, 2);
  EXPECT_EQ(q[0].labels.at("quantile"), "0.5");
  EXPECT_EQ(Q("latency_seconds_count")[0].value, 1);
  EXPECT_EQ(Q("latency_seconds_sum")[0].value, 2);
  EXPECT_TRUE(Q("latency_seconds_bucket").empty());
}

TEST_F(CollectablesValueSourceTest, SnapshotPerRoundAndExpiredCollectablesSkipped) {
  EXPECT_EQ(custom_->collects, 1);
  Q("custom_untyped");
  Q("custom_untyped");
  EXPECT_EQ(custom_->collects, 1);  // one collect per round, not per query

  BuildGauge().Name("late_gauge").Register(*registry_).Add({}).Set(1);
  EXPECT_TRUE(Q("late_gauge").empty());  // not in this round's snapshot
  source_.BeginRound();
  EXPECT_EQ(Q("late_gauge").size(), 1u);

  custom_.reset();
  source_.BeginRound();
  EXPECT_TRUE(Q("custom_untyped").empty());
  EXPECT_EQ(Q("late_gauge").size(), 1u);
}

TEST(CollectablesValueSourceNoRoundTest, QueryBeforeAnyRoundCollects) {
  auto registry = std::make_shared<Registry>();
  BuildGauge().Name("g").Register(*registry).Add({}).Set(std::nan(""));
  CollectablesValueSource source({registry});
  base::StatusOr<std::vector<Sample>> g = source.Query("g", {});
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->size(), 1u);
  EXPECT_TRUE(std::isnan((*g)[0].value));
}

TEST(FormatValueTest, ShortestRoundTrip) {
  EXPECT_EQ(FormatValue(85.01), "85.01");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(-2.25), "-2.25");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatValue(1e30), "1e+30");
  EXPECT_EQ(FormatValue(1500000), "1500000");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.00001), "1e-05");
  EXPECT_EQ(FormatValue(90), "90");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

}  // namespace
}  // namespace speedmon::alerting
