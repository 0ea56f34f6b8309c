// Host, watched-process and speedmon's own process metrics, computed at scrape time from
// sysprobe's plain structs (the system snapshot is cached for cache_duration).
//
// Threads: Collect and Sample run on the main thread only (ProcessWatcher is not
// thread-safe); the SystemSampler itself is.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <string>
#include <vector>

#include "sysprobe/process_watcher.h"
#include "sysprobe/system_sampler.h"

namespace speedmon::metrics {

struct WatchedProcess {
  std::string name;
  std::unique_ptr<sysprobe::ProcessWatcher> watcher;
  sysprobe::ProcessSample last;  // from the latest Sample()
};

class SystemCollector : public prometheus::Collectable {
 public:
  SystemCollector(std::shared_ptr<sysprobe::SystemSampler> sampler,
                  std::vector<WatchedProcess> processes);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Samples every watched process now (Collect does it too).
  void SampleProcesses() const;
  const std::vector<WatchedProcess>& processes() const { return processes_; }
  // Replaces the watched processes (a reload). On the thread that calls Collect.
  void SetProcesses(std::vector<WatchedProcess> processes) { processes_ = std::move(processes); }
  sysprobe::SystemSampler& sampler() const { return *sampler_; }

 private:
  std::shared_ptr<sysprobe::SystemSampler> sampler_;
  mutable std::vector<WatchedProcess> processes_;
  mutable sysprobe::SelfSampler self_;  // process_* of speedmon itself, on every Collect
};

}  // namespace speedmon::metrics
