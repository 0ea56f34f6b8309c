// Host health: one SystemSnapshot (CPU, memory, swap, load, disks, network, processes,
// boot time) read from /proc and statvfs, cached for cache_duration.
//
// Built by app/ at start; Get() is called from the main thread (scrapes, /api/v1/system,
// the alert evaluator) and is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sysprobe/proc_fs.h"
#include "sysprobe/proc_parse.h"

namespace speedmon::sysprobe {

// One configured disk path, sized as `df` and psutil do.
struct DiskUsage {
  std::string path;
  bool ok = false;     // false: statvfs failed; the sizes are 0 and `error` says why
  int error = 0;       // errno from statvfs when !ok
  uint64_t total = 0;  // bytes: f_blocks * f_frsize
  uint64_t used = 0;   // bytes: (f_blocks - f_bfree) * f_frsize
  uint64_t free = 0;   // bytes: f_bavail * f_frsize, what an unprivileged writer still has
  double percent = 0;  // used / (used + free) * 100: blocks reserved for root count as
                       // neither, so a disk shows 100 % when users can write no more
};

DiskUsage SampleDisk(const std::string& path);

// The host figures behind pokemon_speedrun_system_* (and the dotted names system.*).
// Sizes are bytes, percents 0..100. A source that could not be
// read leaves its fields 0 and its *_ok flag false, so a caller can tell "0 %" from "no
// data" (e.g. omit the gauge instead of exporting a false 0).
struct SystemSnapshot {
  double cpu_percent = 0;  // busy share of all CPUs since the previous reading, see Get()
  int cpu_count = 0;       // "cpuN" lines in /proc/stat: online CPUs
  double load_average_1m = 0;
  double load_average_5m = 0;
  double load_average_15m = 0;
  uint64_t memory_total = 0;
  uint64_t memory_available = 0;  // MemAvailable, or its estimate on kernels before 3.14
  uint64_t memory_used = 0;       // total - available
  double memory_percent = 0;      // used / total * 100 (psutil's virtual_memory().percent)
  uint64_t swap_total = 0;
  uint64_t swap_used = 0;
  double swap_percent = 0;       // 0 when there is no swap
  std::vector<DiskUsage> disks;  // one per configured path, in config order
  uint64_t bytes_sent = 0;       // summed over interfaces except lo, since boot
  uint64_t bytes_recv = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_recv = 0;
  int64_t process_count = 0;  // processes (numeric entries of /proc), not threads
  int64_t boot_time = 0;      // unix seconds, /proc/stat btime
  double uptime_seconds = 0;
  double timestamp = 0;                                // unix seconds (wall clock) when collected
  std::chrono::steady_clock::time_point collected_at;  // the sampler's clock

  bool cpu_ok = false;        // /proc/stat (cpu_*, boot_time)
  bool memory_ok = false;     // /proc/meminfo (memory_*, swap_*)
  bool load_ok = false;       // /proc/loadavg
  bool network_ok = false;    // /proc/net/dev
  bool uptime_ok = false;     // /proc/uptime
  bool processes_ok = false;  // listing the proc root
};

struct SamplerOptions {
  std::string proc_root = "/proc";
  // A Get() within this long of the last collection returns that snapshot again. 0 makes
  // every Get() collect.
  std::chrono::milliseconds cache_duration{1000};
  std::vector<std::string> disk_paths{"/"};
  // Time for the cache; empty = std::chrono::steady_clock::now. Tests pass a fake.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// CPU percent needs two readings of /proc/stat. The constructor takes the first; each
// collection computes the busy share since the baseline and moves the baseline, so the
// figure is the average over the time between collections (normally the scrape
// interval), as psutil.cpu_percent(interval=None). Ticks are 10 ms, so a baseline younger
// than kMinCpuInterval gives mostly rounding:
//  - the first collection sleeps until the prime reading is kMinCpuInterval old (at most
//    that long, and only once; call Get() once at start-up to take it off a scrape);
//  - a later collection less than kMinCpuInterval after the baseline (cache_duration
//    below it) repeats the previous percent and keeps the baseline.
class SystemSampler {
 public:
  static constexpr std::chrono::milliseconds kMinCpuInterval{100};

  explicit SystemSampler(SamplerOptions options);
  SystemSampler(const SystemSampler&) = delete;
  SystemSampler& operator=(const SystemSampler&) = delete;

  // The cached snapshot if it is younger than cache_duration, else a fresh one. When a
  // collection is already running on another thread, the caller waits for it and shares
  // its result (a collection takes well under a millisecond past the first one), so
  // concurrent callers never read /proc twice. Never returns null; never throws.
  std::shared_ptr<const SystemSnapshot> Get();

  // Collections done so far (tests and the bench).
  uint64_t collections() const { return collections_.load(std::memory_order_relaxed); }

 private:
  SystemSnapshot Collect();
  std::optional<ProcStat> ReadStat();
  void CollectCpu(SystemSnapshot* snapshot);
  void CollectMemory(SystemSnapshot* snapshot);
  void CollectOthers(SystemSnapshot* snapshot);

  const ProcFs fs_;
  const std::chrono::milliseconds cache_duration_;
  const std::vector<std::string> disk_paths_;
  const std::function<std::chrono::steady_clock::time_point()> clock_;

  std::mutex mu_;
  std::condition_variable collected_;
  std::shared_ptr<const SystemSnapshot> latest_;  // guarded by mu_
  bool collecting_ = false;                       // guarded by mu_
  std::atomic<uint64_t> collections_{0};

  // Used only by the one thread collecting (collecting_ hands it over under mu_).
  std::string buffer_;
  std::vector<int> pids_;
  std::optional<CpuTimes> cpu_base_;
  std::chrono::steady_clock::time_point cpu_base_time_;
  std::optional<double> cpu_percent_;
};

}  // namespace speedmon::sysprobe
