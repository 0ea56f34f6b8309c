// Tests of the value parsers in config.h: durations, addresses, URLs, enum names and
// metric selectors. Single-threaded.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace speedmon::config {
namespace {

TEST(ParseDurationTest, Valid) {
  const struct {
    const char* text;
    int64_t ms;
  } kCases[] = {
      {"0s", 0},      {"0ms", 0},      {"250ms", 250},         {"5s", 5000},
      {"2m", 120000}, {"1h", 3600000}, {"1m30s", 90000},       {"1h2m3s4ms", 3723004},
      {"90s", 90000}, {"007s", 7000},  {"8760h", 31536000000}, {"1s500ms", 1500},
  };
  for (const auto& c : kCases) {
    std::optional<Duration> d = ParseDuration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDurationTest, Invalid) {
  for (const char* text : {"",
                           "5",
                           "-5s",
                           "+5s",
                           "5 s",
                           " 5s",
                           "5s ",
                           "5S",
                           "5sec",
                           "5d",
                           "1.5s",
                           "s",
                           "ms",
                           "5ms5s",
                           "30s1m",
                           "1s1s",
                           "1m1m",
                           "8760h1ms",
                           "9223372036854775807ms",
                           "99999999999999999999s",
                           "1h 30m",
                           "5s\n",
                           "5us",
                           "5ns"}) {
    EXPECT_FALSE(ParseDuration(text).has_value()) << '"' << text << '"';
  }
  EXPECT_FALSE(ParseDuration(std::string_view("5s\0", 3)).has_value());
}

TEST(FormatDurationTest, RoundTrips) {
  const struct {
    int64_t ms;
    const char* text;
  } kCases[] = {{0, "0s"},        {250, "250ms"},  {1000, "1s"},           {1500, "1s500ms"},
                {90000, "1m30s"}, {3600000, "1h"}, {3723004, "1h2m3s4ms"}, {-1500, "-1s500ms"}};
  for (const auto& c : kCases) {
    EXPECT_EQ(FormatDuration(Duration(c.ms)), c.text);
    if (c.ms >= 0) {
      EXPECT_EQ(ParseDuration(c.text)->count(), c.ms);
    }
  }
}

TEST(ParseAddressTest, Valid) {
  const struct {
    const char* text;
    bool allow_zero;
    const char* host;
    uint16_t port;
    const char* back;
  } kCases[] = {
      {"127.0.0.1:8000", false, "127.0.0.1", 8000, "127.0.0.1:8000"},
      {"0.0.0.0:1", false, "0.0.0.0", 1, "0.0.0.0:1"},
      {"localhost:65535", false, "localhost", 65535, "localhost:65535"},
      {"[::1]:80", false, "::1", 80, "[::1]:80"},
      {"[::]:0", true, "::", 0, "[::]:0"},
      {"[fe80::1:2]:443", false, "fe80::1:2", 443, "[fe80::1:2]:443"},
      {"127.0.0.1:0", true, "127.0.0.1", 0, "127.0.0.1:0"},
      {"pokemon_gym_1:8081", false, "pokemon_gym_1", 8081, "pokemon_gym_1:8081"},
      {"emulator-1.local:8081", false, "emulator-1.local", 8081, "emulator-1.local:8081"},
      {"127.0.0.1:08081", false, "127.0.0.1", 8081, "127.0.0.1:8081"},
  };
  for (const auto& c : kCases) {
    std::optional<Address> a = ParseAddress(c.text, c.allow_zero);
    ASSERT_TRUE(a.has_value()) << c.text;
    EXPECT_EQ(a->host, c.host);
    EXPECT_EQ(a->port, c.port);
    EXPECT_EQ(a->ToString(), c.back);
  }
}

TEST(ParseAddressTest, Invalid) {
  for (const char* text : {"",
                           ":",
                           "127.0.0.1",
                           "127.0.0.1:",
                           ":8000",
                           "127.0.0.1:0",
                           "127.0.0.1:65536",
                           "127.0.0.1:99999999",
                           "127.0.0.1:-1",
                           "127.0.0.1:+80",
                           "127.0.0.1:80a",
                           "::1:80",
                           "[::1]",
                           "[::1]80",
                           "[::1:80",
                           "[zz::1]:80",
                           "[127.0.0.1]:80",
                           "256.1.1.1:80",
                           "127.1:80",
                           "1.2.3.4.5:80",
                           "host name:80",
                           "-host:80",
                           "host-:80",
                           "a..b:80",
                           "http://x:80",
                           "[fe80::1%eth0]:80",
                           "x:80 ",
                           " x:80"}) {
    EXPECT_FALSE(ParseAddress(text, false).has_value()) << '"' << text << '"';
  }
  EXPECT_FALSE(ParseAddress(std::string(300, 'a') + ":80", false).has_value());
  EXPECT_FALSE(ParseAddress(std::string(64, 'a') + ".b:80", false).has_value());
  EXPECT_TRUE(ParseAddress(std::string(63, 'a') + ".b:80", false).has_value());
  EXPECT_FALSE(ParseAddress("127.0.0.1:65536", true).has_value());
  EXPECT_FALSE(ParseAddress(std::string_view("x:8\0", 4), true).has_value());
}

TEST(AddressTest, IsLoopback) {
  EXPECT_TRUE((Address{"127.0.0.1", 1}).IsLoopback());
  EXPECT_TRUE((Address{"127.255.3.4", 1}).IsLoopback());
  EXPECT_TRUE((Address{"::1", 1}).IsLoopback());
  EXPECT_TRUE((Address{"0:0:0:0:0:0:0:1", 1}).IsLoopback());
  EXPECT_TRUE((Address{"::ffff:127.0.0.1", 1}).IsLoopback());
  EXPECT_TRUE((Address{"localhost", 1}).IsLoopback());
  EXPECT_TRUE((Address{"LocalHost", 1}).IsLoopback());
  EXPECT_FALSE((Address{"0.0.0.0", 1}).IsLoopback());
  EXPECT_FALSE((Address{"::", 1}).IsLoopback());
  EXPECT_FALSE((Address{"128.0.0.1", 1}).IsLoopback());
  EXPECT_FALSE((Address{"10.0.0.1", 1}).IsLoopback());
  EXPECT_FALSE((Address{"::ffff:10.0.0.1", 1}).IsLoopback());
  EXPECT_FALSE((Address{"emulator-1", 1}).IsLoopback());
  EXPECT_FALSE((Address{"localhost.example", 1}).IsLoopback());
}

TEST(ParseHttpUrlTest, Valid) {
  base::StatusOr<HttpUrl> u = ParseHttpUrl("http://127.0.0.1:9093");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->address.ToString(), "127.0.0.1:9093");
  EXPECT_EQ(u->path, "/");
  u = ParseHttpUrl("http://[::1]:9999/hook/a");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->address.host, "::1");
  EXPECT_EQ(u->address.ToString(), "[::1]:9999");
  EXPECT_EQ(u->path, "/hook/a");
  u = ParseHttpUrl("http://alertmanager:9093/prefix/");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->address.ToString(), "alertmanager:9093");
  EXPECT_EQ(u->path, "/prefix/");
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->ToString(), "http://alertmanager:9093/prefix/");
  u = ParseHttpUrl("https://hooks.example.com:443/services/T0/B0");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->address.host, "hooks.example.com");
  EXPECT_EQ(u->address.port, 443);
  EXPECT_EQ(u->path, "/services/T0/B0");
  EXPECT_EQ(u->ToString(), "https://hooks.example.com:443/services/T0/B0");
  u = ParseHttpUrl("https://[::1]:9093");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->ToString(), "https://[::1]:9093/");
}

