// Tests that good configs load into exactly the values written, and that defaults apply
// where a key is absent. The configs are the files of config/testdata/valid/
// (test_configs.h). Single-threaded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"
#include "config/test_configs.h"

namespace speedmon::config {
namespace {

Config MustLoad(const std::string& text) {
  base::StatusOr<Config> r = LoadFromString(text, "t.toml");
  if (!r.ok()) ADD_FAILURE() << r.status().ToString();
  return r.ok() ? *r : Config{};
}

TEST(ValidConfigsTest, EveryFileLoads) {
  std::vector<std::string> names = ValidConfigNames();
  EXPECT_GE(names.size(), 13u);
  for (const std::string& name : names) {
    base::StatusOr<Config> r = LoadFromString(ValidConfigText(name), name + ".toml");
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  }
}

TEST(LoadTest, FullConfigReadsEveryKey) {
  // Every key of the schema, none at its default value.
  Config c = MustLoad(ValidConfigText("full"));
  EXPECT_EQ(c.source, "t.toml");

  EXPECT_EQ(c.admin.address.ToString(), "0.0.0.0:9000");
  EXPECT_EQ(c.admin.auth_token, "s3cret-token");
  EXPECT_TRUE(c.admin.allow_unauthenticated_writes);
  EXPECT_EQ(c.admin.max_body_bytes, 2048u);
  EXPECT_EQ(c.admin.timeseries_interval, Duration(2000));

  EXPECT_EQ(c.proxy.workers, 3);
  EXPECT_EQ(c.proxy.max_connections, 500u);
  EXPECT_EQ(c.proxy.header_timeout, Duration(2000));
  EXPECT_EQ(c.proxy.idle_timeout, Duration(90000));
  EXPECT_EQ(c.proxy.max_header_bytes, 1024u);
  EXPECT_EQ(c.proxy.drain_timeout, Duration(0));
  EXPECT_EQ(c.proxy.recent_requests, 0u);
  EXPECT_EQ(c.proxy.access_log, "-");
  EXPECT_FALSE(c.proxy.record_requests);
  EXPECT_EQ(c.proxy.dns_refresh, Duration(2000));

  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "a");
  EXPECT_EQ(c.listeners[0].address.host, "::1");
  EXPECT_EQ(c.listeners[0].address.port, 0);
  EXPECT_EQ(c.listeners[0].upstream, "pool");
  EXPECT_EQ(c.listeners[1].address.ToString(), "127.0.0.1:0");

  ASSERT_EQ(c.upstreams.size(), 1u);
  const UpstreamConfig& u = c.upstreams[0];
  EXPECT_EQ(u.name, "pool");
  EXPECT_EQ(u.dns_refresh, Duration(750));
  ASSERT_EQ(u.endpoints.size(), 3u);
  EXPECT_EQ(u.endpoints[0].ToString(), "127.0.0.1:8081");
  EXPECT_EQ(u.endpoints[1].ToString(), "[::1]:8082");
  EXPECT_EQ(u.endpoints[2].ToString(), "emulator_3:8083");
  EXPECT_EQ(u.connect_timeout, Duration(250));
  EXPECT_EQ(u.request_timeout, Duration(120000));
  EXPECT_EQ(u.max_connections, 7u);
  EXPECT_EQ(u.load_balancing, LoadBalancing::kRoundRobin);
  EXPECT_FALSE(u.health_check.enabled);
  EXPECT_EQ(u.health_check.path, "/healthz?deep=1");
  EXPECT_EQ(u.health_check.interval, Duration(10000));
  EXPECT_EQ(u.health_check.timeout, Duration(10000));
  EXPECT_EQ(u.health_check.healthy_threshold, 2u);
  EXPECT_EQ(u.health_check.unhealthy_threshold, 5u);
  EXPECT_EQ(u.health_check.expected_statuses, (std::vector<uint16_t>{200, 204}));
  EXPECT_EQ(c.UpstreamIndex("pool"), 0);
  EXPECT_EQ(c.UpstreamIndex("nope"), -1);

  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[1].name, "checkpoint_load");
  EXPECT_EQ(c.routes[1].prefix, "/checkpoint/load");

  EXPECT_EQ(c.sysprobe.cache_duration, Duration(0));
  EXPECT_EQ(c.sysprobe.disk_paths, (std::vector<std::string>{"/", "/var/lib/docker"}));

