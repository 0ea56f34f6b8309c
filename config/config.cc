// Loading entry points of config.h: text or file -> validated Config or the first
// error with its place, and the summary `--check-config` prints. Main thread (start, SIGHUP).
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <sstream>

#include "config/load.h"
#include "config/toml_reader.h"

namespace speedmon::config {
namespace {

// A config is a few KB; anything this big is a wrong file, not a config.
constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

// toml++ 3.3 recurses once per dotted-key part ("a.b.c" in a key or a [table.header])
// and overflows an 8 MiB stack near 40k parts; the garbage tests found it. Real configs
// have a few dozen dots outside strings, so more than this is refused before parsing.
constexpr size_t kMaxDotsOutsideStrings = 4096;

// "FILE:LINE:COL: message", or "FILE: message" for an error with no single place.
base::Status Failure(const std::string& source, int line, int column, const std::string& message,
                     std::string field = "",
                     base::StatusCode code = base::StatusCode::kInvalidArgument) {
  std::string text = line <= 0 ? source + ": " + message
                               : source + ":" + std::to_string(line) + ":" +
                                     std::to_string(column) + ": " + message;
  return base::Status(code, std::move(text), std::move(field));
}

// Refuses a text with more than kMaxDotsOutsideStrings dots outside strings and comments.
base::Status CheckDottedKeyDepth(std::string_view text, const std::string& source) {
  enum class State { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  State state = State::kCode;
  size_t dots = 0;
  int line = 1;
  size_t line_start = 0;
  auto at = [&](std::string_view s, size_t i) { return text.substr(i, s.size()) == s; };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      if (state == State::kComment || state == State::kBasic || state == State::kLiteral) {
        state = State::kCode;
      }
      continue;
    }
    switch (state) {
      case State::kCode:
        if (c == '#') {
          state = State::kComment;
        } else if (at("\"\"\"", i)) {
          state = State::kMultiBasic, i += 2;
        } else if (at("'''", i)) {
          state = State::kMultiLiteral, i += 2;
        } else if (c == '"') {
          state = State::kBasic;
        } else if (c == '\'') {
          state = State::kLiteral;
        } else if (c == '.' && ++dots > kMaxDotsOutsideStrings) {
          return Failure(source, line, static_cast<int>(i - line_start + 1),
                         "more than " + std::to_string(kMaxDotsOutsideStrings) +
                             " dots outside strings: too deeply dotted keys to be a speedmon "
                             "config");
        }
        break;
      case State::kBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;
        } else if (c == '"') {
          state = State::kCode;
        }
        break;
      case State::kLiteral:
        if (c == '\'') state = State::kCode;
        break;
      case State::kMultiBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;
        } else if (at("\"\"\"", i)) {
          state = State::kCode, i += 2;
        }
        break;
      case State::kMultiLiteral:
        if (at("'''", i)) state = State::kCode, i += 2;
        break;
      case State::kComment:
        break;
    }
  }
  return base::OkStatus();
}

}  // namespace

int Config::UpstreamIndex(const std::string& name) const {
  for (size_t i = 0; i < upstreams.size(); ++i) {
    if (upstreams[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

base::StatusOr<Config> LoadFromString(std::string_view toml_text, const std::string& source_name) {
  if (toml_text.size() > kMaxConfigBytes) {
    return Failure(source_name, 0, 0,
                   "config is larger than " + std::to_string(kMaxConfigBytes >> 20) + " MiB", "",
                   base::StatusCode::kTooLarge);
  }
  if (base::Status deep = CheckDottedKeyDepth(toml_text, source_name); !deep.ok()) return deep;
  try {
    toml::table root = toml::parse(toml_text, std::string_view(source_name));
    Config config = internal::LoadConfigTable(root);
    config.source = source_name;
    return config;
  } catch (const toml::parse_error& e) {
    const toml::source_position& where = e.source().begin;
    return Failure(source_name, static_cast<int>(where.line), static_cast<int>(where.column),
                   std::string(e.description()));
  } catch (const internal::LoadFailure& f) {
    return Failure(source_name, f.line, f.column, f.message, f.field);
  } catch (const std::exception& e) {
    // bad_alloc and the like: the promise is "never throws", so it is an error too.
    return Failure(source_name, 0, 0, std::string("cannot load: ") + e.what(), "",
                   base::StatusCode::kInternal);
  }
}

base::StatusOr<Config> LoadFromFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Failure(path, 0, 0, std::string("cannot open: ") + std::strerror(err), "",
                   err == ENOENT ? base::StatusCode::kNotFound : base::StatusCode::kInternal);
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Failure(path, 0, 0, std::string("cannot read: ") + std::strerror(err), "",
                     base::StatusCode::kInternal);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) break;  // LoadFromString reports it
  }
  ::close(fd);
  return LoadFromString(text, path);
}

std::string Summary(const Config& config) {
  std::ostringstream out;
  const AdminConfig& admin = config.admin;
  out << "config " << config.source << ": ok\n";
  out << "admin: " << admin.address.ToString() << " (writes "
      << (!admin.auth_token.empty()    ? "need a token"
          : admin.address.IsLoopback() ? "open to loopback"
                                       : "open to all")
      << ")\n";
  out << "listeners: " << config.listeners.size()
      << (config.monitor_only() ? " (monitor-only: nothing is proxied)" : "") << "\n";
  for (const ListenerConfig& l : config.listeners) {
    out << "  " << l.name << " " << l.address.ToString() << " -> " << l.upstream << "\n";
  }
  out << "upstreams: " << config.upstreams.size() << "\n";
  for (const UpstreamConfig& u : config.upstreams) {
    out << "  " << u.name << ":";
    for (const Address& a : u.endpoints) out << " " << a.ToString();
    out << " (" << LoadBalancingName(u.load_balancing) << ", ";
    if (u.health_check.enabled) {
      out << "health check " << u.health_check.path << " every "
          << FormatDuration(u.health_check.interval) << ")\n";
    } else {
      out << "no health check)\n";
    }
  }
  out << "routes: " << config.routes.size() << "\n";
  out << "processes: " << config.processes.size() << "\n";
  out << "alert rules: " << config.alerting.rules.size()
      << (config.alerting.default_rules ? " + defaults" : "")
      << ", alertmanagers: " << config.alerting.alertmanagers.size()
      << ", webhooks: " << config.alerting.webhooks.size() << "\n";
  out << "store: "
      << (config.speedrun.store_path.empty() ? "memory only" : config.speedrun.store_path) << "\n";
  return out.str();
}

}  // namespace speedmon::config