TEST(ParseHttpUrlTest, InvalidSaysWhy) {
  const std::string kHostPort =
      "expected http://host:port[/path] (IPv6 in brackets, port 1..65535)";
  struct Bad {
    std::string url;
    std::string error;
  };
  for (const Bad& c : std::vector<Bad>{
           {"", "only http:// and https:// URLs are supported"},
           {"HTTP://127.0.0.1:9093", "only http:// and https:// URLs are supported"},
           {"ftp://127.0.0.1:21", "only http:// and https:// URLs are supported"},
           {"https:/127.0.0.1:9093", "only http:// and https:// URLs are supported"},
           {"127.0.0.1:9093", "only http:// and https:// URLs are supported"},
           {"https://127.0.0.1",
            "expected https://host:port[/path] (IPv6 in brackets, port "
            "1..65535)"},
           {"https://u:p@h:443/x", "user info is not supported"},
           {"https://h:443/?x", "queries and fragments are not supported"},
           {"http://u:p@h:1", "user info is not supported"},
           {"http://u@h:1/x", "user info is not supported"},
           {"http://h:1/a?b=c", "queries and fragments are not supported"},
           {"http://h:1?b=c", "queries and fragments are not supported"},
           {"http://h:1#f", "queries and fragments are not supported"},
           {"http://h:1/a#f", "queries and fragments are not supported"},
           {"http://", kHostPort},
           {"http://:9093", kHostPort},
           {"http://127.0.0.1", kHostPort},
           {"http://127.0.0.1/x", kHostPort},
           {"http://127.0.0.1:0", kHostPort},
           {"http://h:", kHostPort},
           {"http://h:65536", kHostPort},
           {"http://h:9x", kHostPort},
           {"http://[::1", kHostPort},
           {"http://[::1]x", kHostPort},
           {"http://127.0.0.1:9093/a b", "the path must be printable ASCII without spaces"},
       }) {
    EXPECT_EQ(ParseHttpUrl(c.url).status(), base::InvalidArgumentError(c.error, "url")) << c.url;
  }
}

