#include "base/strings.h"

#include <gtest/gtest.h>

namespace speedmon::base {
namespace {

TEST(Strings, EqualsIgnoreCaseIsAsciiOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("host", "hosts"));
  EXPECT_FALSE(EqualsIgnoreCase("\xC3\xA9", "\xC3\x89"));  // é and É: not ASCII, not folded
  EXPECT_FALSE(EqualsIgnoreCase("a[", "A{"));              // '[' is not 'A' + 26
}

TEST(Strings, Trims) {
  EXPECT_EQ(TrimSpaceTab(" \t x y \t "), "x y");
  EXPECT_EQ(TrimSpaceTab("\r\nx\r\n"), "\r\nx\r\n");
  EXPECT_EQ(TrimWhitespace(" \r\n\tx y\n\r "), "x y");
  EXPECT_EQ(TrimWhitespace("   "), "");
  EXPECT_EQ(TrimSpaceTab(""), "");
}

}  // namespace
}  // namespace speedmon::base
