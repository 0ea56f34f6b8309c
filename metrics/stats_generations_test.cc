// Shards of another layout (a data plane generation before a reload) summed by label
// name, and folded into one shard once their generation has stopped.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "metrics/request_stats.h"
#include "metrics/text_format.h"

namespace speedmon::metrics {
namespace {

StatsLayout Before() {
  StatsLayout l;
  l.upstreams = {"emu-1", "gone"};
  l.endpoints = {{"127.0.0.1:8081"}, {"127.0.0.1:9000"}};
  l.routes = {"action", "echo", "other"};
  return l;
}

// emu-1 stays (an endpoint added before its old one), "gone" goes, "fresh" comes; the
// route "echo" goes, "status" comes, "other" stays last.
StatsLayout After() {
  StatsLayout l;
  l.upstreams = {"fresh", "emu-1"};
  l.endpoints = {{"127.0.0.1:7000"}, {"127.0.0.1:8082", "127.0.0.1:8081"}};
  l.routes = {"status", "action", "other"};
  return l;
}

std::map<std::string, double> Counters(const RequestStatsCollector& c) {
  std::map<std::string, double> out;
  for (const auto& f : c.Collect()) {
    for (const auto& m : f.metric) {
      std::string key = f.name + "{";
      for (const auto& l : m.label) key += l.name + "=" + l.value + ",";
      key += "}";
      if (f.type == prometheus::MetricType::Counter) out[key] = m.counter.value;
      if (f.type == prometheus::MetricType::Histogram) {
        out[key + "count"] = static_cast<double>(m.histogram.sample_count);
      }
    }
  }
  return out;
}

const char* kActionPost =
    "pokemon_speedrun_http_requests_total{code=200,method=POST,route=action,upstream=emu-1,}";
const char* kActionDuration =
    "pokemon_speedrun_http_request_duration_seconds{route=action,upstream=emu-1,}count";
const char* kConnectErrors =
    "pokemon_speedrun_upstream_errors_total{endpoint=127.0.0.1:8081,kind=connect,upstream=emu-1,}";

TEST(StatsGenerationsTest, OldShardsCountUnderTheNewLayoutByName) {
  auto before = std::make_shared<const StatsLayout>(Before());
  auto after = std::make_shared<const StatsLayout>(After());
  WorkerStats old_shard(*before), new_shard(*after);
  old_shard.RecordRequest(0, 0, Method::kPost, 200, 1'000'000, 1, 2);  // emu-1 action
  old_shard.RecordRequest(0, 1, Method::kGet, 200, 1'000'000, 0, 2);   // emu-1 echo: dropped
  old_shard.RecordRequest(1, 0, Method::kPost, 200, 1'000'000, 0, 2);  // gone: dropped
  old_shard.RecordUpstreamError(0, 0, UpstreamErrorKind::kConnect);    // 127.0.0.1:8081
  new_shard.RecordRequest(1, 1, Method::kPost, 200, 1'000'000, 1, 2);  // emu-1 action
  new_shard.RecordUpstreamError(1, 1, UpstreamErrorKind::kConnect);    // 127.0.0.1:8081
  RequestStatsCollector c({{&new_shard, after}, {&old_shard, before}}, *after);
  auto m = Counters(c);
  EXPECT_EQ(m[kActionPost], 2);
  EXPECT_EQ(m[kActionDuration], 2);
  EXPECT_EQ(m[kConnectErrors], 2);
  for (const auto& [key, value] : m) {
    EXPECT_EQ(key.find("route=echo"), std::string::npos) << key;
    EXPECT_EQ(key.find("upstream=gone"), std::string::npos) << key;
  }
  // The text exposition says the same.
  TextBuffer text;
  c.AppendText(Format::kText004, &text);
  std::string body(text.view());
  EXPECT_NE(body.find("pokemon_speedrun_http_requests_total{code=\"200\",method=\"POST\","
                      "route=\"action\",upstream=\"emu-1\"} 2\n"),
            std::string::npos)
      << body;
}

TEST(StatsGenerationsTest, FoldingAStoppedShardKeepsEveryCount) {
  auto before = std::make_shared<const StatsLayout>(Before());
  auto after = std::make_shared<const StatsLayout>(After());
  WorkerStats old_shard(*before), new_shard(*after), carry(*after);
  old_shard.RecordRequest(0, 0, Method::kPost, 200, 1'000'000, 1, 2);
  old_shard.RecordRequest(0, 0, Method::kPost, 200, 3'000'000, 1, 2);
  old_shard.RecordUpstreamError(0, 0, UpstreamErrorKind::kConnect);
  old_shard.RecordTimeout(DownstreamTimeout::kIdle);
  new_shard.RecordRequest(1, 1, Method::kPost, 200, 1'000'000, 1, 2);
  auto m_before =
      Counters(RequestStatsCollector({{&new_shard, after}, {&old_shard, before}}, *after));
  RequestStatsCollector::Fold(old_shard, *before, &carry, *after);
  RequestStatsCollector folded({{&new_shard, after}, {&carry, after}}, *after);
  auto m_after = Counters(folded);
  EXPECT_EQ(m_after, m_before);
  EXPECT_EQ(m_after[kActionPost], 3);
  EXPECT_EQ(m_after[kConnectErrors], 1);
  EXPECT_EQ(m_after["pokemon_speedrun_downstream_timeouts_total{reason=idle,}"], 1);
  auto summaries = folded.Summaries();
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].requests, 3u);
  EXPECT_EQ(summaries[0].min_ms, 1.0);
  EXPECT_EQ(summaries[0].max_ms, 3.0);
}

}  // namespace
}  // namespace speedmon::metrics
