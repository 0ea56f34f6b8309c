#include "base/json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace speedmon::base {
namespace {

using nlohmann::json;

std::string Str(std::string_view bytes) {
  std::string out;
  AppendJsonString(bytes, &out);
  return out;
}

TEST(JsonString, KeepsValidUtf8AsIs) {
  EXPECT_EQ(Str("/action/\xC3\xA9"), "\"/action/\xC3\xA9\"");  // é
  EXPECT_EQ(Str("\xE2\x82\xAC"), "\"\xE2\x82\xAC\"");          // €
  EXPECT_EQ(Str("\xF0\x9F\x8E\xAE"), "\"\xF0\x9F\x8E\xAE\"");  // 🎮
  EXPECT_EQ(Str("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");  // U+10FFFF
  EXPECT_EQ(Str("\xEF\xBF\xBD"), "\"\xEF\xBF\xBD\"");          // U+FFFD itself
  EXPECT_EQ(Str("\x7f"), "\"\x7f\"");
}

TEST(JsonString, EscapesQuotesBackslashAndControls) {
  EXPECT_EQ(Str("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Str("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(Str(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(Str("</script>"), R"("</script>")");
}

TEST(JsonString, ReplacesEachMaximalIllFormedSubpartWithOneReplacementChar) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(Str("/st\xff"
                "atus"),
            "\"/st" + r + "atus\"");                                // the byte that killed 0.1
  EXPECT_EQ(Str("\x80"), "\"" + r + "\"");                          // lone continuation
  EXPECT_EQ(Str("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong '/': C0 never leads
  EXPECT_EQ(Str("\xE0\x80\xAF"), "\"" + r + r + r + "\"");          // overlong 3-byte
  EXPECT_EQ(Str("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // surrogate D800
  EXPECT_EQ(Str("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // past U+10FFFF
  EXPECT_EQ(Str("\xE2\x82"), "\"" + r + "\"");                      // truncated: one subpart
  EXPECT_EQ(Str("\xE2\x82"
                "a"),
            "\"" + r + "a\"");
  EXPECT_EQ(Str("\xF0\x9F\x8E"), "\"" + r + "\"");
  EXPECT_EQ(Str("\xC3"), "\"" + r + "\"");
  EXPECT_EQ(Str("\xF5\xFF"), "\"" + r + r + "\"");
}

TEST(Utf8, ValidAndRepaired) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain /status \xC3\xA9"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));
  EXPECT_EQ(ValidUtf8("ok"), "ok");
  EXPECT_EQ(ValidUtf8("a\xff"
                      "b\xC3\xA9"),
            "a\xEF\xBF\xBD"
            "b\xC3\xA9");
  EXPECT_TRUE(IsValidUtf8(ValidUtf8("\xE0\x80\xF0\x9F\xC3")));
}

TEST(ToJson, WritesDocumentsWithSortedKeysAndNoThrowOnBadBytes) {
  json doc = {{"path",
               "/st\xff"
               "atus"},
              {"n", 3},
              {"u", uint64_t{18446744073709551615u}},
              {"neg", -7},
              {"f", 1.5},
              {"ok", true},
              {"none", nullptr},
              {"list", json::array({1, "x"})},
              {"bad\xfe"
               "key",
               "v"}};
  EXPECT_EQ(ToJson(doc),
            "{\"bad\xEF\xBF\xBDkey\":\"v\",\"f\":1.5,\"list\":[1,\"x\"],\"n\":3,\"neg\":-7,"
            "\"none\":null,\"ok\":true,\"path\":\"/st\xEF\xBF\xBD"
            "atus\","
            "\"u\":18446744073709551615}");
  // The strict dump is what used to abort the process.
  EXPECT_THROW((void)doc.dump(), json::type_error);
}

TEST(ToJson, NonFiniteNumbersAreNull) {
  json doc = json::array({std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(), 0.1, 1e300});
  EXPECT_EQ(ToJson(doc), "[null,null,0.1,1e+300]");
}

TEST(ToJson, OutputParsesBackForAnyInputBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  json doc = {{"all", all}};
  json back = json::parse(ToJson(doc));  // strict parser: throws on invalid UTF-8
  EXPECT_EQ(back["all"].get<std::string>().substr(0, 5), std::string("\0\x01\x02\x03\x04", 5));
}

TEST(JsonErrorBody, MessageAndFieldEscaped) {
  EXPECT_EQ(JsonError("no such path: /a\"b"), R"({"error":"no such path: /a\"b","field":null})");
  EXPECT_EQ(JsonError("bad", "items[0].x\xff"),
            "{\"error\":\"bad\",\"field\":\"items[0].x\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace speedmon::base