  ASSERT_EQ(c.processes.size(), 3u);
  EXPECT_EQ(c.processes[0].pid, 4242);
  EXPECT_EQ(c.processes[0].pid_file, "");
  EXPECT_EQ(c.processes[1].pid, std::nullopt);
  EXPECT_EQ(c.processes[1].pid_file, "/run/emu.pid");
  EXPECT_EQ(c.processes[2].name, "by-cmdline");
  EXPECT_EQ(c.processes[2].cmdline_regex, "pokemon-gym.*808[1-4]");

  EXPECT_EQ(c.speedrun.store_path, "");
  EXPECT_EQ(c.speedrun.window_experiments, 10u);
  EXPECT_EQ(c.speedrun.window_patterns, 20u);
  EXPECT_EQ(c.speedrun.max_strategy_labels, 4u);
  EXPECT_EQ(c.speedrun.retention_rows, 5000u);

  EXPECT_EQ(c.sla.experiment_success_rate_min, 90.0);
  EXPECT_EQ(c.sla.script_compilation_target_ms, 80.5);
  EXPECT_EQ(c.sla.checkpoint_loading_target_ms, 400.0);
  EXPECT_EQ(c.sla.target_compliance_min, 99.5);
  EXPECT_EQ(c.sla.pattern_quality_min, 0.0);
  EXPECT_EQ(c.sla.system_availability_min, 100.0);

  const AlertingConfig& a = c.alerting;
  EXPECT_EQ(a.evaluation_interval, Duration(5000));
  EXPECT_EQ(a.resend_interval, Duration(120000));
  EXPECT_EQ(a.resolved_retention, Duration(3600000));
  EXPECT_FALSE(a.default_rules);
  ASSERT_EQ(a.rules.size(), 2u);
  const AlertRuleConfig& r = a.rules[0];
  EXPECT_EQ(r.id, "emu1_down");
  EXPECT_EQ(r.name, "Emulator 1 down");
  EXPECT_EQ(r.description, "emulator-1 failed its health checks");
  EXPECT_EQ(r.metric, "pokemon_speedrun_upstream_healthy");
  EXPECT_EQ(r.match_labels, (std::map<std::string, std::string>{{"upstream", "emulator-1"},
                                                                {"endpoint", "127.0.0.1:8081"}}));
  EXPECT_EQ(r.aggregation, "min");
  EXPECT_EQ(r.op, CompareOp::kLt);
  EXPECT_EQ(r.threshold, 1.0);
  EXPECT_EQ(r.for_duration, Duration(30000));
  EXPECT_EQ(r.keep_firing_for, Duration(60000));
  EXPECT_EQ(r.severity, Severity::kCritical);
  EXPECT_EQ(r.labels, (std::map<std::string, std::string>{{"team", "speedrun"}, {"page", "yes"}}));
  EXPECT_EQ(r.annotations,
            (std::map<std::string, std::string>{{"summary", "emulator-1 is down"},
                                                {"runbook_url", "http://wiki/emu"}}));
  const AlertRuleConfig& r2 = a.rules[1];
  EXPECT_EQ(r2.id, "cpu");
  EXPECT_EQ(r2.name, "cpu");  // defaults to the id
  EXPECT_EQ(r2.metric, "system.cpu_percent");
  EXPECT_TRUE(r2.match_labels.empty());
  EXPECT_EQ(r2.aggregation, "");  // per series unless the rule asks to aggregate
  EXPECT_EQ(r2.op, CompareOp::kGe);
  EXPECT_EQ(r2.threshold, 85.5);
  EXPECT_EQ(r2.for_duration, Duration(0));
  EXPECT_EQ(r2.severity, Severity::kWarning);
  ASSERT_EQ(a.alertmanagers.size(), 1u);
  EXPECT_EQ(a.alertmanagers[0].url, "http://127.0.0.1:9093");
  EXPECT_EQ(a.alertmanagers[0].timeout, Duration(3000));
  ASSERT_EQ(a.webhooks.size(), 1u);
  EXPECT_EQ(a.webhooks[0].url, "http://hooks:9999/hook");
  EXPECT_EQ(a.webhooks[0].timeout, Duration(2000));
}

