#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace speedmon::base {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s, OkStatus());
}

TEST(Status, CarriesCodeMessageAndField) {
  Status s = InvalidArgumentError("must be a number", "limit");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "must be a number");
  EXPECT_EQ(s.field(), "limit");
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: must be a number (field: limit)");
  EXPECT_EQ(UnavailableError("store closed").ToString(), "UNAVAILABLE: store closed");
}

TEST(Status, WithContextPrefixesTheMessageOnly) {
  Status s = NotFoundError("no such file", "path").WithContext("config /etc/x.toml");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "config /etc/x.toml: no such file");
  EXPECT_EQ(s.field(), "path");
  EXPECT_TRUE(OkStatus().WithContext("ignored").ok());
}

TEST(StatusOr, HoldsAValueOrAnError) {
  StatusOr<std::string> v = std::string("abc");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "abc");
  EXPECT_EQ(v->size(), 3u);
  EXPECT_TRUE(v.status().ok());

  StatusOr<std::string> e = TooLargeError("body over 1048576 bytes");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kTooLarge);
}

TEST(StatusOr, AnOkStatusWithoutAValueIsAnInternalError) {
  StatusOr<int> v = OkStatus();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

TEST(StatusOr, MovesOutMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> v = std::make_unique<int>(7);
  std::unique_ptr<int> p = std::move(v).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace speedmon::base
