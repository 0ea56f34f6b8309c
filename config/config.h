// speedmon's configuration: the TOML schema (config/default.toml) as typed, validated structs.
//
// Loaded once on the main thread (at start and on SIGHUP) and then shared read-only:
// a Config is never mutated after Load returns, so any thread may read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/status.h"

namespace speedmon::config {

using Duration = std::chrono::milliseconds;

// "host:port". host is an IPv4 literal, an IPv6 literal in brackets ("[::1]:80"), or a
// name ("localhost"), kept as written; port is 1..65535 (0 is allowed only where a
// field says so, meaning "pick one").
struct Address {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // "host:port", brackets restored for IPv6
  bool IsLoopback() const;       // 127.0.0.0/8, ::1, "localhost"
};

// The environment variable that overrides [admin].auth_token and auth_token_file.
inline constexpr const char* kAuthTokenEnv = "SPEEDMON_AUTH_TOKEN";

struct AdminConfig {
  Address address{"127.0.0.1", 8000};  // port 0 = pick one (tests), as for listeners
  // The token writes need; "" = none. From SPEEDMON_AUTH_TOKEN when set, else the content
  // of auth_token_file, else auth_token as written.
  std::string auth_token;
  std::string auth_token_file;  // "" = none; read at load and at each SIGHUP reload
  bool allow_unauthenticated_writes = false;
  uint64_t max_body_bytes = 1048576;
  // How often the status page's charts are sampled; they keep the last 180 samples
  // (15 minutes at 5 s). Read at start only.
  Duration timeseries_interval{5000};
};

struct ProxyConfig {
  int workers = 0;                   // 0 = one per core
  uint32_t max_connections = 10000;  // downstream, per process
  Duration header_timeout{10000};
  Duration idle_timeout{60000};
  uint32_t max_header_bytes = 65536;
  Duration drain_timeout{15000};
  uint32_t recent_requests = 1000;  // ring buffer size; 0 = off
  std::string access_log;           // "" off, "-" stdout, else a file path
  bool record_requests = true;      // benchmark-only switch: false skips stats
  // How often endpoint host names are resolved again; each upstream may set its own.
  Duration dns_refresh{5000};
};

struct ListenerConfig {
  std::string name;
  Address address;
  std::string upstream;  // names an UpstreamConfig
};

struct HealthCheckConfig {
  // Load sets false when [upstreams.health_check] is absent (endpoints are then taken as
  // healthy) and true when it is present, unless it says `enabled = false`.
  bool enabled = true;
  std::string path = "/status";
  Duration interval{5000};
  Duration timeout{1000};
  uint32_t healthy_threshold = 1;
  uint32_t unhealthy_threshold = 3;
  std::vector<uint16_t> expected_statuses;  // empty = any 2xx
};

enum class LoadBalancing { kLeastRequests, kRoundRobin };

struct UpstreamConfig {
  std::string name;
  std::vector<Address> endpoints;  // at least one
  Duration connect_timeout{1000};
  Duration request_timeout{15000};
  uint32_t max_connections = 64;  // per endpoint, per process
  LoadBalancing load_balancing = LoadBalancing::kLeastRequests;
  HealthCheckConfig health_check;
  // How often host names among `endpoints` are resolved again; Load fills it from
  // [proxy].dns_refresh when the upstream does not set it. IP literals are never resolved.
  Duration dns_refresh{5000};
};

// Bounded values of the `route` label: the first route whose prefix starts the request
// path names it; paths no route matches are "other".
struct RouteConfig {
  std::string name;
  std::string prefix;
};

struct SysprobeConfig {
  Duration cache_duration{1000};
  std::vector<std::string> disk_paths{"/"};
};

// Exactly one of pid, pid_file, cmdline_regex is set.
struct ProcessConfig {
  std::string name;
  std::optional<int> pid;
  std::string pid_file;
  std::string cmdline_regex;
};

struct SpeedrunConfig {
  std::string store_path = "speedmon.db";  // "" = memory only
  uint32_t window_experiments = 1000;
  uint32_t window_patterns = 500;
  uint32_t max_strategy_labels = 32;
  uint64_t retention_rows = 1000000;  // raw rows kept per table; totals are kept
};

struct SlaConfig {
  double experiment_success_rate_min = 95.0;
  double script_compilation_target_ms = 100.0;
  double checkpoint_loading_target_ms = 500.0;
  double target_compliance_min = 95.0;
  double pattern_quality_min = 0.70;
  double system_availability_min = 99.0;
};

enum class Severity { kInfo, kWarning, kCritical };
enum class CompareOp { kGt, kLt, kGe, kLe, kEq, kNe };

struct AlertRuleConfig {
  std::string id;    // [A-Za-z0-9_.-]+: it goes in URLs
  std::string name;  // Load sets it to id when the file has none
  std::string description;
  // `metric` as written is a dotted name ("system.cpu_percent", see DottedMetric) or an
  // exported metric name with optional equality matchers, Prometheus selector style:
  //   pokemon_speedrun_upstream_healthy{upstream="emulator-1",endpoint="127.0.0.1:8081"}
  // Load splits it: `metric` keeps the bare name, `match_labels` the matchers.
  std::string metric;
  std::map<std::string, std::string> match_labels;
  // "" or "none": one alert per matching series (Prometheus semantics); otherwise the
  // matching series reduce to one value: max|min|sum|avg|count.
  std::string aggregation;
  CompareOp op = CompareOp::kGt;
  double threshold = 0;
  Duration for_duration{0};
  Duration keep_firing_for{0};
  Severity severity = Severity::kWarning;
  std::map<std::string, std::string> labels;       // extra labels sent with the alert
  std::map<std::string, std::string> annotations;  // summary, description, runbook_url
};

// TLS and authentication of one outbound HTTP target, the keys of an
// [[alerting.alertmanagers]] or [[alerting.webhooks]] table. Named as Prometheus names them
// in http_config (tls_config flattened to tls_*, basic_auth to basic_auth_*). Load checks
// them: tls_* only with an https:// url, a certificate with its key, at most one of basic
// auth and a bearer token, every file readable. The *_file secrets are read by Load (at
// start and at each SIGHUP reload) into the field beside them, trailing newline trimmed,
// so a changed file takes effect on the next reload.
struct HttpClientConfig {
  std::string tls_ca_file;      // PEM CA bundle; "" = the system's store
  std::string tls_cert_file;    // PEM client certificate (mutual TLS), with tls_key_file
  std::string tls_key_file;     // its PEM private key (not encrypted)
  std::string tls_server_name;  // "" = the URL's host; the name checked and sent as SNI
  bool tls_insecure_skip_verify = false;
  std::string basic_auth_username;
  std::string basic_auth_password;       // as written, or the content of the file
  std::string basic_auth_password_file;  // "" = none
  std::string bearer_token;              // as written, or the content of the file
  std::string bearer_token_file;         // "" = none
  bool operator==(const HttpClientConfig&) const = default;
};

struct AlertmanagerConfig {
  std::string url;  // "http(s)://host:port" (path prefix allowed)
  Duration timeout{2000};
  HttpClientConfig http;
};

struct WebhookConfig {
  std::string url;
  Duration timeout{2000};
  HttpClientConfig http;
};

struct AlertingConfig {
  Duration evaluation_interval{15000};
  Duration resend_interval{60000};
  Duration resolved_retention{900000};  // how long resolved alerts stay listed
  bool default_rules = true;
  std::vector<AlertRuleConfig> rules;
  std::vector<AlertmanagerConfig> alertmanagers;
  std::vector<WebhookConfig> webhooks;
};

// [log]: the daemon's own log on stderr (not the access log).
struct LogConfig {
  base::LogFormat format = base::LogFormat::kText;  // "text" or "json"
  base::LogLevel level = base::LogLevel::kInfo;     // "debug", "info", "warning", "error"
};

struct Config {
  std::string source;  // file path, or "<default>"
  LogConfig log;
  AdminConfig admin;
  ProxyConfig proxy;
  std::vector<ListenerConfig> listeners;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;
  SysprobeConfig sysprobe;
  std::vector<ProcessConfig> processes;
  SpeedrunConfig speedrun;
  SlaConfig sla;
  AlertingConfig alerting;

