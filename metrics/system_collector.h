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
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sysprobe/process_watcher.h"
#include "sysprobe/system_sampler.h"

namespace speedmon::metrics {

struct WatchedProcess {
  std::string name;
  std::unique_ptr<sysprobe::ProcessWatcher> watcher;
  sysprobe::ProcessSample last;  // from the latest Sample()
  bool from_api = false;         // added by POST /api/v1/processes (else [[processes]])
  std::string selector;          // what it watches, as text ("pid 42"); for idempotency
};

class SystemCollector : public prometheus::Collectable {
 public:
  SystemCollector(std::shared_ptr<sysprobe::SystemSampler> sampler,
                  std::vector<WatchedProcess> processes);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Samples every watched process now (Collect does it too).
  void SampleProcesses() const;
  const std::vector<WatchedProcess>& processes() const { return processes_; }
  // POST /api/v1/processes: watches one more process from the next scrape on. A name
  // already watched with the same selector is a duplicate (false, nothing changes);
  // kAlreadyExists (field "name") for a name watched otherwise, kTooLarge past
  // kMaxProcesses. DELETE /api/v1/processes/{name}: stops watching a process added that
  // way: kNotFound, or kFailedPrecondition for a [[processes]] entry of the config.
  static constexpr size_t kMaxProcesses = 256;
  base::StatusOr<bool> AddProcess(WatchedProcess process);
  base::Status RemoveProcess(std::string_view name);
  // Replaces the config's watched processes (a reload); the ones added through the API
  // stay unless the config now has their name. On the thread that calls Collect.
  void SetProcesses(std::vector<WatchedProcess> processes);
  sysprobe::SystemSampler& sampler() const { return *sampler_; }

 private:
  std::shared_ptr<sysprobe::SystemSampler> sampler_;
  mutable std::vector<WatchedProcess> processes_;
  mutable sysprobe::SelfSampler self_;  // process_* of speedmon itself, on every Collect
};

}  // namespace speedmon::metrics
