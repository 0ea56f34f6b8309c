#include "base/boundary.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace speedmon::base {
namespace {

TEST(Guard, RunsTheBodyAndReportsSuccess) {
  int ran = 0;
  uint64_t before = ExceptionCount(Component::kHealth);
  EXPECT_TRUE(Guard(
      Component::kHealth, "test", [&] { ++ran; }, [&] { ran += 100; }));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(ExceptionCount(Component::kHealth), before);
}

TEST(Guard, CatchesCountsAndRecovers) {
  uint64_t before = ExceptionCount(Component::kAdmin);
  bool recovered = false;
  EXPECT_FALSE(Guard(
      Component::kAdmin, "test", [] { nlohmann::json j = nlohmann::json::parse("{"); },
      [&] { recovered = true; }));
  EXPECT_TRUE(recovered);
  EXPECT_FALSE(Guard(Component::kAdmin, "test", [] { throw 42; }));
  EXPECT_EQ(ExceptionCount(Component::kAdmin), before + 2);
}

TEST(Guard, AThrowingRecoveryIsCountedAndDropped) {
  uint64_t before = ExceptionCount(Component::kStore);
  EXPECT_FALSE(Guard(
      Component::kStore, "test", [] { throw std::runtime_error("a"); },
      [] { throw std::runtime_error("b"); }));
  EXPECT_EQ(ExceptionCount(Component::kStore), before + 2);
}

TEST(Guard, ComponentNamesAreTheMetricLabels) {
  EXPECT_EQ(ComponentName(Component::kAdmin), "admin");
  EXPECT_EQ(ComponentName(Component::kProxy), "proxy");
  EXPECT_EQ(ComponentName(Component::kLifecycle), "lifecycle");
}

}  // namespace
}  // namespace speedmon::base