  // REQUIRES: Validate passed. Index of the upstream with this name, or -1.
  int UpstreamIndex(const std::string& name) const;
  // No [[listeners]]: nothing is proxied; ingest, host and process metrics, health
  // checks (of any [[upstreams]]) and alerts run as usual.
  bool monitor_only() const { return listeners.empty(); }
};

// Parses and validates TOML text. `source_name` is used in errors and Config::source.
// Never throws. The first error found is kInvalidArgument (kTooLarge for a text over
// 4 MiB) whose message says where: "FILE:LINE:COL: message", or "FILE: message" when the
// error has no single place (e.g. "config is larger than 4 MiB"); line and column are 1-based, the
// column counts characters. `field` names the key at fault as messages do
// ("[admin].address", "[[alerting.rules]].metric"), "" when the error is not at a key.
base::StatusOr<Config> LoadFromString(std::string_view toml_text, const std::string& source_name);

// Reads and loads a file. A file that cannot be read fails with "FILE: cannot open: ..."
// or "FILE: cannot read: ...": kNotFound when it does not exist, kInternal otherwise.
base::StatusOr<Config> LoadFromFile(const std::string& path);

// The embedded default config: commented TOML for the four-emulator pool
// (listeners 127.0.0.1:18081-18084 -> upstreams 127.0.0.1:8081-8084, admin 127.0.0.1:8000).
const std::string& DefaultConfigText();

// A few lines that `--check-config` prints: counts of listeners, upstreams, routes,
// rules, and the admin address.
std::string Summary(const Config& config);

// Parses "250ms", "5s", "2m", "1h", "1m30s", "0s". Returns nullopt for anything else
// (negative, no unit, overflow, unknown unit, empty). Units run from large to small and
// each appears once ("30s1m" is rejected); the total is at most kMaxDuration.
std::optional<Duration> ParseDuration(std::string_view text);

// One year: long enough for any timeout or retention, short enough that adding it to a
// steady_clock time point never overflows.
inline constexpr Duration kMaxDuration{365LL * 24 * 3600 * 1000};

// The inverse of ParseDuration: "0s", "250ms", "1m30s", "1h", "1s500ms".
std::string FormatDuration(Duration d);

// Parses "host:port" (IPv6 in brackets). allow_port_zero for listeners in tests.
// A name host is letters, digits, '-', '_' and '.' (Docker service names); a host of
// digits and dots must be a valid IPv4 literal.
std::optional<Address> ParseAddress(std::string_view text, bool allow_port_zero);

const char* SeverityName(Severity s);             // "info", "warning", "critical"
const char* LoadBalancingName(LoadBalancing lb);  // "least_requests", "round_robin"
const char* CompareOpName(CompareOp op);          // ">", "<", ">=", "<=", "==", "!="
std::optional<Severity> ParseSeverity(std::string_view text);
std::optional<CompareOp> ParseCompareOp(std::string_view text);
std::optional<LoadBalancing> ParseLoadBalancing(std::string_view text);
bool IsValidAggregation(std::string_view text);  // max|min|sum|avg|count

// "http://host:port[/path]" or "https://host:port[/path]", the URL forms
// [[alerting.alertmanagers]] and [[alerting.webhooks]] take, and the one parser of them:
// the loader checks the config with it and the notifier sends with its result. The port
// is required (no default); no user info, query or fragment. `path` is "/" when the URL
// has none, else as written. On failure kInvalidArgument with field "url" saying why:
// "queries and fragments are not supported".
struct HttpUrl {
  bool tls = false;  // https://
  Address address;
  std::string path = "/";
  // "https://host:port/path", IPv6 in brackets: what was parsed, written back.
  std::string ToString() const;
};
base::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

// A rule's `metric` split into name and equality matchers, so a rule added at run time
// (POST /api/v1/alert-rules) is read exactly as one from the config file.
//   "up"                          -> {"up", {}}
//   "x_total{a=\"1\", b=\"2\"}"  -> {"x_total", {{"a","1"},{"b","2"}}}
// The name is [a-zA-Z_:][a-zA-Z0-9_:.]* (dots for the dotted names below); label names
// are [a-zA-Z_][a-zA-Z0-9_]*; values are double-quoted with \\, \" and \n escapes; only
// `=`. On failure kInvalidArgument with field "metric" (the rule key it parses), e.g.
// "expected '=' after label name \"a\"", and *error_offset (when not null) is the byte
// offset of the error in the text, so the config loader can point at its column.
struct MetricSelector {
  std::string metric;
  std::map<std::string, std::string> match_labels;
};
base::StatusOr<MetricSelector> ParseMetricSelector(std::string_view text,
                                                   size_t* error_offset = nullptr);
bool IsValidLabelName(std::string_view name);  // [a-zA-Z_][a-zA-Z0-9_]*

// The dotted metric names ("system.cpu_percent"), the names the Python collector this
// daemon replaces used, and where they live among the exported metrics. A rule may name
// one of these instead of an exported metric; alerting then reads `exported`.
struct DottedMetric {
  const char* dotted;    // "speedrun.average_script_compilation_ms"
  const char* exported;  // "pokemon_speedrun_script_compilation_average_seconds"
  double scale;          // exported value * scale = the dotted name's unit (s -> ms: 1000)
  // The aggregation a rule gets when it names none: "sum" for counters whose labels
  // split one number (speedrun.total_experiments), "" (per series) otherwise.
  const char* aggregation;
};

// All of them (docs/API.md, "Alert rules", lists them).
const std::vector<DottedMetric>& DottedMetrics();

// The entry for a dotted name, or nullptr.
const DottedMetric* FindDottedMetric(std::string_view dotted);

// What an alert rule must satisfy beyond its syntax, wherever it comes from: the loader
// runs it on every [[alerting.rules]] entry, alerting on every rule it builds (config and
// POST /api/v1/alert-rules alike), so a rule the file check accepts is one alerting
// accepts. Checked: id (1..128 of [A-Za-z0-9_.-]), name (1..256), description (<= 4096),
// a dotted metric is one of DottedMetrics(), aggregation, a finite threshold, labels and
// annotations (<= 32 each, valid names, values <= 4096, no label the rule sets itself).
// The first problem found is kInvalidArgument: `field` is the rule's key ("metric"), the
// message the text the admin API answers ("unknown dotted metric name ...").
base::Status CheckAlertRule(const AlertRuleConfig& rule);

}  // namespace speedmon::config
