#include "metrics/timeseries.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "base/json.h"

namespace speedmon::metrics {
namespace {

StatsLayout Layout() {
  StatsLayout l;
  l.upstreams = {"emu-1", "emu-2"};
  l.endpoints = {{"127.0.0.1:8081"}, {"127.0.0.1:8082"}};
  l.routes = {"action", "status", "other"};
  return l;
}

constexpr uint64_t kMs = 1000000;  // nanoseconds

// Two workers writing their own shards, read through the collector as the sampler does.
class TimeseriesTest : public ::testing::Test {
 protected:
  TimeseriesTest() : w1_(Layout()), w2_(Layout()), stats_(Layout(), {&w1_, &w2_}) {}

  TimeseriesReading Read(double at) {
    TimeseriesReading r;
    r.unix_seconds = 1700000000 + at;
    r.monotonic_seconds = 100 + at;
    r.upstreams = stats_.Totals();
    return r;
  }

  WorkerStats w1_, w2_;
  RequestStatsCollector stats_;
};

TEST_F(TimeseriesTest, TotalsSumRoutesAndWorkersAndCountTwoAndThreeHundredsAsSuccess) {
  w1_.RecordRequest(0, 0, Method::kPost, 200, 1 * kMs, 10, 20);
  w1_.RecordRequest(0, 1, Method::kGet, 304, 1 * kMs, 0, 0);
  w2_.RecordRequest(0, 2, Method::kGet, 404, 1 * kMs, 0, 0);    // not a success
  w2_.RecordRequest(0, 0, Method::kOther, 299, 1 * kMs, 0, 0);  // the 2xx class
  w2_.RecordRequest(0, 0, Method::kPost, 503, 1 * kMs, 0, 0);
  w1_.RecordRequest(1, 0, Method::kPost, 500, 1 * kMs, 0, 0);
  std::vector<UpstreamTotals> t = stats_.Totals();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].requests, 5u);
  EXPECT_EQ(t[0].successes, 3u);
  EXPECT_EQ(t[0].errors5xx, 1u);
  EXPECT_EQ(t[0].fine[FineBucket(1000)], 5u);
  EXPECT_EQ(t[1].requests, 1u);
  EXPECT_EQ(t[1].successes, 0u);
  EXPECT_EQ(t[1].errors5xx, 1u);
}

TEST_F(TimeseriesTest, PointsAreTheDifferencesBetweenReadings) {
  TimeseriesRing ring({"emu-1", "emu-2"}, 180, 5.0);
  // Before the baseline: not in any point.
  for (int i = 0; i < 7; ++i) w1_.RecordRequest(0, 0, Method::kPost, 200, 50 * kMs, 0, 0);
  TimeseriesReading base = Read(0);
  base.experiments = 40;  // the store's totals survive restarts: only differences count
  base.experiment_successes = 30;
  ring.Add(base);
  EXPECT_EQ(ring.size(), 0u);

  // Interval 1 (5 s): emu-1 gets 19 fast 200s and one slow 502; emu-2 nothing.
  for (int i = 0; i < 19; ++i) w2_.RecordRequest(0, 1, Method::kGet, 200, 1 * kMs, 0, 0);
  w1_.RecordRequest(0, 0, Method::kPost, 502, 300 * kMs, 0, 0);
  TimeseriesReading r1 = Read(5);
  r1.experiments = 44;
  r1.experiment_successes = 33;
  r1.experiment_success_rate = 75.0;
  r1.cpu_percent = 12.5;
  r1.memory_percent = 40.25;
  ring.Add(r1);

  // Interval 2 (4 s, a late timer): emu-1 20 requests, the 20th at 300 ms; emu-2 one 404.
  for (int i = 0; i < 18; ++i) w1_.RecordRequest(0, 0, Method::kPost, 200, 2 * kMs, 0, 0);
  w2_.RecordRequest(0, 0, Method::kPost, 302, 300 * kMs, 0, 0);
  w2_.RecordRequest(0, 0, Method::kPost, 500, 300 * kMs, 0, 0);
  w1_.RecordRequest(1, 2, Method::kGet, 404, 3 * kMs, 0, 0);
  TimeseriesReading r2 = Read(9);
  r2.experiments = 44;
  r2.experiment_successes = 33;
  ring.Add(r2);

  ASSERT_EQ(ring.size(), 2u);
  const TimeseriesPoint& p1 = ring.at(0);
  EXPECT_EQ(p1.time, 1700000005.0);
  EXPECT_EQ(p1.seconds, 5.0);
  EXPECT_EQ(p1.upstreams[0].requests, 20u);
  EXPECT_EQ(p1.upstreams[0].successes, 19u);
  EXPECT_EQ(p1.upstreams[0].errors5xx, 1u);
  // Rank ceil(0.95 * 20) = 19 is the 19th fastest: 1 ms, reported as its bucket's
  // midpoint (992 us); the 50 ms requests before the baseline do not count.
  EXPECT_EQ(p1.upstreams[0].p95_ms, 0.992);
  EXPECT_EQ(p1.upstreams[1].requests, 0u);
  EXPECT_TRUE(std::isnan(p1.upstreams[1].p95_ms));
  EXPECT_EQ(p1.experiments, 4u);
  EXPECT_EQ(p1.experiment_successes, 3u);
  EXPECT_EQ(p1.experiment_success_rate, 75.0);
  EXPECT_EQ(p1.cpu_percent, 12.5);
  EXPECT_EQ(p1.memory_percent, 40.25);

  const TimeseriesPoint& p2 = ring.at(1);
  EXPECT_EQ(p2.seconds, 4.0);
  EXPECT_EQ(p2.upstreams[0].requests, 20u);
  EXPECT_EQ(p2.upstreams[0].successes, 19u);  // 18 x 200 and the 302
  EXPECT_EQ(p2.upstreams[0].errors5xx, 1u);
  // The 19th of 20 is the first 300 ms request: bucket [294912, 327680) us.
  EXPECT_EQ(p2.upstreams[0].p95_ms,
            static_cast<double>(FineBucketMidpoint(FineBucket(300000))) / 1000);
  EXPECT_EQ(p2.upstreams[0].p95_ms, 311.296);
  EXPECT_EQ(p2.upstreams[1].requests, 1u);
  EXPECT_EQ(p2.upstreams[1].successes, 0u);
  EXPECT_EQ(p2.upstreams[1].p95_ms, 2.944);  // one sample: it is its own p95
  EXPECT_EQ(p2.experiments, 0u);
  EXPECT_TRUE(std::isnan(p2.experiment_success_rate));

  nlohmann::json j = nlohmann::json::parse(base::ToJson(ring.ToJson()));
  EXPECT_EQ(j, nlohmann::json::parse(R"({
    "interval_seconds": 5.0, "capacity": 180,
    "time": [1700000005.0, 1700000009.0], "seconds": [5.0, 4.0],
    "upstreams": [
      {"name": "emu-1", "requests": [20, 20], "requests_per_second": [4.0, 5.0],
       "successes": [19, 19], "success_percent": [95.0, 95.0], "errors_5xx": [1, 1], "p95_ms": [0.992, 311.296]},
      {"name": "emu-2", "requests": [0, 1], "requests_per_second": [0.0, 0.25],
       "successes": [0, 0], "success_percent": [null, 0.0], "errors_5xx": [0, 0], "p95_ms": [null, 2.944]}],
    "experiments": [4, 0], "experiment_successes": [3, 0],
    "experiment_success_rate": [75.0, null],
    "cpu_percent": [12.5, null], "memory_percent": [40.25, null]})"));
}

