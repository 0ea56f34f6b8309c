// Internal to config/: the TOML tree -> Config for every section but [alerting], and the
// checks across sections. Main thread, while loading.
#include "config/load.h"

#include <algorithm>
#include <cstdlib>

#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "config/toml_reader.h"

namespace speedmon::config::internal {
namespace {

// Bounds on every list: each listener, upstream and route multiplies the per-worker
// stats slots (docs/ARCHITECTURE.md), so they are counted in hundreds, not thousands.
constexpr size_t kMaxListeners = 256;
constexpr size_t kMaxUpstreams = 256;
constexpr size_t kMaxEndpoints = 64;  // per upstream
constexpr size_t kMaxRoutes = 256;
constexpr size_t kMaxProcesses = 256;
constexpr size_t kMaxRegexBytes = 1024;  // libstdc++ compiles regexes recursively

constexpr Duration kPositive{1};  // ReadDuration's `min` for "must be greater than 0s"
constexpr Duration kZero{0};
// A resolver asked more often than this would only load the name server.
constexpr Duration kMinDnsRefresh{100};
constexpr int64_t kMaxMiB = 1024 * 1024;

// Printable ASCII without spaces: the text goes on a request line or into a header.
bool IsVisibleAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// SPEEDMON_AUTH_TOKEN, when set and not empty, replaces the token of the file or the
// inline key (a Kubernetes secretKeyRef, a CI secret). Trailing newlines are trimmed, as
// for a file.
void ApplyAuthTokenEnv(AdminConfig* out) {
  const char* env = std::getenv(kAuthTokenEnv);
  if (env == nullptr || *env == '\0') return;
  std::string token = env;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty() || !IsVisibleAscii(token)) {
    Fail(toml::source_position{},
         std::string(kAuthTokenEnv) +
             ": must be printable ASCII without spaces (it is sent as a header)",
         kAuthTokenEnv);
  }
  out->auth_token = std::move(token);
}

void LoadAdmin(const toml::table* table, AdminConfig* out) {
  if (table == nullptr) {
    ApplyAuthTokenEnv(out);
    return;
  }
  TableReader r(*table, "[admin]",
                {"address", "auth_token", "auth_token_file", "allow_unauthenticated_writes",
                 "max_body_bytes", "timeseries_interval"});
  // Port 0 (pick one) is for tests, as for listeners.
  r.ReadAddress("address", &out->address, /*allow_port_zero=*/true);
  r.ReadString("auth_token", &out->auth_token);
  if (!IsVisibleAscii(out->auth_token)) {
    r.FailAt("auth_token", "must be printable ASCII without spaces (it is sent as a header)");
  }
  // The token as a file (a mounted Secret), read now and at each SIGHUP reload. The
  // precedence is SPEEDMON_AUTH_TOKEN, then auth_token_file, then auth_token; the two keys
  // together are a mistake, not a precedence (auth_token = "" counts as unset).
  r.ReadNonEmptyString("auth_token_file", &out->auth_token_file);
  if (!out->auth_token_file.empty()) {
    if (!out->auth_token.empty()) {
      r.FailAt("auth_token_file", "set auth_token or auth_token_file, not both");
    }
    out->auth_token = ReadSecretFile(r, "auth_token_file", out->auth_token_file);
    if (!IsVisibleAscii(out->auth_token)) {
      r.FailAt("auth_token_file", Quote(out->auth_token_file) +
                                      " must hold printable ASCII without spaces (it is sent "
                                      "as a header)");
    }
  }
  ApplyAuthTokenEnv(out);
  r.ReadBool("allow_unauthenticated_writes", &out->allow_unauthenticated_writes);
  r.ReadInt("max_body_bytes", &out->max_body_bytes, 1024, 1024 * kMaxMiB);
  r.ReadDuration("timeseries_interval", &out->timeseries_interval, Duration(100));
  if (out->timeseries_interval > Duration(3600000)) {
    r.FailAt("timeseries_interval", "must be at most 1h");
  }
  // Anyone who can reach a non-loopback admin port could post experiments and delete
  // alert rules; that must be a decision written in the config, not a default.
  if (!out->address.IsLoopback() && out->auth_token.empty() && !out->allow_unauthenticated_writes) {
    Fail(*r.Find("address"),
         "[admin].address " + out->address.ToString() +
             " is not loopback and [admin].auth_token is empty: set a token, "
             "or allow_unauthenticated_writes = true",
         r.Field("address"));
  }
}

void LoadLog(const toml::table* table, LogConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[log]", {"format", "level"});
  std::string format, level;
  r.ReadString("format", &format);
  if (format == "json") {
    out->format = base::LogFormat::kJson;
  } else if (!format.empty() && format != "text") {
    r.FailAt("format", "must be \"text\" or \"json\"");
  }
  r.ReadString("level", &level);
  if (!level.empty() && !base::ParseLogLevel(level, &out->level)) {
    r.FailAt("level", "must be \"debug\", \"info\", \"warning\" or \"error\"");
  }
}

void LoadProxy(const toml::table* table, ProxyConfig* out) {
  if (table == nullptr) return;
  TableReader r(
      *table, "[proxy]",
      {"workers", "max_connections", "header_timeout", "idle_timeout", "max_header_bytes",
       "drain_timeout", "recent_requests", "access_log", "record_requests", "dns_refresh"});
  r.ReadInt("workers", &out->workers, 0, 1024);
  r.ReadInt("max_connections", &out->max_connections, 1, 1000000);
  r.ReadDuration("header_timeout", &out->header_timeout, kPositive);
  r.ReadDuration("idle_timeout", &out->idle_timeout, kPositive);
  r.ReadInt("max_header_bytes", &out->max_header_bytes, 1024, kMaxMiB);
  r.ReadDuration("drain_timeout", &out->drain_timeout, kZero);
  r.ReadInt("recent_requests", &out->recent_requests, 0, 1000000);
  r.ReadString("access_log", &out->access_log);
  r.ReadBool("record_requests", &out->record_requests);
  r.ReadDuration("dns_refresh", &out->dns_refresh, kMinDnsRefresh);
}

void LoadHealthCheck(const toml::table* table, HealthCheckConfig* out) {
  if (table == nullptr) {
    out->enabled = false;  // no table: endpoints are taken as healthy
    return;
  }
  TableReader r(*table, "[upstreams.health_check]",
                {"enabled", "path", "interval", "timeout", "healthy_threshold",
                 "unhealthy_threshold", "expected_statuses"});
  out->enabled = true;
  r.ReadBool("enabled", &out->enabled);
  r.ReadString("path", &out->path);
  if (out->path.empty() || out->path[0] != '/' || !IsVisibleAscii(out->path)) {
    r.FailAt("path", Quote(out->path) + " must start with \"/\" and have no spaces");
  }
  r.ReadDuration("interval", &out->interval, kPositive);
  r.ReadDuration("timeout", &out->timeout, kPositive);
  if (out->timeout > out->interval) {
    r.FailAt("timeout", FormatDuration(out->timeout) + " is longer than interval " +
                            FormatDuration(out->interval));
  }
  r.ReadInt("healthy_threshold", &out->healthy_threshold, 1, 100);
  r.ReadInt("unhealthy_threshold", &out->unhealthy_threshold, 1, 100);
  if (const toml::node* statuses = r.Find("expected_statuses")) {
    if (!statuses->is_array()) r.FailAt("expected_statuses", "expected an array of integers");
    out->expected_statuses.clear();
    for (const toml::node& element : *statuses->as_array()) {
      if (!element.is_integer()) {
        r.FailIn(element, "expected_statuses", "expected an array of integers");
      }
      int64_t code = element.as_integer()->get();
      if (code < 100 || code > 599) {
        r.FailIn(element, "expected_statuses",
                 std::to_string(code) + " is out of range (100..599)");
      }
      out->expected_statuses.push_back(static_cast<uint16_t>(code));
    }
  }
}

void LoadUpstreams(const TableReader& root, const ProxyConfig& proxy,
                   std::vector<UpstreamConfig>* out) {
  UniqueNames names("upstream name");
  for (const toml::table* table : root.TableArray("upstreams", kMaxUpstreams)) {
    TableReader r(*table, "[[upstreams]]",
                  {"name", "endpoints", "connect_timeout", "request_timeout", "max_connections",
                   "load_balancing", "health_check", "dns_refresh"});
    UpstreamConfig upstream;
    upstream.dns_refresh = proxy.dns_refresh;
    upstream.name = r.RequireName("name");
    names.Add(upstream.name, *r.Find("name"));
    r.Require("endpoints");
    std::set<std::string> seen;
    for (const TableReader::Element& e : r.StringElements("endpoints")) {
      std::optional<Address> address = ParseAddress(e.value, /*allow_port_zero=*/false);
      if (!address) {
        r.FailIn(*e.node, "endpoints",
                 "invalid address " + Quote(e.value) +
                     " (expected host:port, IPv6 in brackets, port 1..65535)");
      }
      if (!seen.insert(address->ToString()).second) {
        Fail(*e.node,
             "duplicate endpoint " + address->ToString() + " in upstream " + Quote(upstream.name),
             r.Field("endpoints"));
      }
      if (upstream.endpoints.size() == kMaxEndpoints) {
        r.FailIn(*e.node, "endpoints",
                 "too many entries (at most " + std::to_string(kMaxEndpoints) + ")");
      }
      upstream.endpoints.push_back(*address);
    }
    if (upstream.endpoints.empty()) {
      Fail(*r.Find("endpoints"), "upstream " + Quote(upstream.name) + " has no endpoints",
           r.Field("endpoints"));
    }
    r.ReadDuration("connect_timeout", &upstream.connect_timeout, kPositive);
    r.ReadDuration("request_timeout", &upstream.request_timeout, kPositive);
    r.ReadInt("max_connections", &upstream.max_connections, 1, 100000);
    r.ReadDuration("dns_refresh", &upstream.dns_refresh, kMinDnsRefresh);
    std::string balancing;
    r.ReadString("load_balancing", &balancing);
    if (r.Find("load_balancing") != nullptr) {
      std::optional<LoadBalancing> lb = ParseLoadBalancing(balancing);
      if (!lb) {
        r.FailAt("load_balancing",
                 Quote(balancing) + " is not one of \"least_requests\", \"round_robin\"");
      }
      upstream.load_balancing = *lb;
    }
    LoadHealthCheck(r.SubTable("health_check"), &upstream.health_check);
    out->push_back(std::move(upstream));
  }
}

void LoadListeners(const TableReader& root, const Config& config,
                   std::vector<ListenerConfig>* out) {
  // No listeners is a monitor-only speedmon (Config::monitor_only): ingest, host and
  // process metrics, health checks and alerts, nothing proxied. The daemon says so at start.
  std::vector<const toml::table*> tables = root.TableArray("listeners", kMaxListeners);
  UniqueNames names("listener name");
  std::map<std::string, std::string> address_owner;  // "host:port" -> listener name
  for (const toml::table* table : tables) {
    TableReader r(*table, "[[listeners]]", {"name", "address", "upstream"});
    ListenerConfig listener;
    listener.name = r.RequireName("name");
    names.Add(listener.name, *r.Find("name"));
    r.Require("address");
    r.ReadAddress("address", &listener.address, /*allow_port_zero=*/true);
    // Port 0 means "pick one": two of them never collide.
    if (listener.address.port != 0) {
      std::string key = listener.address.ToString();
      std::string prefix = "listener " + Quote(listener.name) + " address " + key;
      if (config.admin.address.ToString() == key) {
        Fail(*r.Find("address"), prefix + " is already used by [admin].address",
             r.Field("address"));
      }
      auto [it, inserted] = address_owner.emplace(key, listener.name);
      if (!inserted) {
        Fail(*r.Find("address"), prefix + " is already used by listener " + Quote(it->second),
             r.Field("address"));
      }
    }
    listener.upstream = r.RequireString("upstream");
    if (config.UpstreamIndex(listener.upstream) < 0) {
      Fail(*r.Find("upstream"),
           "listener " + Quote(listener.name) + " names upstream " + Quote(listener.upstream) +
               ", which is not defined",
           r.Field("upstream"));
    }
    out->push_back(std::move(listener));
  }
}

void LoadRoutes(const TableReader& root, std::vector<RouteConfig>* out) {
  UniqueNames names("route name");
  UniqueNames prefixes("route prefix");
  for (const toml::table* table : root.TableArray("routes", kMaxRoutes)) {
    TableReader r(*table, "[[routes]]", {"name", "prefix"});
    RouteConfig route;
    route.name = r.RequireName("name");
    names.Add(route.name, *r.Find("name"));
    route.prefix = r.RequireString("prefix");
    if (route.prefix[0] != '/' || !IsVisibleAscii(route.prefix)) {
      r.FailAt("prefix", Quote(route.prefix) + " must start with \"/\" and have no spaces");
    }
    // The first matching route wins, so a second one with the same prefix is dead.
    prefixes.Add(route.prefix, *r.Find("prefix"));
    out->push_back(std::move(route));
  }
}

void LoadSysprobe(const toml::table* table, SysprobeConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[sysprobe]", {"cache_duration", "disk_paths"});
  r.ReadDuration("cache_duration", &out->cache_duration, kZero);
  if (r.Find("disk_paths") == nullptr) return;
  out->disk_paths.clear();
  for (const TableReader::Element& e : r.StringElements("disk_paths")) {
    if (e.value.empty() || e.value[0] != '/') {
      r.FailIn(*e.node, "disk_paths", Quote(e.value) + " is not an absolute path");
    }
    // One series per path: a path twice would export two samples with one label set.
    if (std::find(out->disk_paths.begin(), out->disk_paths.end(), e.value) !=
        out->disk_paths.end()) {
      r.FailIn(*e.node, "disk_paths", Quote(e.value) + " is listed twice");
    }
    out->disk_paths.push_back(e.value);
  }
}

void LoadProcesses(const TableReader& root, std::vector<ProcessConfig>* out) {
  UniqueNames names("process name");
  for (const toml::table* table : root.TableArray("processes", kMaxProcesses)) {
    TableReader r(*table, "[[processes]]", {"name", "pid", "pid_file", "cmdline_regex"});
    ProcessConfig process;
    process.name = r.RequireName("name");
    names.Add(process.name, *r.Find("name"));
    int set = 0;
    for (const char* key : {"pid", "pid_file", "cmdline_regex"}) set += r.Find(key) != nullptr;
    if (set != 1) {
      Fail(*table, "[[processes]] " + Quote(process.name) +
                       ": set exactly one of pid, pid_file, cmdline_regex");
    }
    if (std::optional<int64_t> pid = r.Int("pid", 1, std::numeric_limits<int32_t>::max())) {
      process.pid = static_cast<int>(*pid);
    }
    r.ReadNonEmptyString("pid_file", &process.pid_file);
    r.ReadNonEmptyString("cmdline_regex", &process.cmdline_regex);
    if (!process.cmdline_regex.empty()) {
      if (process.cmdline_regex.size() > kMaxRegexBytes) {
        r.FailAt("cmdline_regex", "longer than " + std::to_string(kMaxRegexBytes) + " bytes");
      }
      try {
        std::regex compiled(process.cmdline_regex, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        // what(), not code(): libstdc++ says error_paren for "*a" but its text is closer.
        // Its state-limit text talks of a macro; users need to hear "too complex".
        bool too_big = e.code() == std::regex_constants::error_space ||
                       e.code() == std::regex_constants::error_complexity ||
                       e.code() == std::regex_constants::error_stack;
        r.FailAt("cmdline_regex", "invalid regular expression " + Quote(process.cmdline_regex) +
                                      ": " + (too_big ? "too complex" : e.what()));
      }
    }
    out->push_back(std::move(process));
  }
}

void LoadSpeedrun(const toml::table* table, SpeedrunConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[speedrun]",
                {"store_path", "window_experiments", "window_patterns", "max_strategy_labels",
                 "retention_rows"});
  r.ReadString("store_path", &out->store_path);
  r.ReadInt("window_experiments", &out->window_experiments, 1, 10000000);
  r.ReadInt("window_patterns", &out->window_patterns, 1, 10000000);
  r.ReadInt("max_strategy_labels", &out->max_strategy_labels, 1, 10000);
  r.ReadInt("retention_rows", &out->retention_rows, 1, 1000000000000);
}

void LoadSla(const toml::table* table, SlaConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[sla]",
                {"experiment_success_rate_min", "script_compilation_target_ms",
                 "checkpoint_loading_target_ms", "target_compliance_min", "pattern_quality_min",
                 "system_availability_min"});
  constexpr double kDayMs = 86400000;
  r.ReadNumber("experiment_success_rate_min", &out->experiment_success_rate_min, 0, 100);
  r.ReadNumber("script_compilation_target_ms", &out->script_compilation_target_ms, 0, kDayMs);
  r.ReadNumber("checkpoint_loading_target_ms", &out->checkpoint_loading_target_ms, 0, kDayMs);
  r.ReadNumber("target_compliance_min", &out->target_compliance_min, 0, 100);
  r.ReadNumber("pattern_quality_min", &out->pattern_quality_min, 0, 1);
  r.ReadNumber("system_availability_min", &out->system_availability_min, 0, 100);
}

}  // namespace

Config LoadConfigTable(const toml::table& root_table) {
  TableReader root(root_table, "",
                   {"log", "admin", "proxy", "listeners", "upstreams", "routes", "sysprobe",
                    "processes", "speedrun", "sla", "alerting"});
  Config config;
  LoadLog(root.SubTable("log"), &config.log);
  LoadAdmin(root.SubTable("admin"), &config.admin);
  LoadProxy(root.SubTable("proxy"), &config.proxy);
  // Upstreams before listeners, whatever the file order: listeners name them.
  LoadUpstreams(root, config.proxy, &config.upstreams);
  LoadListeners(root, config, &config.listeners);
  LoadRoutes(root, &config.routes);
  LoadSysprobe(root.SubTable("sysprobe"), &config.sysprobe);
  LoadProcesses(root, &config.processes);
  LoadSpeedrun(root.SubTable("speedrun"), &config.speedrun);
  LoadSla(root.SubTable("sla"), &config.sla);
  LoadAlerting(root.SubTable("alerting"), &config.alerting);
  return config;
}

}  // namespace speedmon::config::internal
