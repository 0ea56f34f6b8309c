#include "base/strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

TEST(Strings, NextListItemSplitsOnCommasAndTrims) {
  auto items = [](std::string_view list) {
    std::vector<std::string> out;
    std::string_view item;
    while (NextListItem(&list, &item)) out.emplace_back(item);
    return out;
  };
  EXPECT_EQ(items(" keep-alive ,\tX-Foo"), (std::vector<std::string>{"keep-alive", "X-Foo"}));
  EXPECT_EQ(items("a,,b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(items("a,"), (std::vector<std::string>{"a"}));  // nothing after the last comma
  EXPECT_EQ(items(",a"), (std::vector<std::string>{"", "a"}));
  EXPECT_EQ(items(""), (std::vector<std::string>{}));
  EXPECT_EQ(items("gzip;q=0"), (std::vector<std::string>{"gzip;q=0"}));
}

}  // namespace
}  // namespace speedmon::base