TEST(DottedMetricsTest, DottedNamesMapToExportedNamesWithScale) {
  struct Case {
    const char* dotted;
    const char* exported;
    double scale;
  };
  const Case cases[] = {
      {"system.cpu_percent", "pokemon_speedrun_system_cpu_percent", 1},
      {"system.memory_percent", "pokemon_speedrun_system_memory_percent", 1},
      {"speedrun.experiment_success_rate", "pokemon_speedrun_experiment_success_rate", 1},
      {"speedrun.average_script_compilation_ms",
       "pokemon_speedrun_script_compilation_average_seconds", 1000},
      {"speedrun.average_checkpoint_loading_ms",
       "pokemon_speedrun_checkpoint_loading_average_seconds", 1000},
      {"prometheus.healthy_processes", "pokemon_speedrun_healthy_processes", 1},
      {"system.disk_percent", "pokemon_speedrun_system_disk_percent", 1},
      {"speedrun.average_pattern_quality", "pokemon_speedrun_pattern_quality_average", 1},
      {"speedrun.total_experiments", "pokemon_speedrun_experiments_total", 1},
  };
  ASSERT_EQ(DottedMetrics().size(), 22u);
  for (const auto& c : cases) {
    const DottedMetric* s = FindDottedMetric(c.dotted);
    ASSERT_NE(s, nullptr) << c.dotted;
    EXPECT_STREQ(s->exported, c.exported);
    EXPECT_EQ(s->scale, c.scale);
  }
  EXPECT_EQ(FindDottedMetric("system.cpu"), nullptr);
  EXPECT_EQ(FindDottedMetric("pokemon_speedrun_system_cpu_percent"), nullptr);
  EXPECT_EQ(FindDottedMetric(""), nullptr);
}

TEST(EnumNamesTest, RoundTrip) {
  for (Severity s : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
    EXPECT_EQ(ParseSeverity(SeverityName(s)), s);
  }
  EXPECT_STREQ(SeverityName(Severity::kCritical), "critical");
  EXPECT_EQ(ParseSeverity("CRITICAL"), Severity::kCritical);
  EXPECT_EQ(ParseSeverity("Warning"), Severity::kWarning);
  EXPECT_FALSE(ParseSeverity("fatal").has_value());
  EXPECT_FALSE(ParseSeverity("").has_value());
  EXPECT_FALSE(ParseSeverity("info ").has_value());

  const std::vector<std::pair<CompareOp, const char*>> kOps = {
      {CompareOp::kGt, ">"},  {CompareOp::kLt, "<"},  {CompareOp::kGe, ">="},
      {CompareOp::kLe, "<="}, {CompareOp::kEq, "=="}, {CompareOp::kNe, "!="}};
  for (const auto& [op, name] : kOps) {
    EXPECT_STREQ(CompareOpName(op), name);
    EXPECT_EQ(ParseCompareOp(name), op);
  }
  for (const char* bad : {"", "=", "=>", "<>", "gt", " >", "!"}) {
    EXPECT_FALSE(ParseCompareOp(bad).has_value()) << bad;
  }

  EXPECT_EQ(ParseLoadBalancing("least_requests"), LoadBalancing::kLeastRequests);
  EXPECT_EQ(ParseLoadBalancing("round_robin"), LoadBalancing::kRoundRobin);
  EXPECT_STREQ(LoadBalancingName(LoadBalancing::kRoundRobin), "round_robin");
  EXPECT_FALSE(ParseLoadBalancing("random").has_value());

  for (const char* a : {"", "none", "max", "min", "sum", "avg", "count"}) {
    EXPECT_TRUE(IsValidAggregation(a));
  }
  for (const char* a : {"MAX", "mean", "p99", "None"}) EXPECT_FALSE(IsValidAggregation(a));

  EXPECT_TRUE(IsValidLabelName("upstream"));
  EXPECT_TRUE(IsValidLabelName("_x9"));
  EXPECT_FALSE(IsValidLabelName("9x"));
  EXPECT_FALSE(IsValidLabelName("a-b"));
  EXPECT_FALSE(IsValidLabelName(""));
}

