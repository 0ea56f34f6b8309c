#include "metrics/request_stats.h"

#include <gtest/gtest.h>

#include <map>

namespace speedmon::metrics {
namespace {

StatsLayout TwoUpstreams() {
  StatsLayout l;
  l.upstreams = {"emu-1", "emu-2"};
  l.endpoints = {{"127.0.0.1:8081"}, {"127.0.0.1:8082", "127.0.0.1:8083"}};
  l.routes = {"action", "status", "other"};
  return l;
}

// (family, sorted labels) -> value, for counters and gauges.
std::map<std::string, double> Flatten(const std::vector<prometheus::MetricFamily>& fams) {
  std::map<std::string, double> out;
  for (const auto& f : fams) {
    for (const auto& m : f.metric) {
      std::string key = f.name + "{";
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      key += "}";
      if (f.type == prometheus::MetricType::Counter) out[key] = m.counter.value;
      if (f.type == prometheus::MetricType::Gauge) out[key] = m.gauge.value;
      if (f.type == prometheus::MetricType::Histogram) {
        out[key + "count"] = static_cast<double>(m.histogram.sample_count);
        out[key + "sum"] = m.histogram.sample_sum;
        for (const auto& b : m.histogram.bucket) {
          out[key + "le=" + std::to_string(b.upper_bound)] =
              static_cast<double>(b.cumulative_count);
        }
      }
    }
  }
  return out;
}

TEST(MethodTest, StandardAndOther) {
  EXPECT_EQ(MethodFromString("GET"), Method::kGet);
  EXPECT_EQ(MethodFromString("TRACE"), Method::kTrace);
  EXPECT_EQ(MethodFromString("get"), Method::kOther);  // methods are case-sensitive
  EXPECT_EQ(MethodFromString("PROPFIND"), Method::kOther);
  EXPECT_EQ(MethodFromString(""), Method::kOther);
  EXPECT_STREQ(MethodName(Method::kOther), "other");
}

TEST(CodeTest, KnownCodesExactOthersByClass) {
  EXPECT_EQ(CodeLabel(CodeIndex(200)), "200");
  EXPECT_EQ(CodeLabel(CodeIndex(503)), "503");
  EXPECT_EQ(CodeLabel(CodeIndex(499)), "499");
  EXPECT_EQ(CodeLabel(CodeIndex(299)), "2xx");
  EXPECT_EQ(CodeLabel(CodeIndex(418)), "4xx");
  EXPECT_EQ(CodeLabel(CodeIndex(599)), "5xx");
  EXPECT_EQ(CodeLabel(CodeIndex(150)), "1xx");
  EXPECT_EQ(CodeLabel(CodeIndex(42)), "5xx");  // nonsense folds into 5xx
  EXPECT_EQ(CodeLabel(CodeIndex(-1)), "5xx");
  EXPECT_EQ(CodeLabel(CodeIndex(1000)), "5xx");
}

TEST(FineBucketTest, MidpointWithinSixPercent) {
  for (uint64_t us : {0ull, 1ull, 15ull, 16ull, 17ull, 100ull, 999ull, 1000ull, 12345ull,
                      1000000ull, 123456789ull}) {
    int b = FineBucket(us);
    ASSERT_GE(b, 0);
    ASSERT_LT(b, kFineBuckets);
    double mid = static_cast<double>(FineBucketMidpoint(b));
    if (us < 16) {
      EXPECT_EQ(mid, static_cast<double>(us));
    } else {
      EXPECT_NEAR(mid, static_cast<double>(us), static_cast<double>(us) * 0.0625) << us;
    }
  }
  EXPECT_EQ(FineBucket(uint64_t{1} << 40), kFineBuckets - 1);  // clamps, never overflows
}

TEST(WorkerStatsTest, MergesWorkersExactly) {
  StatsLayout layout = TwoUpstreams();
  WorkerStats w1(layout), w2(layout);
  w1.RecordRequest(0, 0, Method::kPost, 200, 2'000'000, 10, 100);     // 2 ms
  w2.RecordRequest(0, 0, Method::kPost, 200, 4'000'000, 20, 200);     // 4 ms
  w2.RecordRequest(0, 2, Method::kGet, 404, 300'000, 0, 5);           // 0.3 ms
  w1.RecordRequest(1, 1, Method::kOther, 503, 50'000'000'000, 0, 0);  // 50 s
  w1.RecordUpstreamError(1, 1, UpstreamErrorKind::kConnect);
  w2.RecordUpstreamError(1, 1, UpstreamErrorKind::kConnect);
  w2.InFlightAdd(0, 1);
  RequestStatsCollector c(layout, {&w1, &w2});
  auto m = Flatten(c.Collect());
  EXPECT_EQ(
      m["pokemon_speedrun_http_requests_total{code=200,method=POST,route=action,upstream=emu-1,}"],
      2);
  EXPECT_EQ(
      m["pokemon_speedrun_http_requests_total{code=404,method=GET,route=other,upstream=emu-1,}"],
      1);
  EXPECT_EQ(
      m["pokemon_speedrun_http_requests_total{code=503,method=other,route=status,upstream=emu-2,}"],
      1);
  EXPECT_EQ(
      m.count(
          "pokemon_speedrun_http_requests_total{code=200,method=GET,route=action,upstream=emu-1,}"),
      0u);
  const std::string h =
      "pokemon_speedrun_http_request_duration_seconds{route=action,upstream=emu-1,}";
  EXPECT_EQ(m[h + "count"], 2);
  EXPECT_DOUBLE_EQ(m[h + "sum"], 0.006);
  EXPECT_EQ(m[h + "le=" + std::to_string(0.001)], 0);
  EXPECT_EQ(m[h + "le=" + std::to_string(0.0025)], 1);
  EXPECT_EQ(m[h + "le=" + std::to_string(0.005)], 2);
  const std::string slow =
      "pokemon_speedrun_http_request_duration_seconds{route=status,upstream=emu-2,}";
  EXPECT_EQ(m[slow + "le=" + std::to_string(30.0)], 0);  // 50 s lands in +Inf only
  EXPECT_EQ(m[slow + "count"], 1);
  EXPECT_EQ(m["pokemon_speedrun_http_request_bytes_total{route=action,upstream=emu-1,}"], 30);
  EXPECT_EQ(m["pokemon_speedrun_http_response_bytes_total{route=action,upstream=emu-1,}"], 300);
  EXPECT_EQ(m["pokemon_speedrun_upstream_errors_total{endpoint=127.0.0.1:8083,kind=connect,"
              "upstream=emu-2,}"],
            2);
  EXPECT_EQ(m["pokemon_speedrun_http_requests_in_flight{upstream=emu-1,}"], 1);
  EXPECT_EQ(m["pokemon_speedrun_http_requests_in_flight{upstream=emu-2,}"], 0);
}

TEST(WorkerStatsTest, SummariesPercentilesAndExtremes) {
  StatsLayout layout = TwoUpstreams();
  WorkerStats w(layout);
  // 1..100 ms: p50 = 50 ms, p95 = 95 ms, p99 = 99 ms (nearest rank), within bucket width.
  for (int i = 1; i <= 100; ++i) {
    w.RecordRequest(0, 0, Method::kPost, i == 100 ? 500 : 200, uint64_t(i) * 1'000'000, 0, 0);
  }
  RequestStatsCollector c(layout, {&w});
  auto s = c.Summaries();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].requests, 100u);
  EXPECT_EQ(s[0].errors5xx, 1u);
  EXPECT_EQ(s[0].successes, 99u);
  EXPECT_DOUBLE_EQ(s[0].min_ms, 1.0);
  EXPECT_DOUBLE_EQ(s[0].max_ms, 100.0);
  EXPECT_DOUBLE_EQ(s[0].avg_ms, 50.5);
  EXPECT_NEAR(s[0].p50_ms, 50, 50 * 0.0625);
  EXPECT_NEAR(s[0].p95_ms, 95, 95 * 0.0625);
  EXPECT_NEAR(s[0].p99_ms, 99, 99 * 0.0625);
  EXPECT_LE(s[0].p99_ms, 100.0);
}

// Success is 2xx and 3xx only: a 404 or a 1xx is not one, a 304 is.
TEST(WorkerStatsTest, SuccessIsTwoAndThreeHundreds) {
  StatsLayout layout = TwoUpstreams();
  WorkerStats w(layout);
  for (int status : {200, 204, 301, 304, 399, 404, 404, 101, 500, 503, 199}) {
    w.RecordRequest(0, 0, Method::kGet, status, 1'000'000, 0, 0);
  }
  RequestStatsCollector c(layout, {&w});
  auto s = c.Summaries();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].requests, 11u);
  EXPECT_EQ(s[0].successes, 5u);
  EXPECT_EQ(s[0].errors5xx, 2u);
  EXPECT_DOUBLE_EQ(s[0].success_percent(), 500.0 / 11);
}