// The notifier's TLS and auth keys land in HttpClientConfig; secret files are read at
// each load (start and SIGHUP alike), trailing newline trimmed.
TEST(LoadTest, NotifierTlsAndAuthAndSecretFiles) {
  const std::string dir = ::testing::TempDir();
  const std::string pem = dir + "/speedmon_load_any.pem";  // read by curl, not by Load
  const std::string token = dir + "/speedmon_load_token";
  const std::string password = dir + "/speedmon_load_password";
  std::ofstream(pem, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\n";
  std::ofstream(token, std::ios::trunc) << "tok-1\n";
  std::ofstream(password, std::ios::trunc) << "pw 1\r\n\n";
  const std::string text =
      "listeners = [{name = \"l\", address = \"127.0.0.1:0\", upstream = \"u\"}]\n"
      "upstreams = [{name = \"u\", endpoints = [\"127.0.0.1:1\"]}]\n"
      "[[alerting.alertmanagers]]\n"
      "url = \"https://am.example:9093\"\n"
      "tls_ca_file = \"" +
      pem +
      "\"\n"
      "tls_cert_file = \"" +
      pem +
      "\"\n"
      "tls_key_file = \"" +
      pem +
      "\"\n"
      "tls_server_name = \"alertmanager.internal\"\n"
      "basic_auth_username = \"speedmon\"\n"
      "basic_auth_password_file = \"" +
      password +
      "\"\n"
      "[[alerting.webhooks]]\n"
      "url = \"https://127.0.0.1:8443/hook\"\n"
      "tls_insecure_skip_verify = true\n"
      "bearer_token_file = \"" +
      token +
      "\"\n"
      "[[alerting.webhooks]]\n"
      "url = \"http://127.0.0.1:9999/hook\"\n"
      "bearer_token = \"inline\"\n";
  Config c = MustLoad(text);
  ASSERT_EQ(c.alerting.alertmanagers.size(), 1u);
  const HttpClientConfig& am = c.alerting.alertmanagers[0].http;
  EXPECT_EQ(am.tls_ca_file, pem);
  EXPECT_EQ(am.tls_cert_file, pem);
  EXPECT_EQ(am.tls_key_file, pem);
  EXPECT_EQ(am.tls_server_name, "alertmanager.internal");
  EXPECT_FALSE(am.tls_insecure_skip_verify);
  EXPECT_EQ(am.basic_auth_username, "speedmon");
  EXPECT_EQ(am.basic_auth_password, "pw 1");
  EXPECT_EQ(am.basic_auth_password_file, password);
  EXPECT_EQ(am.bearer_token, "");
  ASSERT_EQ(c.alerting.webhooks.size(), 2u);
  const HttpClientConfig& hook = c.alerting.webhooks[0].http;
  EXPECT_TRUE(hook.tls_insecure_skip_verify);
  EXPECT_EQ(hook.tls_ca_file, "");
  EXPECT_EQ(hook.bearer_token, "tok-1");
  EXPECT_EQ(hook.bearer_token_file, token);
  EXPECT_EQ(hook.basic_auth_username, "");
  EXPECT_EQ(c.alerting.webhooks[1].http.bearer_token, "inline");

  // A reload reads the files again.
  std::ofstream(token, std::ios::trunc) << "tok-2";
  Config again = MustLoad(text);
  EXPECT_EQ(again.alerting.webhooks[0].http.bearer_token, "tok-2");
  EXPECT_FALSE(again.alerting.webhooks[0].http == hook);
}

// [admin]: SPEEDMON_AUTH_TOKEN over auth_token_file over auth_token. The file is read at
// each load (start and SIGHUP alike), trailing newline trimmed.
TEST(LoadTest, AdminAuthTokenFromFileAndEnvironment) {
  ASSERT_EQ(::unsetenv("SPEEDMON_AUTH_TOKEN"), 0);
  const std::string pool =
      "listeners = [{name = \"l\", address = \"127.0.0.1:0\", upstream = \"u\"}]\n"
      "upstreams = [{name = \"u\", endpoints = [\"127.0.0.1:1\"]}]\n";
  const std::string token = ::testing::TempDir() + "/speedmon_load_admin_token";
  std::ofstream(token, std::ios::trunc) << "from-file\n";
  const std::string from_file = pool + "[admin]\nauth_token_file = \"" + token + "\"\n";
  const std::string inline_token = pool + "[admin]\nauth_token = \"inline\"\n";
  // auth_token = "" counts as unset: the default config writes it.
  const std::string empty_inline =
      pool + "[admin]\nauth_token = \"\"\nauth_token_file = \"" + token + "\"\n";

  Config c = MustLoad(from_file);
  EXPECT_EQ(c.admin.auth_token, "from-file");
  EXPECT_EQ(c.admin.auth_token_file, token);
  EXPECT_EQ(MustLoad(empty_inline).admin.auth_token, "from-file");
  EXPECT_EQ(MustLoad(inline_token).admin.auth_token, "inline");
  EXPECT_EQ(MustLoad(inline_token).admin.auth_token_file, "");

  std::ofstream(token, std::ios::trunc) << "rotated\r\n";
  EXPECT_EQ(MustLoad(from_file).admin.auth_token, "rotated");

  // A non-loopback admin address is fine with a token from the file.
  EXPECT_EQ(
      MustLoad(pool + "[admin]\naddress = \"0.0.0.0:8000\"\nauth_token_file = \"" + token + "\"\n")
          .admin.auth_token,
      "rotated");

  ASSERT_EQ(::setenv("SPEEDMON_AUTH_TOKEN", "from-env\n", 1), 0);
  EXPECT_EQ(MustLoad(from_file).admin.auth_token, "from-env");
  EXPECT_EQ(MustLoad(from_file).admin.auth_token_file, token);
  EXPECT_EQ(MustLoad(inline_token).admin.auth_token, "from-env");
  EXPECT_EQ(MustLoad(pool).admin.auth_token, "from-env");  // no [admin] table at all
  // The environment's token is a token for the non-loopback check too.
  EXPECT_EQ(MustLoad(pool + "[admin]\naddress = \"0.0.0.0:8000\"\n").admin.auth_token, "from-env");
  ASSERT_EQ(::setenv("SPEEDMON_AUTH_TOKEN", "", 1), 0);  // empty = unset
  EXPECT_EQ(MustLoad(inline_token).admin.auth_token, "inline");
  ASSERT_EQ(::unsetenv("SPEEDMON_AUTH_TOKEN"), 0);
  EXPECT_EQ(MustLoad(pool).admin.auth_token, "");
}

TEST(LoadTest, UpstreamDnsRefreshDefaultsToTheProxyOne) {
  Config c = MustLoad(
      "[proxy]\ndns_refresh = \"1s\"\n"
      "[[upstreams]]\nname = \"a\"\nendpoints = [\"emu-a:1\"]\n"
      "[[upstreams]]\nname = \"b\"\nendpoints = [\"emu-b:1\"]\ndns_refresh = \"300ms\"\n"
      "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\nupstream = \"a\"\n");
  ASSERT_EQ(c.upstreams.size(), 2u);
  EXPECT_EQ(c.upstreams[0].dns_refresh, Duration(1000));
  EXPECT_EQ(c.upstreams[1].dns_refresh, Duration(300));
  EXPECT_FALSE(LoadFromString("[proxy]\ndns_refresh = \"50ms\"\n", "t.toml").ok());
}

TEST(LoadTest, MinimalConfigTakesDefaults) {
  Config c = MustLoad(ValidConfigText("minimal"));
  const Config d;  // the struct defaults, which are the documented ones
  EXPECT_EQ(c.admin.address.ToString(), "127.0.0.1:8000");
  EXPECT_EQ(c.admin.auth_token, "");
  EXPECT_FALSE(c.admin.allow_unauthenticated_writes);
  EXPECT_EQ(c.admin.max_body_bytes, 1048576u);
  EXPECT_EQ(c.admin.timeseries_interval, Duration(5000));
  EXPECT_EQ(c.proxy.workers, 0);
  EXPECT_EQ(c.proxy.header_timeout, Duration(10000));
  EXPECT_EQ(c.proxy.max_header_bytes, 65536u);
  EXPECT_TRUE(c.proxy.record_requests);
  EXPECT_EQ(c.proxy.dns_refresh, Duration(5000));
  const UpstreamConfig& u = c.upstreams[0];
  EXPECT_EQ(u.dns_refresh, Duration(5000));
  EXPECT_EQ(u.connect_timeout, Duration(1000));
  EXPECT_EQ(u.request_timeout, Duration(15000));
  EXPECT_EQ(u.max_connections, 64u);
  EXPECT_EQ(u.load_balancing, LoadBalancing::kLeastRequests);
  EXPECT_FALSE(u.health_check.enabled);  // no [upstreams.health_check] table
  EXPECT_TRUE(c.routes.empty());
  EXPECT_EQ(c.sysprobe.disk_paths, std::vector<std::string>{"/"});
  EXPECT_EQ(c.speedrun.store_path, "speedmon.db");
  EXPECT_EQ(c.speedrun.retention_rows, 1000000u);
  EXPECT_EQ(c.sla.pattern_quality_min, 0.70);
  EXPECT_TRUE(c.alerting.default_rules);
  EXPECT_TRUE(c.alerting.rules.empty());
  EXPECT_EQ(c.alerting.resolved_retention, Duration(900000));
  EXPECT_EQ(c.alerting.evaluation_interval, d.alerting.evaluation_interval);
}

TEST(LoadTest, NoListenersIsMonitorOnly) {
  Config c = MustLoad(ValidConfigText("monitor_only"));
  EXPECT_TRUE(c.monitor_only());
  EXPECT_TRUE(c.listeners.empty());
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_TRUE(c.upstreams[0].health_check.enabled);
  ASSERT_EQ(c.processes.size(), 1u);
  EXPECT_EQ(c.processes[0].name, "emulator-1");
  EXPECT_NE(Summary(c).find("listeners: 0 (monitor-only: nothing is proxied)\n"), std::string::npos)
      << Summary(c);
  EXPECT_TRUE(MustLoad("listeners = []\n").monitor_only());
  EXPECT_FALSE(MustLoad(ValidConfigText("minimal")).monitor_only());
}

TEST(LoadTest, HealthCheckTablePresentEnablesIt) {
  Config c = MustLoad(ValidConfigText("health_check_table"));
  const HealthCheckConfig& h = c.upstreams[0].health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.path, "/status");
  EXPECT_EQ(h.interval, Duration(2000));
  EXPECT_EQ(h.timeout, Duration(1000));
  EXPECT_EQ(h.healthy_threshold, 1u);
  EXPECT_EQ(h.unhealthy_threshold, 3u);
  EXPECT_TRUE(h.expected_statuses.empty());
}

