#include "base/log.h"

#include <gtest/gtest.h>

namespace speedmon::base {
namespace {

constexpr int64_t kNoon = 1764590408123;  // 2025-12-01T12:00:08.123Z

TEST(Log, TextLineHasTimeLevelAndOneLine) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kInfo, "listening", kNoon),
            "2025-12-01T12:00:08.123Z info    listening\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kWarning, "a\nforged line\x01", kNoon),
            "2025-12-01T12:00:08.123Z warning a\\nforged line\\x01\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kError,
                          "path /st\xff"
                          "atus",
                          kNoon),
            "2025-12-01T12:00:08.123Z error   path /st\xEF\xBF\xBD"
            "atus\n");
}

TEST(Log, JsonLineIsOneObject) {
  EXPECT_EQ(
      FormatLogLine(LogFormat::kJson, LogLevel::kError, "bad \"x\"\n", kNoon),
      "{\"level\":\"error\",\"msg\":\"bad \\\"x\\\"\\n\",\"time\":\"2025-12-01T12:00:08.123Z\"}\n");
}

TEST(Log, Levels) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warning", &l));
  EXPECT_EQ(l, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("verbose", &l));
  EXPECT_FALSE(ParseLogLevel("INFO", &l));
  EXPECT_EQ(LogLevelName(LogLevel::kError), "error");
}

}  // namespace
}  // namespace speedmon::base
