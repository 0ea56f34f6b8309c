// Tests for the config adapters: every field the sampler and the watchers take is copied.
#include "sysprobe/from_config.h"

#include <gtest/gtest.h>

namespace speedmon::sysprobe {
namespace {

TEST(FromConfig, SamplerOptions) {
  config::SysprobeConfig config;
  config.cache_duration = std::chrono::milliseconds(2500);
  config.disk_paths = {"/", "/var/lib/emulators"};
  SamplerOptions options = SamplerOptionsFrom(config);
  EXPECT_EQ(options.cache_duration, std::chrono::milliseconds(2500));
  EXPECT_EQ(options.disk_paths, (std::vector<std::string>{"/", "/var/lib/emulators"}));
  EXPECT_EQ(options.proc_root, "/proc");
  EXPECT_FALSE(options.clock);
}

TEST(FromConfig, Selectors) {
  config::ProcessConfig by_regex;
  by_regex.name = "emulator-1";
  by_regex.cmdline_regex = "pokemon-gym.*8081";
  ProcessSelector selector = SelectorFrom(by_regex);
  EXPECT_FALSE(selector.pid);
  EXPECT_EQ(selector.pid_file, "");
  EXPECT_EQ(selector.cmdline_regex, "pokemon-gym.*8081");

  config::ProcessConfig by_pid;
  by_pid.pid = 1234;
  EXPECT_EQ(SelectorFrom(by_pid).pid, 1234);

  config::ProcessConfig by_file;
  by_file.pid_file = "/run/emulator-2.pid";
  EXPECT_EQ(SelectorFrom(by_file).pid_file, "/run/emulator-2.pid");
}

}  // namespace
}  // namespace speedmon::sysprobe
