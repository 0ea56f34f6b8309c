// The small value parsers of config.h: durations, addresses, enum names, metric
// selectors. Pure functions on strings; any thread may call them (the admin API uses
// ParseMetricSelector for rules added at run time).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <cstdint>
#include <limits>
#include <string>

#include "config/config.h"

namespace speedmon::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A name as Docker and DNS accept it. Underscores are not DNS but compose service names
// ("pokemon_gym_1") resolve inside a compose network, so they are allowed.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label_len = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '.') {
      if (label_len == 0 || host[i - 1] == '-') return false;
      label_len = 0;
      continue;
    }
    if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '_') return false;
    if (c == '-' && label_len == 0) return false;
    if (++label_len > 63) return false;
  }
  return label_len > 0 && host.back() != '-';
}

bool IsAllDigitsAndDots(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c) && c != '.') return false;
  }
  return true;
}

std::optional<uint16_t> ParsePort(std::string_view text, bool allow_zero) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535 || (port == 0 && !allow_zero)) return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

std::string Address::ToString() const {
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

bool Address::IsLoopback() const {
  if (Lower(host) == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z is the IPv4 loopback seen through an IPv6 socket.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::optional<Address> ParseAddress(std::string_view text, bool allow_port_zero) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    in6_addr v6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) return std::nullopt;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (IsAllDigitsAndDots(host)) {
      in_addr v4;
      if (inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1) return std::nullopt;
    } else if (!IsHostName(host)) {
      return std::nullopt;  // also catches an unbracketed IPv6 literal (its ':')
    }
  }
  std::optional<uint16_t> port = ParsePort(port_text, allow_port_zero);
  if (!port) return std::nullopt;
  return Address{std::string(host), *port};
}

std::string HttpUrl::ToString() const {
  return (tls ? "https://" : "http://") + address.ToString() + path;
}

base::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto fail = [](std::string message) {
    return base::InvalidArgumentError(std::move(message), "url");
  };
  HttpUrl parsed;
  std::string_view scheme;
  for (std::string_view s : {"http://", "https://"}) {
    if (url.substr(0, s.size()) == s) scheme = s;
  }
  if (scheme.empty()) return fail("only http:// and https:// URLs are supported");
  parsed.tls = scheme == "https://";
  std::string_view rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) return fail("user info is not supported");
  // The notifier appends to the path ("/api/v2/alerts"), and neither Alertmanager nor a
  // webhook needs either, so both are refused rather than sent somewhere surprising.
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("queries and fragments are not supported");
  }
  std::optional<Address> address = ParseAddress(authority, /*allow_port_zero=*/false);
  if (!address) {
    return fail("expected " + std::string(scheme) +
                "host:port[/path] (IPv6 in brackets, port 1..65535)");
  }
  parsed.address = std::move(*address);
  if (slash != std::string_view::npos) {
    // It goes on a request line as is.
    for (char c : rest.substr(slash)) {
      if (c < 0x21 || c > 0x7e) return fail("the path must be printable ASCII without spaces");
    }
    parsed.path = std::string(rest.substr(slash));
  }
  return parsed;
}

std::optional<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr int64_t kMax = kMaxDuration.count();
  int64_t total = 0;
  int previous_rank = 4;  // units must strictly descend: h(3) m(2) s(1) ms(0)
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) return std::nullopt;
    int64_t n = 0;
    while (i < text.size() && IsDigit(text[i])) {
      n = n * 10 + (text[i] - '0');
      if (n > kMax) return std::nullopt;
      ++i;
    }
    int64_t unit_ms;
    int rank;
    if (text.substr(i, 2) == "ms") {
      unit_ms = 1, rank = 0, i += 2;
    } else if (i < text.size() && text[i] == 's') {
      unit_ms = 1000, rank = 1, ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit_ms = 60 * 1000, rank = 2, ++i;
    } else if (i < text.size() && text[i] == 'h') {
      unit_ms = 3600 * 1000, rank = 3, ++i;
    } else {
      return std::nullopt;
    }
    if (rank >= previous_rank) return std::nullopt;
    previous_rank = rank;
    if (n > (kMax - total) / unit_ms) return std::nullopt;
    total += n * unit_ms;
  }
  return Duration(total);
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const struct {
    int64_t size;
    const char* unit;
  } kUnits[] = {{3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms >= u.size) {
      out += std::to_string(ms / u.size) + u.unit;
      ms %= u.size;
    }
  }
  return out;
}

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kCritical:
      return "critical";
  }
  return "warning";
}

const char* LoadBalancingName(LoadBalancing lb) {
  switch (lb) {
    case LoadBalancing::kLeastRequests:
      return "least_requests";
    case LoadBalancing::kRoundRobin:
      return "round_robin";
  }
  return "least_requests";
}

