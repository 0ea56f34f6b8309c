#include "base/url.h"

#include <gtest/gtest.h>

namespace speedmon::base {
namespace {

TEST(PercentDecode, DecodesEscapesAndKeepsTheRest) {
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("plain+text"), "plain+text");
  EXPECT_EQ(PercentDecode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(PercentDecode("%41"), "A");
  EXPECT_EQ(PercentDecode("%C3%A9"), "\xC3\xA9");
  EXPECT_EQ(PercentDecode("%00x"), std::string("\0x", 2));
  EXPECT_EQ(PercentDecode("%FF"), "\xFF");   // bytes, not necessarily UTF-8
  EXPECT_EQ(PercentDecode("%2525"), "%25");  // decoded once only
}

TEST(PercentDecode, RefusesMalformedEscapes) {
  EXPECT_EQ(PercentDecode("%"), std::nullopt);
  EXPECT_EQ(PercentDecode("a%"), std::nullopt);
  EXPECT_EQ(PercentDecode("a%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4g"), std::nullopt);
  EXPECT_EQ(PercentDecode("%g4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%%41"), std::nullopt);
  EXPECT_EQ(PercentDecode("ok%41%"), std::nullopt);
}

TEST(QueryParam, FindsTheFirstRawValue) {
  EXPECT_EQ(QueryParam("limit=5&x=1", "limit"), "5");
  EXPECT_EQ(QueryParam("x=1&limit=5&limit=6", "limit"), "5");
  EXPECT_EQ(QueryParam("limit", "limit"), "");
  EXPECT_EQ(QueryParam("limit=", "limit"), "");
  EXPECT_EQ(QueryParam("limits=5", "limit"), std::nullopt);
  EXPECT_EQ(QueryParam("", "limit"), std::nullopt);
  EXPECT_EQ(QueryParam("&&limit=%35", "limit"), "%35");
}

}  // namespace
}  // namespace speedmon::base