TEST(LoadTest, InlineTablesAndAnyFileOrder) {
  // Listeners before their upstreams; inline tables as well as [[...]].
  Config c = MustLoad(ValidConfigText("inline_tables_any_order"));
  ASSERT_EQ(c.upstreams.size(), 2u);
  EXPECT_EQ(c.UpstreamIndex("u1"), 1);
  EXPECT_EQ(c.listeners[0].upstream, "u1");
}

TEST(LoadTest, AdminNotLoopbackAllowedWithTokenOrOptIn) {
  Config c = MustLoad(ValidConfigText("admin_token"));
  EXPECT_EQ(c.admin.auth_token, "t");
  c = MustLoad(ValidConfigText("admin_open"));
  EXPECT_EQ(c.admin.address.ToString(), "[::]:8000");
  c = MustLoad(ValidConfigText("admin_localhost"));
  EXPECT_EQ(c.admin.address.ToString(), "localhost:0");
  c = MustLoad(ValidConfigText("admin_ipv6_loopback"));
  EXPECT_TRUE(c.admin.address.IsLoopback());
}

TEST(LoadTest, NumbersAcceptIntegersAndFloats) {
  Config c = MustLoad(ValidConfigText("numbers"));
  EXPECT_EQ(c.sla.pattern_quality_min, 1.0);
  EXPECT_EQ(c.sla.experiment_success_rate_min, 0.0);
  EXPECT_EQ(c.alerting.rules[0].threshold, -2500.0);
  EXPECT_EQ(c.alerting.rules[0].op, CompareOp::kNe);
  EXPECT_EQ(c.alerting.rules[0].severity, Severity::kInfo);
  EXPECT_EQ(c.alerting.rules[0].metric, "m");
}

TEST(LoadTest, DeeplyNestedRegexWithinTheLengthLimit) {
  std::string regex = std::string(500, '(') + "emu" + std::string(500, ')');
  Config c = MustLoad(ValidConfigText("nested_regex"));
  EXPECT_EQ(c.processes[0].cmdline_regex, regex);
}

TEST(LoadTest, SameNamesAcrossKindsAreFine) {
  // A listener, an upstream, a route and a process may share a name: they are
  // different lists.
  Config c = MustLoad(ValidConfigText("same_names"));
  EXPECT_EQ(c.processes[0].pid, 1);
}

}  // namespace
}  // namespace speedmon::config