// Before any traffic: every upstream x route histogram and byte counter, and every
// upstream x endpoint x kind error counter, is exported at 0; requests_total, whose
// method and code come from traffic, is not.
TEST(WorkerStatsTest, KnownSeriesExistFromTheStartAtZero) {
  StatsLayout layout = TwoUpstreams();
  WorkerStats w(layout);
  RequestStatsCollector c(layout, {&w});
  auto m = Flatten(c.Collect());
  int histograms = 0, request_bytes = 0, response_bytes = 0, errors = 0, requests = 0;
  for (const auto& [key, value] : m) {
    EXPECT_EQ(value, 0) << key;
    auto starts = [&](const char* prefix) { return key.rfind(prefix, 0) == 0; };
    if (starts("pokemon_speedrun_http_request_duration_seconds{") &&
        key.substr(key.size() - 6) == "}count") {
      ++histograms;
    }
    request_bytes += starts("pokemon_speedrun_http_request_bytes_total{");
    response_bytes += starts("pokemon_speedrun_http_response_bytes_total{");
    errors += starts("pokemon_speedrun_upstream_errors_total{");
    requests += starts("pokemon_speedrun_http_requests_total{");
  }
  EXPECT_EQ(histograms, 2 * 3);  // upstreams x routes (with "other")
  EXPECT_EQ(request_bytes, 2 * 3);
  EXPECT_EQ(response_bytes, 2 * 3);
  EXPECT_EQ(errors, (1 + 2) * 4);  // endpoints x kinds
  EXPECT_EQ(requests, 0);
  EXPECT_EQ(m.count("pokemon_speedrun_upstream_errors_total{endpoint=127.0.0.1:8083,"
                    "kind=bad_response,upstream=emu-2,}"),
            1u);
  EXPECT_EQ(m.count("pokemon_speedrun_http_request_duration_seconds{route=other,upstream=emu-2,}"
                    "le=" +
                    std::to_string(0.0005)),
            1u);
}

}  // namespace
}  // namespace speedmon::metrics
