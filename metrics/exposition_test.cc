#include "metrics/exposition.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "base/json.h"

namespace speedmon::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::vector<MetricFamily> Sample() {
  MetricFamily c{"x_requests_total", "Requests.\nSecond line \\ here", MetricType::Counter, {}};
  ClientMetric cm;
  cm.label = {{"path", "a\"b\\c\nd"}};
  cm.counter.value = 3;
  c.metric.push_back(cm);
  MetricFamily g{"x_ratio", "A ratio.", MetricType::Gauge, {}};
  ClientMetric gm;
  gm.gauge.value = 0.25;
  g.metric.push_back(gm);
  MetricFamily h{"x_seconds", "Durations.", MetricType::Histogram, {}};
  ClientMetric hm;
  hm.label = {{"route", "r"}};
  hm.histogram.sample_count = 2;
  hm.histogram.sample_sum = 1.5;
  hm.histogram.bucket = {{1, 0.5}, {2, std::numeric_limits<double>::infinity()}};
  h.metric.push_back(hm);
  MetricFamily empty{"x_empty", "Nothing.", MetricType::Gauge, {}};
  return {c, g, h, empty};
}

TEST(ExpositionTest, Text004Exact) {
  TextBuffer buf;
  Serialize(Sample(), Format::kText004, &buf);
  std::string out(buf.view());
  EXPECT_EQ(out,
            "# HELP x_requests_total Requests.\\nSecond line \\\\ here\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{path=\"a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP x_ratio A ratio.\n"
            "# TYPE x_ratio gauge\n"
            "x_ratio 0.25\n"
            "# HELP x_seconds Durations.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{route=\"r\",le=\"0.5\"} 1\n"
            "x_seconds_bucket{route=\"r\",le=\"+Inf\"} 2\n"
            "x_seconds_sum{route=\"r\"} 1.5\n"
            "x_seconds_count{route=\"r\"} 2\n");
}

TEST(ExpositionTest, OpenMetricsNamesCountersWithoutTotalAndEnds) {
  TextBuffer buf;
  Serialize(Sample(), Format::kOpenMetrics, &buf);
  std::string out(buf.view());
  EXPECT_NE(out.find("# TYPE x_requests counter\n"), std::string::npos);
  EXPECT_NE(out.find("\nx_requests_total{path="), std::string::npos);
  EXPECT_TRUE(out.ends_with("# EOF\n"));
  EXPECT_EQ(out.find("x_empty"), std::string::npos);
}

TEST(ExpositionTest, LabelValuesThatAreNotUtf8GetReplacementCharacters) {
  MetricFamily c{"x_total", "Help \xff.", MetricType::Counter, {}};
  ClientMetric cm;
  cm.label = {{"strategy", "ga\xC3\xA9\xff\"x"}};
  cm.counter.value = 1;
  c.metric.push_back(cm);
  TextBuffer buf;
  Serialize({c}, Format::kText004, &buf);
  std::string out(buf.view());
  EXPECT_EQ(out,
            "# HELP x_total Help \xEF\xBF\xBD.\n"
            "# TYPE x_total counter\n"
            "x_total{strategy=\"ga\xC3\xA9\xEF\xBF\xBD\\\"x\"} 1\n");
}

// AppendEscaped as it is defined: repair the whole value, then escape byte by byte.
std::string EscapedByDefinition(std::string_view s, bool quotes) {
  std::string out;
  for (char c : base::ValidUtf8(s)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

TEST(ExpositionTest, EscapedAsDefined) {
  std::vector<std::string> values = {"",
                                     "plain",
                                     "\\",
                                     "\n\n",
                                     "\"",
                                     "a\"b\\c\nd",
                                     "\\x\"",
                                     "caf\xC3\xA9",
                                     "\xff",
                                     "a\n\xff\"b\xC3\xA9\\",
                                     "\xC0\xAF\xED\xA0\x80\xE2\x82",
                                     "\xE2\x82\"\n"};
  // And pseudo-random bytes, weighted towards the ones AppendEscaped looks at.
  const char kBytes[] = {'a', '\\', '\n', '"', '\xC3', '\xA9', '\xff', '\x80', '\xF0', ' '};
  uint32_t x = 12345;
  for (int n = 0; n < 2000; ++n) {
    std::string v;
    for (int i = n % 13; i > 0; --i) {
      x = x * 1103515245 + 12345;
      v += kBytes[(x >> 16) % sizeof kBytes];
    }
    values.push_back(v);
  }
  for (const std::string& v : values) {
    for (bool quotes : {false, true}) {
      TextBuffer out;
      out.Append("x");
      AppendEscaped(v, quotes, &out);
      EXPECT_EQ(out.view(), "x" + EscapedByDefinition(v, quotes)) << v << " quotes " << quotes;
    }
  }
}

TEST(ExpositionTest, WriteSecondsIsWriteNumberOfTheDoubleWithoutIt) {
  auto both = [](uint64_t ns) {
    char a[kMaxNumberChars];
    char b[kMaxNumberChars];
    std::string fast(a, WriteSeconds(ns, a));
    std::string slow(b, WriteNumber(static_cast<double>(ns) / 1e9, b));
    EXPECT_EQ(fast, slow) << ns;
    return fast;
  };
  EXPECT_EQ(both(0), "0");
  EXPECT_EQ(both(999), "9.99e-07");  // below 1 µs: WriteNumber's general notation
  EXPECT_EQ(both(1000), "0.000001");
  EXPECT_EQ(both(1'500'000), "0.0015");
  EXPECT_EQ(both(2'000'000'000), "2");
  EXPECT_EQ(both(12'345'678'901), "12.345678901");
  EXPECT_EQ(both(100'000'000'000'010), "100000.00000001");
  EXPECT_EQ(both(999'999'999'999'999), "999999.999999999");
  EXPECT_EQ(both(1'000'000'000'000'001), "1000000.000000001");  // past 15 digits: the double
  // Every length of fraction and integer part, and a spread of arbitrary values.
  uint64_t x = 88172645463325252u;
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    both(x % (uint64_t{1} << (i % 51)));
  }
}

TEST(ExpositionTest, Negotiation) {
  EXPECT_EQ(NegotiateFormat(""), Format::kText004);
  EXPECT_EQ(NegotiateFormat("text/plain;version=0.0.4"), Format::kText004);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text; q=0"), Format::kText004);
  EXPECT_EQ(NegotiateFormat("APPLICATION/OPENMETRICS-TEXT"), Format::kOpenMetrics);
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("xgzip"));
}

TEST(ExpositionTest, GzipRoundTrips) {
  std::string text(100000, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  std::string gz;
  ASSERT_TRUE(Gzip(text, &gz));
  ASSERT_GT(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string back(text.size() + 10, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(back.data());
  zs.avail_out = static_cast<uInt>(back.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  back.resize(zs.total_out);
  inflateEnd(&zs);
  EXPECT_EQ(back, text);
  std::string empty_gz;
  EXPECT_TRUE(Gzip("", &empty_gz));
}

}  // namespace
}  // namespace speedmon::metrics
