// Internal to config/: [alerting], its [[alerting.rules]] and the notifiers. Main thread,
// while loading.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "config/load.h"
#include "config/toml_reader.h"

namespace speedmon::config::internal {
namespace {

constexpr size_t kMaxRules = 1000;
constexpr size_t kMaxNotifiers = 16;

// Ids appear in URLs (DELETE /api/v1/alert-rules/{id}): keep them path-safe.
bool IsRuleId(std::string_view id) {
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Points at the selector's bad character when the TOML string is written plainly on one
// line (source length == text length + 2 quotes); otherwise at the string's start.
toml::source_position SelectorErrorPosition(const toml::node& node, std::string_view text,
                                            size_t offset) {
  toml::source_region region = node.source();
  toml::source_position where = region.begin;
  bool plain = region.begin.line == region.end.line &&
               region.end.column - region.begin.column == text.size() + 2;
  if (plain) where.column += static_cast<toml::source_index>(1 + offset);
  return where;
}

void LoadSelector(const TableReader& r, AlertRuleConfig* rule) {
  std::string text = r.RequireString("metric");
  size_t error_offset = 0;
  base::StatusOr<MetricSelector> parsed = ParseMetricSelector(text, &error_offset);
  if (!parsed.ok()) {
    r.FailIn(SelectorErrorPosition(*r.Find("metric"), text, error_offset), "metric",
             "invalid selector " + Quote(text) + ": " + parsed.status().message());
  }
  rule->metric = std::move(parsed->metric);
  rule->match_labels = std::move(parsed->match_labels);
}

void LoadRule(const toml::table& table, UniqueNames* ids, AlertRuleConfig* rule) {
  TableReader r(table, "[[alerting.rules]]",
                {"id", "name", "description", "metric", "aggregation", "operator", "threshold",
                 "for", "keep_firing_for", "severity", "labels", "annotations"});
  rule->id = r.RequireName("id");
  if (!IsRuleId(rule->id)) {
    r.FailAt("id", Quote(rule->id) + " may contain only letters, digits, '_', '-' and '.'");
  }
  ids->Add(rule->id, *r.Find("id"));
  r.ReadString("name", &rule->name);
  if (rule->name.empty()) rule->name = rule->id;  // the alertname label needs a value
  r.ReadString("description", &rule->description);
  LoadSelector(r, rule);

  r.ReadString("aggregation", &rule->aggregation);
  if (!IsValidAggregation(rule->aggregation)) {
    r.FailAt("aggregation",
             Quote(rule->aggregation) + " is not one of none, max, min, sum, avg, count");
  }

  r.Require("operator");
  std::string op;
  r.ReadString("operator", &op);
  std::optional<CompareOp> parsed_op = ParseCompareOp(op);
  if (!parsed_op) r.FailAt("operator", Quote(op) + " is not one of >, <, >=, <=, ==, !=");
  rule->op = *parsed_op;

  const toml::node& threshold = r.Require("threshold");
  if (!threshold.is_number()) r.FailAt("threshold", "expected a number");
  rule->threshold = threshold.is_integer() ? static_cast<double>(threshold.as_integer()->get())
                                           : threshold.as_floating_point()->get();
  if (!std::isfinite(rule->threshold)) r.FailAt("threshold", "must be a finite number");

  r.ReadDuration("for", &rule->for_duration, Duration(0));
  r.ReadDuration("keep_firing_for", &rule->keep_firing_for, Duration(0));

  if (r.Find("severity") != nullptr) {
    std::string severity;
    r.ReadString("severity", &severity);
    std::optional<Severity> parsed = ParseSeverity(severity);
    if (!parsed) r.FailAt("severity", Quote(severity) + " is not one of info, warning, critical");
    rule->severity = *parsed;
  }

  r.ReadStringTable("labels", &rule->labels);
  if (const toml::table* labels = r.SubTable("labels")) {
    for (auto&& [key, value] : *labels) {
      if (!IsValidLabelName(key.str())) {
        r.FailIn(key.source().begin, "labels",
                 Quote(key.str()) + " is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)");
      }
    }
  }
  r.ReadStringTable("annotations", &rule->annotations);

  // What the checks above leave to the rule constraints alerting applies too (an unknown
  // dotted metric, reserved labels, lengths): the same function, at the same key.
  if (base::Status problem = CheckAlertRule(*rule); !problem.ok()) {
    r.FailAt(problem.field(), problem.message());
  }
}

constexpr size_t kMaxSecretBytes = 64 * 1024;

// Opens `path` for reading: a regular file (not a FIFO or a device, which could block or
// never end), or fails at `key` with why not. Returns the descriptor.
int OpenRegularFile(const TableReader& r, std::string_view key, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) r.FailAt(key, "cannot read " + Quote(path) + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    r.FailAt(key, "cannot read " + Quote(path) + ": not a regular file");
  }
  return fd;
}

// A file that curl opens at each request (CA, certificate, key): readable now.
void CheckReadable(const TableReader& r, std::string_view key, const std::string& path) {
  if (!path.empty()) ::close(OpenRegularFile(r, key, path));
}

// A header value must not break the request head: no control characters (CR, LF, ...).
bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

// The content of a secret file, trailing newlines trimmed (`echo token > file`).
std::string ReadSecretFile(const TableReader& r, std::string_view key, const std::string& path) {
  int fd = OpenRegularFile(r, key, path);
  std::string text;
  char buf[4096];
  while (text.size() <= kMaxSecretBytes) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      r.FailAt(key, "cannot read " + Quote(path) + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (text.size() > kMaxSecretBytes) r.FailAt(key, Quote(path) + " is larger than 64 KiB");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) r.FailAt(key, Quote(path) + " is empty");
  if (HasControl(text)) r.FailAt(key, Quote(path) + " contains control characters");
  return text;
}

namespace {

// A secret given inline (`inline_key`) or as a file (`file_key`), at most one of them.
void ReadSecret(const TableReader& r, std::string_view inline_key, std::string_view file_key,
                std::string* value, std::string* file) {
  if (r.Find(inline_key) != nullptr && r.Find(file_key) != nullptr) {
    r.FailAt(file_key,
             "set " + std::string(inline_key) + " or " + std::string(file_key) + ", not both");
  }
  r.ReadNonEmptyString(inline_key, value);
  if (HasControl(*value)) r.FailAt(inline_key, "must not contain control characters");
  r.ReadNonEmptyString(file_key, file);
  if (!file->empty()) *value = ReadSecretFile(r, file_key, *file);
}

void LoadHttpClient(const TableReader& r, bool tls, HttpClientConfig* out) {
  for (std::string_view key : {"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
                               "tls_insecure_skip_verify"}) {
    if (!tls && r.Find(key) != nullptr) r.FailAt(key, "needs an https:// url");
  }
  r.ReadNonEmptyString("tls_ca_file", &out->tls_ca_file);
  r.ReadNonEmptyString("tls_cert_file", &out->tls_cert_file);
  r.ReadNonEmptyString("tls_key_file", &out->tls_key_file);
  if (out->tls_cert_file.empty() != out->tls_key_file.empty()) {
    std::string_view set = out->tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file";
    std::string_view missing = out->tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file";
    r.FailAt(set, "needs " + std::string(missing) + " too");
  }
  CheckReadable(r, "tls_ca_file", out->tls_ca_file);
  CheckReadable(r, "tls_cert_file", out->tls_cert_file);
  CheckReadable(r, "tls_key_file", out->tls_key_file);
  r.ReadNonEmptyString("tls_server_name", &out->tls_server_name);
  if (!out->tls_server_name.empty()) {
    // A DNS name or an IPv4 literal: what ParseAddress takes before the port.
    std::optional<Address> a = ParseAddress(out->tls_server_name + ":1", false);
    if (!a || a->host != out->tls_server_name) {
      r.FailAt("tls_server_name", Quote(out->tls_server_name) + " is not a host name");
    }
  }
  r.ReadBool("tls_insecure_skip_verify", &out->tls_insecure_skip_verify);

  r.ReadNonEmptyString("basic_auth_username", &out->basic_auth_username);
  if (HasControl(out->basic_auth_username) ||
      out->basic_auth_username.find(':') != std::string::npos) {
    r.FailAt("basic_auth_username", "must not contain ':' or control characters");
  }
  ReadSecret(r, "basic_auth_password", "basic_auth_password_file", &out->basic_auth_password,
             &out->basic_auth_password_file);
  if (out->basic_auth_username.empty() && !out->basic_auth_password.empty()) {
    r.FailAt(r.Find("basic_auth_password") ? "basic_auth_password" : "basic_auth_password_file",
             "needs basic_auth_username");
  }
  ReadSecret(r, "bearer_token", "bearer_token_file", &out->bearer_token, &out->bearer_token_file);
  if (!out->bearer_token.empty() && !out->basic_auth_username.empty()) {
    r.FailAt(r.Find("bearer_token") ? "bearer_token" : "bearer_token_file",
             "cannot be combined with basic_auth_username (one Authorization header)");
  }
}

// [[alerting.alertmanagers]] and [[alerting.webhooks]] share one shape.
template <typename T>
void LoadNotifiers(const TableReader& alerting, std::string_view key, std::vector<T>* out) {
  std::string name = "[[alerting." + std::string(key) + "]]";
  for (const toml::table* table : alerting.TableArray(key, kMaxNotifiers)) {
    TableReader r(
        *table, name,
        {"url", "timeout", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
         "tls_insecure_skip_verify", "basic_auth_username", "basic_auth_password",
         "basic_auth_password_file", "bearer_token", "bearer_token_file"});
    T notifier;
    notifier.url = r.RequireString("url");
    base::StatusOr<HttpUrl> url = ParseHttpUrl(notifier.url);
    if (!url.ok()) {
      r.FailAt("url", "invalid URL " + Quote(notifier.url) + ": " + url.status().message());
    }
    r.ReadDuration("timeout", &notifier.timeout, Duration(1));
    LoadHttpClient(r, url->tls, &notifier.http);
    out->push_back(std::move(notifier));
  }
}

}  // namespace

void LoadAlerting(const toml::table* table, AlertingConfig* out) {
  if (table == nullptr) return;
  TableReader r(*table, "[alerting]",
                {"evaluation_interval", "resend_interval", "resolved_retention", "default_rules",
                 "rules", "alertmanagers", "webhooks"});
  r.ReadDuration("evaluation_interval", &out->evaluation_interval, Duration(1));
  r.ReadDuration("resend_interval", &out->resend_interval, Duration(1));
  r.ReadDuration("resolved_retention", &out->resolved_retention, Duration(0));
  r.ReadBool("default_rules", &out->default_rules);
  UniqueNames ids("alert rule id");
  for (const toml::table* rule_table : r.TableArray("rules", kMaxRules)) {
    AlertRuleConfig rule;
    LoadRule(*rule_table, &ids, &rule);
    out->rules.push_back(std::move(rule));
  }
  LoadNotifiers(r, "alertmanagers", &out->alertmanagers);
  LoadNotifiers(r, "webhooks", &out->webhooks);
}

}  // namespace speedmon::config::internal