TEST(ParseMetricSelectorTest, Valid) {
  const struct {
    const char* text;
    const char* metric;
    std::map<std::string, std::string> labels;
  } kCases[] = {
      {"system.cpu_percent", "system.cpu_percent", {}},
      {"up", "up", {}},
      {"a:b_c", "a:b_c", {}},
      {"x{}", "x", {}},
      {"x {}", "x", {}},
      {"pokemon_speedrun_upstream_healthy{upstream=\"emulator-1\",endpoint=\"127.0.0.1:8081\"}",
       "pokemon_speedrun_upstream_healthy",
       {{"upstream", "emulator-1"}, {"endpoint", "127.0.0.1:8081"}}},
      {"x{ a = \"1\" , b=\"\" , }", "x", {{"a", "1"}, {"b", ""}}},
      {"x{a=\"q\\\"uote\\\\n\\n\"}", "x", {{"a", "q\"uote\\n\n"}}},
      {"x{a=\"{},=\"}", "x", {{"a", "{},="}}},
  };
  for (const auto& c : kCases) {
    base::StatusOr<MetricSelector> r = ParseMetricSelector(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
    EXPECT_EQ(r->metric, c.metric);
    EXPECT_EQ(r->match_labels, c.labels) << c.text;
  }
}

TEST(ParseMetricSelectorTest, Invalid) {
  const struct {
    const char* text;
    const char* error;
    size_t offset;
  } kCases[] = {
      {"", "expected a metric name", 0},
      {"9x", "expected a metric name", 0},
      {"{a=\"1\"}", "expected a metric name", 0},
      {"x y", "expected '{' or the end after the metric name", 2},
      {"x-y", "expected '{' or the end after the metric name", 1},
      {"x{", "expected a label name", 2},
      {"x{9=\"1\"}", "expected a label name", 2},
      {"x{a}", "expected '=' after label name \"a\"", 3},
      {"x{a!=\"1\"}", "only '=' matchers are supported", 3},
      {"x{a=~\"1\"}", "only '=' matchers are supported", 3},
      {"x{a=1}", "expected '\"' to start the value of label \"a\"", 4},
      {"x{a='1'}", "expected '\"' to start the value of label \"a\"", 4},
      {"x{a=\"1}", "unterminated value of label \"a\"", 7},
      {"x{a=\"\\t\"}", "invalid escape (use \\\\, \\\" or \\n) in the value of label \"a\"", 5},
      {"x{a=\"1\\", "invalid escape (use \\\\, \\\" or \\n) in the value of label \"a\"", 6},
      {"x{a=\"1\" b=\"2\"}", "expected ',' or '}'", 8},
      {"x{a=\"1\",a=\"2\"}", "duplicate label \"a\"", 8},
      {"x{a=\"1\"} y", "unexpected text after '}'", 9},
      {"x{a=\"1\"}}", "unexpected text after '}'", 8},
      {"x{,}", "expected a label name", 2},
  };
  for (const auto& c : kCases) {
    size_t offset = 1000;
    EXPECT_EQ(ParseMetricSelector(c.text, &offset).status(),
              base::InvalidArgumentError(c.error, "metric"))
        << c.text;
    EXPECT_EQ(offset, c.offset) << c.text;
    EXPECT_FALSE(ParseMetricSelector(c.text).ok()) << c.text;  // the offset is optional
  }
}

}  // namespace
}  // namespace speedmon::config
