// The daemon's log. See log.h.
#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "base/json.h"

namespace speedmon::base {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<LogLevel> g_min_level{LogLevel::kInfo};

void AppendTime(int64_t unix_ms, std::string* out) {
  time_t seconds = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&seconds, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  out->append(buf);
}

// Text: printable bytes as they are (UTF-8 included, repaired), control characters as
// \n, \t, \xNN, so one message is always one line.
void AppendTextMessage(std::string_view message, std::string* out) {
  std::string repaired;
  if (!IsValidUtf8(message)) {
    repaired = ValidUtf8(message);
    message = repaired;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : message) {
    if (c >= 0x20 && c != 0x7f) {
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\t') {
      out->append("\\t");
    } else {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  static constexpr LogLevel kAll[] = {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                                      LogLevel::kError};
  for (LogLevel l : kAll) {
    if (text == LogLevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void SetLogOptions(LogFormat format, LogLevel min_level) {
  g_format.store(format, std::memory_order_relaxed);
  g_min_level.store(min_level, std::memory_order_relaxed);
}

std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view message,
                          int64_t unix_ms) {
  std::string line;
  line.reserve(message.size() + 64);
  if (format == LogFormat::kJson) {
    line.append("{\"level\":\"");
    line.append(LogLevelName(level));
    line.append("\",\"msg\":");
    AppendJsonString(message, &line);
    line.append(",\"time\":\"");
    AppendTime(unix_ms, &line);
    line.append("\"}\n");
    return line;
  }
  AppendTime(unix_ms, &line);
  line.push_back(' ');
  std::string_view name = LogLevelName(level);
  line.append(name);
  line.append(8 - name.size(), ' ');  // columns line up: "info    ", "warning "
  AppendTextMessage(message, &line);
  line.push_back('\n');
  return line;
}

void Log(LogLevel level, std::string_view message) {
  if (level < g_min_level.load(std::memory_order_relaxed)) return;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::string line = FormatLogLine(g_format.load(std::memory_order_relaxed), level, message, now);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: drop the line, never the process
    off += static_cast<size_t>(n);
  }
}

}  // namespace speedmon::base
