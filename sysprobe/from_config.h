// Adapters from the config structs to sysprobe's own options, kept apart so the rest of
// sysprobe builds without the config library. Header-only; used by app/ on the main
// thread when it builds the sampler and the watchers.
#pragma once

#include "config/config.h"
#include "sysprobe/process_watcher.h"
#include "sysprobe/system_sampler.h"

namespace speedmon::sysprobe {

inline SamplerOptions SamplerOptionsFrom(const config::SysprobeConfig& config) {
  SamplerOptions options;
  options.cache_duration = config.cache_duration;
  options.disk_paths = config.disk_paths;
  return options;
}

inline ProcessSelector SelectorFrom(const config::ProcessConfig& config) {
  ProcessSelector selector;
  selector.pid = config.pid;
  selector.pid_file = config.pid_file;
  selector.cmdline_regex = config.cmdline_regex;
  return selector;
}

}  // namespace speedmon::sysprobe
