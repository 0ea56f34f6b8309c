// FamilySet::AppendText against Serialize(registry.Collect()): the same bytes, in both
// formats, through adds, re-adds, removes, hostile label values and empty families.
#include "metrics/family.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/exposition.h"

namespace speedmon::metrics {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

std::string Expected(const prometheus::Registry& registry, Format format) {
  TextBuffer out;
  Serialize(registry.Collect(), format, &out);
  return std::string(out.view());
}

std::string Ours(const FamilySet& set, Format format) {
  TextBuffer out;
  set.AppendText(format, &out);
  if (format == Format::kOpenMetrics) out.Append("# EOF\n");
  return std::string(out.view());
}

void ExpectSameBytes(const prometheus::Registry& registry, const FamilySet& set) {
  for (Format format : {Format::kText004, Format::kOpenMetrics}) {
    SCOPED_TRACE(format == Format::kText004 ? "text 0.0.4" : "OpenMetrics");
    EXPECT_EQ(Ours(set, format), Expected(registry, format));
  }
}

class FamilySetTest : public ::testing::Test {
 protected:
  prometheus::Registry registry_;
  FamilySet set_{registry_};
};

TEST_F(FamilySetTest, EmptySetWritesNothing) {
  set_.AddGauge("x_nothing", "No series.");
  set_.AddCounter("x_none_total", "No series either.");
  set_.AddHistogram("x_no_seconds", "Nor here.");
  TextBuffer out;
  set_.AppendText(Format::kOpenMetrics, &out);
  EXPECT_EQ(out.view(), "");
  ExpectSameBytes(registry_, set_);
}

TEST_F(FamilySetTest, SameBytesAsSerializeOfCollect) {
  // Registered out of type order: the registry collects counters, gauges, histograms.
  auto& ratio = set_.AddGauge("x_ratio", "A ratio.\nSecond line \\ with \"quotes\"");
  auto& requests = set_.AddCounter("x_requests_total", "Requests by path.");
  auto& plain = set_.AddCounter("x_plain", "A counter whose name lacks _total.");
  set_.AddGauge("x_empty", "Never has a series.");
  auto& seconds = set_.AddHistogram("x_seconds", "Durations.");
  auto& sizes = set_.AddHistogram("x_bytes", "Sizes, without labels.");

  ratio.Add({}).Set(0.25);
  ratio.Add({{"kind", "nan"}}).Set(std::numeric_limits<double>::quiet_NaN());
  ratio.Add({{"kind", "inf"}}).Set(-std::numeric_limits<double>::infinity());
  ratio.Add({{"kind", "big"}}).Set(1e20);
  ratio.Add({{"kind", "small"}}).Set(0.0005);
  requests.Add({{"path", "a\"b\\c\nd"}, {"method", "GET"}}).Increment(3);
  requests.Add({{"path", "bad \xff\xfe utf-8"}, {"method", "POST"}}).Increment(1e16);
  requests.Add({{"path", "caf\xc3\xa9"}, {"method", "PUT"}});
  // Many series, so the hash table rehashes and its order is nothing like the labels'.
  for (int i = 0; i < 100; ++i) {
    requests.Add({{"path", "/p/" + std::to_string(i)}, {"method", i % 2 ? "GET" : "PUT"}})
        .Increment(i);
  }
  plain.Add({{"a", "1"}}).Increment();
  auto& h = seconds.Add({{"route", "r\"1"}}, Histogram::BucketBoundaries{0.005, 0.5, 1, 2.5});
  h.Observe(0.001);
  h.Observe(0.7);
  h.Observe(100);
  seconds.Add({{"route", "r2"}}, Histogram::BucketBoundaries{1, 2});
  sizes.Add({}, Histogram::BucketBoundaries{1024, 1e6}).Observe(4096);
  ExpectSameBytes(registry_, set_);

  // The text shows what the metrics hold at the time of the scrape, not at Add.
  requests.Add({{"path", "/p/7"}, {"method", "GET"}}).Increment(1000);
  ratio.Add({}).Set(-3);
  h.Observe(2);
  ExpectSameBytes(registry_, set_);
  EXPECT_NE(
      Ours(set_, Format::kText004).find("x_requests_total{method=\"GET\",path=\"/p/7\"} 1007\n"),
      std::string::npos);
  EXPECT_NE(Ours(set_, Format::kOpenMetrics).find("x_plain_total{a=\"1\"} 1\n"), std::string::npos);
}

TEST_F(FamilySetTest, AddOfExistingLabelsReturnsTheSameMetric) {
  auto& family = set_.AddCounter("x_events_total", "Events.");
  Counter& a = family.Add({{"event", "a"}});
  a.Increment(2);
  EXPECT_EQ(&family.Add({{"event", "a"}}), &a);
  auto& h = set_.AddHistogram("x_seconds", "Durations.");
  Histogram& first = h.Add({}, Histogram::BucketBoundaries{1});
  EXPECT_EQ(&h.Add({}, Histogram::BucketBoundaries{1, 2, 3}), &first);
  ExpectSameBytes(registry_, set_);
}

TEST_F(FamilySetTest, RegisteringANameAgainReturnsTheSameFamily) {
  auto& first = set_.AddGauge("x_up", "Up.");
  first.Add({{"who", "a"}}).Set(1);
  auto& again = set_.AddGauge("x_up", "Up.");
  EXPECT_EQ(&again, &first);
  again.Add({{"who", "b"}}).Set(0);
  EXPECT_THROW(set_.AddCounter("x_up", "Another type."), std::invalid_argument);
  ExpectSameBytes(registry_, set_);
  EXPECT_EQ(Ours(set_, Format::kText004).find("# TYPE x_up gauge"),
            Ours(set_, Format::kText004).rfind("# TYPE x_up gauge"));
}

TEST_F(FamilySetTest, RemoveTakesTheSeriesOutOfBoth) {
  auto& family = set_.AddGauge("x_window", "Window.");
  std::vector<Gauge*> gauges;
  for (int i = 0; i < 40; ++i) {
    gauges.push_back(&family.Add({{"i", std::to_string(i)}}));
    gauges.back()->Set(i);
  }
  for (int i = 0; i < 40; i += 3) family.Remove(gauges[i]);
  family.Remove(nullptr);  // not a series: nothing happens
  ExpectSameBytes(registry_, set_);
  EXPECT_EQ(Ours(set_, Format::kText004).find("i=\"3\""), std::string::npos);
  // Added back, and more: the order of both tables still agrees.
  for (int i = 0; i < 60; ++i) family.Add({{"i", std::to_string(i)}}).Set(-i);
  ExpectSameBytes(registry_, set_);
  // Every series removed: the family is not shown at all.
  for (int i = 0; i < 60; ++i) family.Remove(&family.Add({{"i", std::to_string(i)}}));
  EXPECT_EQ(Ours(set_, Format::kText004), "");
  ExpectSameBytes(registry_, set_);
}

TEST_F(FamilySetTest, RefusedLabelNameChangesNothing) {
  auto& family = set_.AddCounter("x_total", "X.");
  for (int i = 0; i < 12; ++i) family.Add({{"i", std::to_string(i)}}).Increment(i);
  EXPECT_THROW(family.Add({{"bad-name", "v"}}), std::invalid_argument);
  EXPECT_THROW(family.Add({{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_EQ(Expected(registry_, Format::kText004).find("reserved"), std::string::npos);
  ExpectSameBytes(registry_, set_);
}

// Series added and removed on another thread while scrapes run (ASan/UBSan find misuse).
TEST_F(FamilySetTest, AddAndRemoveWhileScraping) {
  auto& family = set_.AddGauge("x_busy", "Busy.");
  std::atomic<bool> stop = false;
  std::thread writer([&] {
    int i = 0;
    while (!stop) {
      Gauge& g = family.Add({{"i", std::to_string(i % 50)}});
      g.Set(i);
      if (i % 3 == 0) family.Remove(&g);
      ++i;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    TextBuffer out;
    set_.AppendText(Format::kText004, &out);
  }
  stop = true;
  writer.join();
  ExpectSameBytes(registry_, set_);
}

}  // namespace
}  // namespace speedmon::metrics
