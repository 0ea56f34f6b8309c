// Table-driven tests of every validation error: each bad config gives exactly this
// "FILE:LINE:COL: message". Single-threaded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"
#include "config/test_configs.h"

namespace speedmon::config {
namespace {

// Two lines that make a config valid; errors in the text after them are on line 3+.
constexpr const char* kPool =
    "listeners = [{name = \"l\", address = \"127.0.0.1:0\", upstream = \"u\"}]\n"
    "upstreams = [{name = \"u\", endpoints = [\"127.0.0.1:1\"]}]\n";

// A valid rule on lines 3..7 after kPool; cases append to it or replace a line.
constexpr const char* kRule =
    "[[alerting.rules]]\n"
    "id = \"r\"\n"
    "metric = \"m\"\n"
    "operator = \">\"\n"
    "threshold = 1\n";

struct BadCase {
  std::string text;
  std::string error;
};

void ExpectErrors(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    base::Status status = LoadFromString(c.text, "t.toml").status();
    ASSERT_FALSE(status.ok()) << "loaded:\n" << c.text;
    EXPECT_EQ(status.code(), base::StatusCode::kInvalidArgument) << status.ToString();
    EXPECT_EQ(status.message(), c.error) << "config:\n" << c.text;
  }
}

std::string P(const std::string& text) { return std::string(kPool) + text; }

TEST(ErrorsTest, TheBaseIsValid) {
  // config/testdata/valid/errors_base.toml holds it, so it is started in the
  // integration test with the other valid configs.
  std::string base = std::string(kPool) + kRule;
  std::string file = ValidConfigText("errors_base");
  EXPECT_TRUE(file.ends_with(base)) << file;
  base::StatusOr<Config> r = LoadFromString(base, "t.toml");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST(ErrorsTest, TomlSyntax) {
  ExpectErrors({
      {"[admin\n", "t.toml:1:7: Error while parsing table header: expected ']', saw '\\n'"},
      {"a = \"abc\n",
       "t.toml:1:9: Error while parsing string: unescaped control characters other than TAB "
       "(U+0009) are explicitly prohibited"},
      {"[proxy]\nworkers = 1\nworkers = 2\n",
       "t.toml:3:11: Error while parsing key-value pair: cannot redefine existing integer "
       "'workers'"},
  });
}

TEST(ErrorsTest, UnknownKeysAtEveryLevel) {
  ExpectErrors({
      {"[admin]\nadress = \"127.0.0.1:8000\"\n", "t.toml:2:1: unknown key \"adress\" in [admin]"},
      {"[sysprob]\n", "t.toml:1:2: unknown key \"sysprob\" at the top level"},
      {"zeta = 1\nlistenrs = []\n", "t.toml:1:1: unknown key \"zeta\" at the top level"},
      {"[proxy]\nworkers = 1\nworker = 2\n", "t.toml:3:1: unknown key \"worker\" in [proxy]"},
      {"[[listeners]]\nnmae = \"l\"\n", "t.toml:2:1: unknown key \"nmae\" in [[listeners]]"},
      {"[[upstreams]]\nname = \"u\"\nendpoints = [\"a:1\"]\n[upstreams.health_check]\n"
       "intervall = \"5s\"\n",
       "t.toml:5:1: unknown key \"intervall\" in [upstreams.health_check]"},
      {P("[[routes]]\nname = \"a\"\nprefix = \"/a\"\nprefx = \"/b\"\n"),
       "t.toml:6:1: unknown key \"prefx\" in [[routes]]"},
      {P("[sysprobe]\ndisk_path = [\"/\"]\n"),
       "t.toml:4:1: unknown key \"disk_path\" in [sysprobe]"},
      {P("[[processes]]\nname = \"p\"\npids = 1\n"),
       "t.toml:5:1: unknown key \"pids\" in [[processes]]"},
      {P("[speedrun]\nstore = \"x\"\n"), "t.toml:4:1: unknown key \"store\" in [speedrun]"},
      {P("[sla]\npattern_quality = 0.5\n"), "t.toml:4:1: unknown key \"pattern_quality\" in [sla]"},
      {P("[alerting]\ndefault_rule = true\n"),
       "t.toml:4:1: unknown key \"default_rule\" in [alerting]"},
      {P("[[alerting.rules]]\nid = \"r\"\nmetric = \"m\"\noperator = \">\"\ntreshold = 1\n"),
       "t.toml:7:1: unknown key \"treshold\" in [[alerting.rules]]"},
      {P("[[alerting.alertmanagers]]\nurls = \"http://a:1\"\n"),
       "t.toml:4:1: unknown key \"urls\" in [[alerting.alertmanagers]]"},
      {P("[[alerting.webhooks]]\nurl = \"http://a:1\"\ntimout = \"1s\"\n"),
       "t.toml:5:1: unknown key \"timout\" in [[alerting.webhooks]]"},
      // A typo is reported as a typo even when the real key is required.
      {"[[upstreams]]\nnam = \"u\"\n", "t.toml:2:1: unknown key \"nam\" in [[upstreams]]"},
  });
}

TEST(ErrorsTest, WrongTypes) {
  ExpectErrors({
      {"[proxy]\nworkers = \"4\"\n", "t.toml:2:11: [proxy].workers: expected an integer"},
      {"[proxy]\nworkers = 4.0\n", "t.toml:2:11: [proxy].workers: expected an integer"},
      {"[proxy]\nrecord_requests = 1\n",
       "t.toml:2:19: [proxy].record_requests: expected a boolean (true or false)"},
      {"[proxy]\naccess_log = false\n", "t.toml:2:14: [proxy].access_log: expected a string"},
      {"[proxy]\nheader_timeout = 10\n",
       "t.toml:2:18: [proxy].header_timeout: expected a duration string like \"5s\""},
      {"[admin]\naddress = 8000\n",
       "t.toml:2:11: [admin].address: expected an address string like \"127.0.0.1:8000\""},
      {"admin = 5\n", "t.toml:1:9: admin: expected a table"},
      {"[[admin]]\n", "t.toml:1:1: admin: expected a table"},
      {"[listeners]\nname = \"x\"\n", "t.toml:1:1: listeners: expected an array of tables"},
      {"listeners = [1]\n", "t.toml:1:14: listeners: expected an array of tables"},
      {P("[sla]\npattern_quality_min = \"0.7\"\n"),
       "t.toml:4:23: [sla].pattern_quality_min: expected a number"},
      {P("[sysprobe]\ndisk_paths = \"/\"\n"),
       "t.toml:4:14: [sysprobe].disk_paths: expected an array of strings"},
      {P("[sysprobe]\ndisk_paths = [\"/\", 1]\n"),
       "t.toml:4:20: [sysprobe].disk_paths: expected an array of strings"},
      {P("[speedrun]\nstore_path = 1\n"), "t.toml:4:14: [speedrun].store_path: expected a string"},
      {P("[alerting]\nrules = 5\n"), "t.toml:4:9: [alerting].rules: expected an array of tables"},
      {"[[upstreams]]\nname = \"u\"\nendpoints = [\"a:1\"]\nhealth_check = 5\n",
       "t.toml:4:16: [[upstreams]].health_check: expected a table"},
      {"[[upstreams]]\nname = \"u\"\nendpoints = [\"a:1\"]\n[upstreams.health_check]\n"
       "enabled = \"yes\"\n",
       "t.toml:5:11: [upstreams.health_check].enabled: expected a boolean (true or false)"},
      {"[[upstreams]]\nname = 1\n", "t.toml:2:8: [[upstreams]].name: expected a string"},
  });
}

TEST(ErrorsTest, BadDurations) {
  const std::string kMessage = " (expected e.g. \"250ms\", \"5s\", \"2m\", \"1h\", \"1m30s\")";
  std::vector<BadCase> cases;
  for (std::string bad :
       {"5 s", "", "-5s", "5", "5d", "1.5s", "99999999999h", "8761h", "30s1m", "5S"}) {
    cases.push_back(
        {"[proxy]\nheader_timeout = \"" + bad + "\"\n",
         "t.toml:2:18: [proxy].header_timeout: invalid duration \"" + bad + "\"" + kMessage});
  }
  cases.push_back({"[proxy]\nheader_timeout = \"0s\"\n",
                   "t.toml:2:18: [proxy].header_timeout: must be greater than 0s"});
  cases.push_back({"[proxy]\nidle_timeout = \"0ms\"\n",
                   "t.toml:2:16: [proxy].idle_timeout: must be greater than 0s"});
  cases.push_back({P("[alerting]\nevaluation_interval = \"0s\"\n"),
                   "t.toml:4:23: [alerting].evaluation_interval: must be greater than 0s"});
  cases.push_back({P("[sysprobe]\ncache_duration = \"1\"\n"),
                   "t.toml:4:18: [sysprobe].cache_duration: invalid duration \"1\"" + kMessage});
  ExpectErrors(cases);
}

TEST(ErrorsTest, BadAddresses) {
  const std::string kAdmin = " (expected host:port, IPv6 in brackets, port 0..65535)";
  const std::string kEndpoint = " (expected host:port, IPv6 in brackets, port 1..65535)";
  std::vector<BadCase> cases;
  for (std::string bad :
       {"127.0.0.1", "127.0.0.1:65536", "::1:80", "[::1]", "256.1.1.1:80", "host name:80", ""}) {
    cases.push_back({"[admin]\naddress = \"" + bad + "\"\n",
                     "t.toml:2:11: [admin].address: invalid address \"" + bad + "\"" + kAdmin});
  }
  cases.push_back(
      {"[[upstreams]]\nname = \"u\"\nendpoints = [\"127.0.0.1:0\"]\n",
       "t.toml:3:14: [[upstreams]].endpoints: invalid address \"127.0.0.1:0\"" + kEndpoint});
  cases.push_back({"[[upstreams]]\nname = \"u\"\nendpoints = [\"a:1\", \"[::1]8\"]\n",
                   "t.toml:3:21: [[upstreams]].endpoints: invalid address \"[::1]8\"" + kEndpoint});
  cases.push_back({"[[upstreams]]\nname = \"u\"\nendpoints = [\"a:1\", 2]\n",
                   "t.toml:3:21: [[upstreams]].endpoints: expected an array of strings"});
  ExpectErrors(cases);
}

TEST(ErrorsTest, AdminExposedWithoutToken) {
  ExpectErrors({
      {"[admin]\naddress = \"0.0.0.0:8000\"\n",
       "t.toml:2:11: [admin].address 0.0.0.0:8000 is not loopback and [admin].auth_token is "
       "empty: set a token, or allow_unauthenticated_writes = true"},
      {"[admin]\naddress = \"[::]:8000\"\nauth_token = \"\"\n",
       "t.toml:2:11: [admin].address [::]:8000 is not loopback and [admin].auth_token is "
       "empty: set a token, or allow_unauthenticated_writes = true"},
      {"[admin]\nauth_token = \"a b\"\n",
       "t.toml:2:14: [admin].auth_token: must be printable ASCII without spaces (it is sent as "
       "a header)"},
      {"[admin]\nmax_body_bytes = 0\n",
       "t.toml:2:18: [admin].max_body_bytes: 0 is out of range (1024..1073741824)"},
      {"[admin]\ntimeseries_interval = \"50ms\"\n",
       "t.toml:2:23: [admin].timeseries_interval: must be at least 100ms"},
      {"[admin]\ntimeseries_interval = \"2h\"\n",
       "t.toml:2:23: [admin].timeseries_interval: must be at most 1h"},
  });
}

TEST(ErrorsTest, Upstreams) {
  const std::string kU = "[[upstreams]]\nname = \"u\"\n";
  const std::string kHc = kU + "endpoints = [\"a:1\"]\n[upstreams.health_check]\n";
  ExpectErrors({
      {kU + "endpoints = []\n", "t.toml:3:13: upstream \"u\" has no endpoints"},
      {kU, "t.toml:1:1: missing required key \"endpoints\" in [[upstreams]]"},
      {"[[upstreams]]\nendpoints = [\"a:1\"]\n",
       "t.toml:1:1: missing required key \"name\" in [[upstreams]]"},
      {"[[upstreams]]\nname = \"\"\n", "t.toml:2:8: [[upstreams]].name: must not be empty"},
      {"[[upstreams]]\nname = \"a\\u0001\"\n",
       "t.toml:2:8: [[upstreams]].name: \"a\\x01\" must be at most 128 bytes without control "
       "characters"},
      {kU + "endpoints = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
       "t.toml:3:29: duplicate endpoint 127.0.0.1:1 in upstream \"u\""},
      {kU + "endpoints = [\"a:1\"]\n" + kU + "endpoints = [\"a:1\"]\n",
       "t.toml:5:8: duplicate upstream name \"u\" (first defined on line 2)"},
      {kU + "endpoints = [\"a:1\"]\nload_balancing = \"random\"\n",
       "t.toml:4:18: [[upstreams]].load_balancing: \"random\" is not one of \"least_requests\", "
       "\"round_robin\""},
      {kU + "endpoints = [\"a:1\"]\nmax_connections = 0\n",
       "t.toml:4:19: [[upstreams]].max_connections: 0 is out of range (1..100000)"},
      {kU + "endpoints = [\"a:1\"]\nconnect_timeout = \"0s\"\n",
       "t.toml:4:19: [[upstreams]].connect_timeout: must be greater than 0s"},
      {kHc + "interval = \"1s\"\ntimeout = \"2s\"\n",
       "t.toml:6:11: [upstreams.health_check].timeout: 2s is longer than interval 1s"},
      {kHc + "interval = \"500ms\"\n",
       "t.toml:4:1: [upstreams.health_check].timeout: 1s is longer than interval 500ms"},
      {kHc + "healthy_threshold = 0\n",
       "t.toml:5:21: [upstreams.health_check].healthy_threshold: 0 is out of range (1..100)"},
      {kHc + "unhealthy_threshold = 0\n",
       "t.toml:5:23: [upstreams.health_check].unhealthy_threshold: 0 is out of range (1..100)"},
      {kHc + "expected_statuses = [200, 600]\n",
       "t.toml:5:27: [upstreams.health_check].expected_statuses: 600 is out of range (100..599)"},
      {kHc + "expected_statuses = [\"200\"]\n",
       "t.toml:5:22: [upstreams.health_check].expected_statuses: expected an array of integers"},
      {kHc + "expected_statuses = 200\n",
       "t.toml:5:21: [upstreams.health_check].expected_statuses: expected an array of integers"},
      {kHc + "path = \"status\"\n",
       "t.toml:5:8: [upstreams.health_check].path: \"status\" must start with \"/\" and have no "
       "spaces"},
      {kHc + "path = \"/a b\"\n",
       "t.toml:5:8: [upstreams.health_check].path: \"/a b\" must start with \"/\" and have no "
       "spaces"},
  });
}

TEST(ErrorsTest, Listeners) {
  const std::string kU = "upstreams = [{name = \"u\", endpoints = [\"127.0.0.1:1\"]}]\n";
  const std::string kL = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:5\"\n";
  ExpectErrors({
      {kU + kL + "upstream = \"x\"\n",
       "t.toml:5:12: listener \"l\" names upstream \"x\", which is not defined"},
      {kU + kL + "upstream = \"u\"\n" + kL + "upstream = \"u\"\n",
       "t.toml:7:8: duplicate listener name \"l\" (first defined on line 3)"},
      {kU + kL + "upstream = \"u\"\n[[listeners]]\nname = \"m\"\naddress = \"127.0.0.1:5\"\n",
       "t.toml:8:11: listener \"m\" address 127.0.0.1:5 is already used by listener \"l\""},
      {kU + "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:8000\"\nupstream = \"u\"\n",
       "t.toml:4:11: listener \"l\" address 127.0.0.1:8000 is already used by [admin].address"},
      {kU + "[[listeners]]\nname = \"l\"\nupstream = \"u\"\n",
       "t.toml:2:1: missing required key \"address\" in [[listeners]]"},
      {kU + kL, "t.toml:2:1: missing required key \"upstream\" in [[listeners]]"},
  });
}

TEST(ErrorsTest, RoutesSysprobeProcesses) {
  const std::string kR = "[[routes]]\nname = \"a\"\nprefix = \"/a\"\n";
  const std::string kProc = "[[processes]]\nname = \"p\"\n";
  ExpectErrors({
      {P(kR + "[[routes]]\nname = \"a\"\nprefix = \"/b\"\n"),
       "t.toml:7:8: duplicate route name \"a\" (first defined on line 4)"},
      {P(kR + "[[routes]]\nname = \"b\"\nprefix = \"/a\"\n"),
       "t.toml:8:10: duplicate route prefix \"/a\" (first defined on line 5)"},
      {P("[[routes]]\nname = \"a\"\nprefix = \"a\"\n"),
       "t.toml:5:10: [[routes]].prefix: \"a\" must start with \"/\" and have no spaces"},
      {P("[[routes]]\nname = \"a\"\n"),
       "t.toml:3:1: missing required key \"prefix\" in [[routes]]"},
      {P("[sysprobe]\ndisk_paths = [\"/\", \"tmp\"]\n"),
       "t.toml:4:20: [sysprobe].disk_paths: \"tmp\" is not an absolute path"},
      {P("[sysprobe]\ndisk_paths = [\"/\", \"/tmp\", \"/\"]\n"),
       "t.toml:4:28: [sysprobe].disk_paths: \"/\" is listed twice"},
      {P(kProc + "pid = 1\npid_file = \"/x\"\n"),
       "t.toml:3:1: [[processes]] \"p\": set exactly one of pid, pid_file, cmdline_regex"},
      {P(kProc),
       "t.toml:3:1: [[processes]] \"p\": set exactly one of pid, pid_file, cmdline_regex"},
      {P(kProc + "pid = 1\npid_file = \"/x\"\ncmdline_regex = \"x\"\n"),
       "t.toml:3:1: [[processes]] \"p\": set exactly one of pid, pid_file, cmdline_regex"},
      {P(kProc + "pid = 0\n"), "t.toml:5:7: [[processes]].pid: 0 is out of range (1..2147483647)"},
      {P(kProc + "pid_file = \"\"\n"), "t.toml:5:12: [[processes]].pid_file: must not be empty"},
      {P(kProc + "cmdline_regex = \"(\"\n"),
       "t.toml:5:17: [[processes]].cmdline_regex: invalid regular expression \"(\": Mismatched '(' "
       "and ')' "
       "in regular expression"},
      {P(kProc + "cmdline_regex = \"[a\"\n"),
       "t.toml:5:17: [[processes]].cmdline_regex: invalid regular expression \"[a\": Unexpected "
       "character "
       "within '[...]' in regular expression"},
      {P(kProc + "cmdline_regex = \"a{2,1}\"\n"),
       "t.toml:5:17: [[processes]].cmdline_regex: invalid regular expression \"a{2,1}\": Invalid "
       "range in '{}' in regular expression"},
      {P(kProc + "cmdline_regex = \"a{1000}{1000}\"\n"),
       "t.toml:5:17: [[processes]].cmdline_regex: invalid regular expression "
       "\"a{1000}{1000}\": too complex"},
      {P(kProc + "cmdline_regex = \"" + std::string(1025, 'a') + "\"\n"),
       "t.toml:5:17: [[processes]].cmdline_regex: longer than 1024 bytes"},
      {P(kProc + "pid = 1\n" + kProc + "pid = 2\n"),
       "t.toml:7:8: duplicate process name \"p\" (first defined on line 4)"},
  });
}

TEST(ErrorsTest, SpeedrunAndSlaRanges) {
  ExpectErrors({
      {P("[speedrun]\nwindow_experiments = 0\n"),
       "t.toml:4:22: [speedrun].window_experiments: 0 is out of range (1..10000000)"},
      {P("[speedrun]\nwindow_patterns = -5\n"),
       "t.toml:4:19: [speedrun].window_patterns: -5 is out of range (1..10000000)"},
      {P("[speedrun]\nmax_strategy_labels = 0\n"),
       "t.toml:4:23: [speedrun].max_strategy_labels: 0 is out of range (1..10000)"},
      {P("[speedrun]\nretention_rows = 0\n"),
       "t.toml:4:18: [speedrun].retention_rows: 0 is out of range (1..1000000000000)"},
      {P("[sla]\nexperiment_success_rate_min = 100.5\n"),
       "t.toml:4:31: [sla].experiment_success_rate_min: 100.5 is out of range (0..100)"},
      {P("[sla]\ntarget_compliance_min = -1\n"),
       "t.toml:4:25: [sla].target_compliance_min: -1 is out of range (0..100)"},
      {P("[sla]\nsystem_availability_min = 101\n"),
       "t.toml:4:27: [sla].system_availability_min: 101 is out of range (0..100)"},
      {P("[sla]\npattern_quality_min = 1.5\n"),
       "t.toml:4:23: [sla].pattern_quality_min: 1.5 is out of range (0..1)"},
      {P("[sla]\npattern_quality_min = nan\n"),
       "t.toml:4:23: [sla].pattern_quality_min: nan is out of range (0..1)"},
      {P("[sla]\nscript_compilation_target_ms = -0.5\n"),
       "t.toml:4:32: [sla].script_compilation_target_ms: -0.5 is out of range (0..86400000)"},
      {P("[proxy]\nworkers = -1\n"), "t.toml:4:11: [proxy].workers: -1 is out of range (0..1024)"},
      {P("[proxy]\nmax_header_bytes = 1023\n"),
       "t.toml:4:20: [proxy].max_header_bytes: 1023 is out of range (1024..1048576)"},
      {P("[proxy]\nmax_header_bytes = 1048577\n"),
       "t.toml:4:20: [proxy].max_header_bytes: 1048577 is out of range (1024..1048576)"},
  });
}

TEST(ErrorsTest, AlertRules) {
  const std::string kHead = "[[alerting.rules]]\nid = \"r\"\n";
  const std::string kTail = "operator = \">\"\nthreshold = 1\n";
  auto rule = [&](const std::string& metric_line, const std::string& extra) {
    return P(kHead + metric_line + kTail + extra);
  };
  const std::string kM = "metric = \"m\"\n";
  ExpectErrors({
      {P("[[alerting.rules]]\nmetric = \"m\"\n" + kTail),
       "t.toml:3:1: missing required key \"id\" in [[alerting.rules]]"},
      {P("[[alerting.rules]]\nid = \"a b\"\n"),
       "t.toml:4:6: [[alerting.rules]].id: \"a b\" may contain only letters, digits, '_', '-' "
       "and '.'"},
      {P(std::string(kRule) + kRule),
       "t.toml:9:6: duplicate alert rule id \"r\" (first defined on line 4)"},
      {P(kHead + kTail), "t.toml:3:1: missing required key \"metric\" in [[alerting.rules]]"},
      {P(kHead + kM + "threshold = 1\n"),
       "t.toml:3:1: missing required key \"operator\" in [[alerting.rules]]"},
      {P(kHead + kM + "operator = \"=>\"\nthreshold = 1\n"),
       "t.toml:6:12: [[alerting.rules]].operator: \"=>\" is not one of >, <, >=, <=, ==, !="},
      {P(kHead + kM + "operator = \">\"\n"),
       "t.toml:3:1: missing required key \"threshold\" in [[alerting.rules]]"},
      {P(kHead + kM + "operator = \">\"\nthreshold = \"1\"\n"),
       "t.toml:7:13: [[alerting.rules]].threshold: expected a number"},
      {P(kHead + kM + "operator = \">\"\nthreshold = inf\n"),
       "t.toml:7:13: [[alerting.rules]].threshold: must be a finite number"},
      {rule(kM, "severity = \"fatal\"\n"),
       "t.toml:8:12: [[alerting.rules]].severity: \"fatal\" is not one of info, warning, critical"},
      {rule(kM, "for = \"5\"\n"),
       "t.toml:8:7: [[alerting.rules]].for: invalid duration \"5\" (expected e.g. \"250ms\", "
       "\"5s\", \"2m\", \"1h\", \"1m30s\")"},
      {rule(kM, "keep_firing_for = \"-1s\"\n"),
       "t.toml:8:19: [[alerting.rules]].keep_firing_for: invalid duration \"-1s\" (expected e.g. "
       "\"250ms\", \"5s\", \"2m\", \"1h\", \"1m30s\")"},
      {rule(kM, "aggregation = \"p99\"\n"),
       "t.toml:8:15: [[alerting.rules]].aggregation: \"p99\" is not one of none, max, min, sum, "
       "avg, count"},
      // Selector errors point at the bad character when the string is plain...
      {rule("metric = \"x{a}\"\n", ""),
       "t.toml:5:14: [[alerting.rules]].metric: invalid selector \"x{a}\": expected '=' after "
       "label name \"a\""},
      {rule("metric = 'x{a=\"1\",a=\"2\"}'\n", ""),
       "t.toml:5:19: [[alerting.rules]].metric: invalid selector \"x{a=\\\"1\\\",a=\\\"2\\\"}\": "
       "duplicate label \"a\""},
      {rule("metric = \"\"\n", ""), "t.toml:5:10: [[alerting.rules]].metric: must not be empty"},
      // ...and at the string when escapes make the columns differ.
      {rule("metric = \"x{a=\\\"1\\\"} y\"\n", ""),
       "t.toml:5:10: [[alerting.rules]].metric: invalid selector \"x{a=\\\"1\\\"} y\": "
       "unexpected text after '}'"},
      {rule(kM, "labels = { \"bad-key\" = \"x\" }\n"),
       "t.toml:8:12: [[alerting.rules]].labels: \"bad-key\" is not a valid label name "
       "([a-zA-Z_][a-zA-Z0-9_]*)"},
      {rule(kM, "labels = { team = 1 }\n"),
       "t.toml:8:19: [[alerting.rules]].labels.team: expected a string"},
      {rule(kM, "annotations = { summary = true }\n"),
       "t.toml:8:27: [[alerting.rules]].annotations.summary: expected a string"},
      {rule(kM, "labels = \"x\"\n"), "t.toml:8:10: [[alerting.rules]].labels: expected a table"},
  });
}

TEST(ErrorsTest, Notifiers) {
  const std::string kHostPort =
      ": expected http://host:port[/path] (IPv6 in brackets, port 1..65535)";
  ExpectErrors({
      {P("[[alerting.alertmanagers]]\nurl = \"ftp://am:9093\"\n"),
       "t.toml:4:7: [[alerting.alertmanagers]].url: invalid URL \"ftp://am:9093\": only "
       "http:// and https:// URLs are supported"},
      {P("[[alerting.alertmanagers]]\nurl = \"https://am\"\n"),
       "t.toml:4:7: [[alerting.alertmanagers]].url: invalid URL \"https://am\": expected "
       "https://host:port[/path] (IPv6 in brackets, port 1..65535)"},
      {P("[[alerting.webhooks]]\nurl = \"http://hooks/hook\"\n"),
       "t.toml:4:7: [[alerting.webhooks]].url: invalid URL \"http://hooks/hook\"" + kHostPort},
      // The notifier used to refuse these only at start: the loader refuses them now.
      {P("[[alerting.webhooks]]\nurl = \"http://hooks:9999/hook?token=x\"\n"),
       "t.toml:4:7: [[alerting.webhooks]].url: invalid URL \"http://hooks:9999/hook?token=x\": "
       "queries and fragments are not supported"},
      {P("[[alerting.alertmanagers]]\nurl = \"http://am:9093/#top\"\n"),
       "t.toml:4:7: [[alerting.alertmanagers]].url: invalid URL \"http://am:9093/#top\": queries "
       "and fragments are not supported"},
      {P("[[alerting.alertmanagers]]\nurl = \"http://admin:pw@am:9093\"\n"),
       "t.toml:4:7: [[alerting.alertmanagers]].url: invalid URL \"http://admin:pw@am:9093\": user "
       "info is not supported"},
      {P("[[alerting.webhooks]]\nurl = \"http://hooks:1\"\ntimeout = \"0s\"\n"),
       "t.toml:5:11: [[alerting.webhooks]].timeout: must be greater than 0s"},
      {P("[[alerting.webhooks]]\ntimeout = \"1s\"\n"),
       "t.toml:3:1: missing required key \"url\" in [[alerting.webhooks]]"},
      {P("[alerting]\nalertmanagers = { url = \"http://a:1\" }\n"),
       "t.toml:4:17: [alerting].alertmanagers: expected an array of tables"},
  });
}

// TLS and auth of a notifier target: each check names the key it is about.
TEST(ErrorsTest, NotifierTlsAndAuth) {
  const std::string dir = ::testing::TempDir();
  const std::string empty = dir + "/speedmon_errors_empty_token";
  const std::string token = dir + "/speedmon_errors_token";
  std::ofstream(empty, std::ios::trunc).close();
  std::ofstream(token, std::ios::trunc) << "secret\n";
  const std::string hook = "[[alerting.webhooks]]\nurl = \"https://h:443/x\"\n";
  const std::string plain = "[[alerting.webhooks]]\nurl = \"http://h:80/x\"\n";
  auto w = [&](const std::string& keys) { return P(hook + keys); };
  const std::string f = "t.toml:5:";
  const std::string k = ": [[alerting.webhooks]].";
  ExpectErrors({
      {P(plain + "tls_ca_file = \"/x\"\n"), f + "15" + k + "tls_ca_file: needs an https:// url"},
      {P(plain + "tls_insecure_skip_verify = false\n"),
       f + "28" + k + "tls_insecure_skip_verify: needs an https:// url"},
      {w("tls_cert_file = \"" + token + "\"\n"),
       f + "17" + k + "tls_cert_file: needs tls_key_file too"},
      {w("tls_key_file = \"" + token + "\"\n"),
       f + "16" + k + "tls_key_file: needs tls_cert_file too"},
      {w("tls_ca_file = \"/nonexistent/ca.pem\"\n"),
       f + "15" + k +
           "tls_ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory"},
      {w("tls_ca_file = \"/\"\n"),
       f + "15" + k + "tls_ca_file: cannot read \"/\": not a regular file"},
      {w("tls_server_name = \"a b\"\n"),
       f + "19" + k + "tls_server_name: \"a b\" is not a host name"},
      {w("tls_insecure_skip_verify = \"yes\"\n"),
       f + "28" + k + "tls_insecure_skip_verify: expected a boolean (true or false)"},
      {w("tls_ca = \"/x\"\n"), "t.toml:5:1: unknown key \"tls_ca\" in [[alerting.webhooks]]"},
      {w("basic_auth_password = \"pw\"\n"),
       f + "23" + k + "basic_auth_password: needs basic_auth_username"},
      {w("basic_auth_username = \"a:b\"\n"),
       f + "23" + k + "basic_auth_username: must not contain ':' or control characters"},
      {w("basic_auth_username = \"u\"\nbasic_auth_password = \"p\"\n"
         "basic_auth_password_file = \"" +
         token + "\"\n"),
       "t.toml:7:28" + k +
           "basic_auth_password_file: set basic_auth_password or basic_auth_password_file, "
           "not both"},
      {w("basic_auth_username = \"u\"\nbasic_auth_password_file = \"/nonexistent/pw\"\n"),
       "t.toml:6:28" + k +
           "basic_auth_password_file: cannot read \"/nonexistent/pw\": No such file or "
           "directory"},
      {w("basic_auth_username = \"u\"\nbearer_token = \"t\"\n"),
       "t.toml:6:16" + k +
           "bearer_token: cannot be combined with basic_auth_username (one Authorization header)"},
      {w("basic_auth_username = \"u\"\nbearer_token_file = \"" + token + "\"\n"),
       "t.toml:6:21" + k +
           "bearer_token_file: cannot be combined with basic_auth_username (one Authorization "
           "header)"},
      {w("bearer_token = \"t\"\nbearer_token_file = \"" + token + "\"\n"),
       "t.toml:6:21" + k + "bearer_token_file: set bearer_token or bearer_token_file, not both"},
      {w("bearer_token_file = \"" + empty + "\"\n"),
       f + "21" + k + "bearer_token_file: \"" + empty + "\" is empty"},
      {w("bearer_token = \"a\\nb\"\n"),
       f + "16" + k + "bearer_token: must not contain control characters"},
      {w("bearer_token = \"\"\n"), f + "16" + k + "bearer_token: must not be empty"},
  });
}

// [admin].auth_token_file: read with the notifiers' secret-file reader, each error at the key.
TEST(ErrorsTest, AdminAuthTokenFile) {
  const std::string dir = ::testing::TempDir();
  const std::string empty = dir + "/speedmon_errors_admin_empty";
  const std::string newline = dir + "/speedmon_errors_admin_newline";
  const std::string spaced = dir + "/speedmon_errors_admin_spaced";
  const std::string token = dir + "/speedmon_errors_admin_token";
  std::ofstream(empty, std::ios::trunc).close();
  std::ofstream(newline, std::ios::trunc) << "\n";
  std::ofstream(spaced, std::ios::trunc) << "a b\n";
  std::ofstream(token, std::ios::trunc) << "secret\n";
  auto a = [](const std::string& keys) { return "[admin]\n" + keys; };
  auto file = [](const std::string& path) { return "auth_token_file = \"" + path + "\"\n"; };
  ExpectErrors({
      {a(file("/nonexistent/token")),
       "t.toml:2:19: [admin].auth_token_file: cannot read \"/nonexistent/token\": No such file "
       "or directory"},
      {a(file("/")), "t.toml:2:19: [admin].auth_token_file: cannot read \"/\": not a regular file"},
      {a(file(empty)), "t.toml:2:19: [admin].auth_token_file: \"" + empty + "\" is empty"},
      {a(file(newline)), "t.toml:2:19: [admin].auth_token_file: \"" + newline + "\" is empty"},
      {a(file(spaced)), "t.toml:2:19: [admin].auth_token_file: \"" + spaced +
                            "\" must hold printable ASCII without spaces (it is sent as a header)"},
      {a("auth_token_file = \"\"\n"), "t.toml:2:19: [admin].auth_token_file: must not be empty"},
      {a("auth_token_file = 1\n"), "t.toml:2:19: [admin].auth_token_file: expected a string"},
      {a("auth_token = \"inline\"\n" + file(token)),
       "t.toml:3:19: [admin].auth_token_file: set auth_token or auth_token_file, not both"},
      {a(file(token) + "auth_token = \"inline\"\n"),
       "t.toml:2:19: [admin].auth_token_file: set auth_token or auth_token_file, not both"},
  });
}

// SPEEDMON_AUTH_TOKEN is checked like the key it overrides; it has no place in the file.
TEST(ErrorsTest, AdminAuthTokenEnv) {
  ASSERT_EQ(::setenv("SPEEDMON_AUTH_TOKEN", "a b", 1), 0);
  ExpectErrors({
      {"",
       "t.toml: SPEEDMON_AUTH_TOKEN: must be printable ASCII without spaces (it is sent as a "
       "header)"},
      {"[admin]\nauth_token = \"t\"\n",
       "t.toml: SPEEDMON_AUTH_TOKEN: must be printable ASCII without spaces (it is sent as a "
       "header)"},
  });
  ASSERT_EQ(::setenv("SPEEDMON_AUTH_TOKEN", "\n", 1), 0);
  ExpectErrors({{"",
                 "t.toml: SPEEDMON_AUTH_TOKEN: must be printable ASCII without spaces (it is "
                 "sent as a header)"}});
  // A file error is reported even when the environment would override the file.
  ASSERT_EQ(::setenv("SPEEDMON_AUTH_TOKEN", "env-token", 1), 0);
  ExpectErrors({{"[admin]\nauth_token_file = \"/nonexistent/token\"\n",
                 "t.toml:2:19: [admin].auth_token_file: cannot read \"/nonexistent/token\": No "
                 "such file or directory"}});
  ASSERT_EQ(::unsetenv("SPEEDMON_AUTH_TOKEN"), 0);
}

// What alerting refuses in a rule (config::CheckAlertRule) the loader refuses, at the key.
TEST(ErrorsTest, AlertRuleConstraintsAlertingShares) {
  const std::string kHead = "[[alerting.rules]]\nid = \"r\"\n";
  const std::string kTail = "operator = \">\"\nthreshold = 1\n";
  auto rule = [&](const std::string& metric, const std::string& extra) {
    return P(kHead + "metric = \"" + metric + "\"\n" + kTail + extra);
  };
  const std::string kKnown = "a dotted name listed in docs/API.md (e.g. system.cpu_percent)";
  std::string labels = "labels = {";
  for (int i = 0; i < 33; ++i) labels += (i ? ", l" : " l") + std::to_string(i) + " = \"v\"";
  labels += " }\n";
  ExpectErrors({
      {rule("speedrun.nope", ""),
       "t.toml:5:10: [[alerting.rules]].metric: unknown dotted metric name \"speedrun.nope\"; use "
       "an exported metric name or " +
           kKnown},
      {P(kHead + "metric = 'system.cpu{cpu=\"0\"}'\n" + kTail),
       "t.toml:5:10: [[alerting.rules]].metric: unknown dotted metric name \"system.cpu\"; use an "
       "exported metric name or " +
           kKnown},
      {rule("m", "aggregation = \"median\"\n"),
       "t.toml:8:15: [[alerting.rules]].aggregation: \"median\" is not one of none, max, min, "
       "sum, avg, count"},
      {rule("m", "labels = { alertname = \"x\" }\n"),
       "t.toml:8:10: [[alerting.rules]].labels: label \"alertname\" is set by the rule itself"},
      {rule("m", labels), "t.toml:8:10: [[alerting.rules]].labels: at most 32 labels"},
      {rule("m", "labels = { team = \"" + std::string(4097, 'x') + "\" }\n"),
       "t.toml:8:10: [[alerting.rules]].labels: label \"team\" is too long"},
      {rule("m", "annotations = { \"run-book\" = \"x\" }\n"),
       "t.toml:8:15: [[alerting.rules]].annotations: invalid annotation name \"run-book\""},
      {rule("m", "name = \"" + std::string(257, 'n') + "\"\n"),
       "t.toml:8:8: [[alerting.rules]].name: name must be 1 to 256 characters"},
      {rule("m", "description = \"" + std::string(4097, 'd') + "\"\n"),
       "t.toml:8:15: [[alerting.rules]].description: description is longer than 4096 characters"},
  });
}

// The status carries the key at fault as messages name it, "" when the error is not at
// one key; the code is kInvalidArgument for every mistake in the text.
TEST(ErrorsTest, FieldNamesTheKey) {
  EXPECT_EQ(LoadFromString(P("[admin]\nmax_body_bytes = 1\n"), "t.toml").status(),
            base::InvalidArgumentError(
                "t.toml:4:18: [admin].max_body_bytes: 1 is out of range (1024..1073741824)",
                "[admin].max_body_bytes"));
  EXPECT_EQ(LoadFromString(P("[sysprobe]\ndisk_paths = [\"/\", \"x\"]\n"), "t.toml").status(),
            base::InvalidArgumentError(
                "t.toml:4:20: [sysprobe].disk_paths: \"x\" is not an absolute path",
                "[sysprobe].disk_paths"));
  EXPECT_EQ(
      LoadFromString(P("[[alerting.rules]]\nid = \"r\"\nmetric = \"x{a}\"\n"), "t.toml").status(),
      base::InvalidArgumentError("t.toml:5:14: [[alerting.rules]].metric: invalid selector "
                                 "\"x{a}\": expected '=' after label name \"a\"",
                                 "[[alerting.rules]].metric"));
  EXPECT_EQ(LoadFromString("[[bad", "t.toml").status().field(), "");
}

TEST(ErrorsTest, ListsAreBounded) {
  std::string text = P("");
  for (int i = 0; i < 257; ++i) {
    text += "[[routes]]\nname = \"r" + std::to_string(i) + "\"\nprefix = \"/r" + std::to_string(i) +
            "\"\n";
  }
  // The 257th [[routes]] header is at line 3 + 256 * 3.
  ExpectErrors({{text, "t.toml:771:1: routes: too many entries (at most 256)"}});
}

}  // namespace
}  // namespace speedmon::config