const char* CompareOpName(CompareOp op) {
  switch (op) {
    case CompareOp::kGt:
      return ">";
    case CompareOp::kLt:
      return "<";
    case CompareOp::kGe:
      return ">=";
    case CompareOp::kLe:
      return "<=";
    case CompareOp::kEq:
      return "==";
    case CompareOp::kNe:
      return "!=";
  }
  return ">";
}

std::optional<Severity> ParseSeverity(std::string_view text) {
  std::string lower = Lower(text);
  if (lower == "info") return Severity::kInfo;
  if (lower == "warning") return Severity::kWarning;
  if (lower == "critical") return Severity::kCritical;
  return std::nullopt;
}

std::optional<CompareOp> ParseCompareOp(std::string_view text) {
  for (CompareOp op : {CompareOp::kGt, CompareOp::kLt, CompareOp::kGe, CompareOp::kLe,
                       CompareOp::kEq, CompareOp::kNe}) {
    if (text == CompareOpName(op)) return op;
  }
  return std::nullopt;
}

std::optional<LoadBalancing> ParseLoadBalancing(std::string_view text) {
  for (LoadBalancing lb : {LoadBalancing::kLeastRequests, LoadBalancing::kRoundRobin}) {
    if (text == LoadBalancingName(lb)) return lb;
  }
  return std::nullopt;
}

bool IsValidAggregation(std::string_view text) {
  return text.empty() || text == "none" || text == "max" || text == "min" || text == "sum" ||
         text == "avg" || text == "count";
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || IsDigit(name[0])) return false;
  for (char c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') return false;
  }
  return true;
}

namespace {

// A hand-written scanner over the selector; every failure names the byte where it
// stopped, so the config error can point at the column.
class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  // On failure *error_offset (when not null) is where it stopped.
  base::StatusOr<MetricSelector> Parse(size_t* error_offset) {
    base::StatusOr<MetricSelector> result = ParseSelector();
    if (!result.ok() && error_offset != nullptr) *error_offset = pos_;
    return result;
  }

 private:
  base::StatusOr<MetricSelector> ParseSelector() {
    MetricSelector selector;
    size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_], pos_ == start)) ++pos_;
    if (pos_ == start) return Error("expected a metric name");
    selector.metric = std::string(text_.substr(start, pos_ - start));
    SkipSpaces();
    if (pos_ == text_.size()) return selector;
    if (text_[pos_] != '{') return Error("expected '{' or the end after the metric name");
    ++pos_;
    while (true) {
      SkipSpaces();
      if (pos_ < text_.size() && text_[pos_] == '}') break;  // also allows a trailing ','
      size_t label_start = pos_;
      while (pos_ < text_.size() && (IsAlpha(text_[pos_]) || text_[pos_] == '_' ||
                                     (pos_ > label_start && IsDigit(text_[pos_])))) {
        ++pos_;
      }
      if (pos_ == label_start) return Error("expected a label name");
      std::string label(text_.substr(label_start, pos_ - label_start));
      SkipSpaces();
      if (Peek("!=") || Peek("=~") || Peek("!~")) return Error("only '=' matchers are supported");
      if (!Peek("=")) return Error("expected '=' after label name \"" + label + "\"");
      ++pos_;
      SkipSpaces();
      if (!Peek("\"")) return Error("expected '\"' to start the value of label \"" + label + "\"");
      std::string value;
      if (const char* error = ReadQuoted(&value)) {
        return Error(std::string(error) + " \"" + label + "\"");
      }
      if (!selector.match_labels.emplace(label, std::move(value)).second) {
        pos_ = label_start;
        return Error("duplicate label \"" + label + "\"");
      }
      SkipSpaces();
      if (Peek(",")) {
        ++pos_;
        continue;
      }
      if (!Peek("}")) return Error("expected ',' or '}'");
    }
    ++pos_;  // the '}'
    SkipSpaces();
    if (pos_ != text_.size()) return Error("unexpected text after '}'");
    return selector;
  }

  static bool IsNameChar(char c, bool first) {
    return IsAlpha(c) || c == '_' || c == ':' || (!first && (IsDigit(c) || c == '.'));
  }
  bool Peek(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  void SkipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  // At the opening quote; on success returns nullptr with pos_ past the closing one,
  // else what is wrong with pos_ where it went wrong.
  const char* ReadQuoted(std::string* out) {
    ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return nullptr;
      }
      if (c == '\\') {
        char e = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
        if (e == '\\' || e == '"') {
          out->push_back(e);
        } else if (e == 'n') {
          out->push_back('\n');
        } else {
          return "invalid escape (use \\\\, \\\" or \\n) in the value of label";
        }
        pos_ += 2;
        continue;
      }
      out->push_back(c);
      ++pos_;
    }
    return "unterminated value of label";
  }
  static base::Status Error(std::string message) {
    return base::InvalidArgumentError(std::move(message), "metric");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

base::StatusOr<MetricSelector> ParseMetricSelector(std::string_view text, size_t* error_offset) {
  return SelectorParser(text).Parse(error_offset);
}

}  // namespace speedmon::config