TEST_F(TimeseriesTest, KeepsTheNewestCapacityPointsOldestFirst) {
  TimeseriesRing ring({"emu-1", "emu-2"}, 3, 1.0);
  ring.Add(Read(0));
  for (int i = 1; i <= 5; ++i) {
    for (int n = 0; n < i; ++n) w1_.RecordRequest(0, 0, Method::kGet, 200, kMs, 0, 0);
    ring.Add(Read(i));
    EXPECT_EQ(ring.size(), static_cast<size_t>(std::min(i, 3)));
  }
  ASSERT_EQ(ring.capacity(), 3u);
  EXPECT_EQ(ring.at(0).upstreams[0].requests, 3u);
  EXPECT_EQ(ring.at(1).upstreams[0].requests, 4u);
  EXPECT_EQ(ring.at(2).upstreams[0].requests, 5u);
  EXPECT_EQ(ring.at(2).time, 1700000005.0);
  nlohmann::json j = ring.ToJson();
  EXPECT_EQ(j["upstreams"][0]["requests"], nlohmann::json({3, 4, 5}));
  EXPECT_EQ(j["time"].size(), 3u);
}

TEST_F(TimeseriesTest, ACounterThatWentDownCountsZeroAndAForeignReadingIsIgnored) {
  TimeseriesRing ring({"emu-1", "emu-2"}, 10, 5.0);
  TimeseriesReading a = Read(0);
  a.experiments = 10;
  ring.Add(a);
  TimeseriesReading b = Read(5);
  b.experiments = 4;
  ring.Add(b);
  ASSERT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.at(0).experiments, 0u);
  TimeseriesReading foreign = Read(10);
  foreign.upstreams.pop_back();
  ring.Add(foreign);
  EXPECT_EQ(ring.size(), 1u);
  // The next interval is measured from the last reading the ring took.
  b = Read(12);
  b.experiments = 6;
  ring.Add(b);
  ASSERT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring.at(1).seconds, 7.0);
  EXPECT_EQ(ring.at(1).experiments, 2u);
}

TEST(TimeseriesEmptyTest, NoPointsIsEmptyArrays) {
  TimeseriesRing ring({}, 180, 5.0);
  EXPECT_EQ(base::ToJson(ring.ToJson()),
            R"({"capacity":180,"cpu_percent":[],"experiment_success_rate":[],)"
            R"("experiment_successes":[],"experiments":[],"interval_seconds":5.0,)"
            R"("memory_percent":[],"seconds":[],"time":[],"upstreams":[]})");
}

}  // namespace
}  // namespace speedmon::metrics
