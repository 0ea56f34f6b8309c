// The daemon's log: one line per event on stderr, with time and level, as text or JSON.
//
//   text: 2026-12-01T22:40:08.123Z info  listening: emulator-1=127.0.0.1:18081 ...
//   json: {"level":"info","msg":"listening: ...","time":"2026-12-01T22:40:08.123Z"}
//
// Any thread. Each line goes out in one write(2), so lines from several threads never
// interleave. Messages may carry bytes from outside (paths, names from a config): control
// characters are escaped in text and the JSON form goes through base/json.h, so no
// message can forge a second line. The access log is separate (proxy/worker.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace speedmon::base {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// "debug", "info", "warning", "error"; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);
std::string_view LogLevelName(LogLevel level);

// At start and on reload. Lines below `min_level` are dropped.
void SetLogOptions(LogFormat format, LogLevel min_level);

void Log(LogLevel level, std::string_view message);
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }

// The line Log would write for `message` at `unix_ms` (for tests).
std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view message,
                          int64_t unix_ms);

}  // namespace speedmon::base
