// Host snapshot collection and its cache (see system_sampler.h). Get() from any thread.
#include "sysprobe/system_sampler.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <thread>

namespace speedmon::sysprobe {
namespace {

double Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return 0.0;
  return 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double WallSeconds() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(now).count();
}

}  // namespace

DiskUsage SampleDisk(const std::string& path) {
  DiskUsage disk;
  disk.path = path;
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    disk.error = errno;
    return disk;
  }
  uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
  uint64_t bfree = st.f_bfree < st.f_blocks ? st.f_bfree : st.f_blocks;
  disk.ok = true;
  disk.total = static_cast<uint64_t>(st.f_blocks) * unit;
  disk.used = static_cast<uint64_t>(st.f_blocks - bfree) * unit;
  disk.free = static_cast<uint64_t>(st.f_bavail) * unit;
  disk.percent = Percent(disk.used, disk.used + disk.free);
  return disk;
}

SystemSampler::SystemSampler(SamplerOptions options)
    : fs_(std::move(options.proc_root)),
      cache_duration_(options.cache_duration),
      disk_paths_(std::move(options.disk_paths)),
      clock_(options.clock ? std::move(options.clock)
                           : [] { return std::chrono::steady_clock::now(); }) {
  // The prime reading, so that the first Get() has a baseline (see the class comment).
  if (std::optional<ProcStat> stat = ReadStat()) {
    cpu_base_ = stat->cpu;
    cpu_base_time_ = std::chrono::steady_clock::now();
  }
}

std::shared_ptr<const SystemSnapshot> SystemSampler::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  if (latest_ && clock_() - latest_->collected_at < cache_duration_) return latest_;
  if (collecting_) {
    collected_.wait(lock, [this] { return !collecting_; });
    return latest_;
  }
  collecting_ = true;
  lock.unlock();

  auto fresh = std::make_shared<SystemSnapshot>(Collect());
  fresh->collected_at = clock_();

  lock.lock();
  latest_ = fresh;
  collecting_ = false;
  collections_.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  collected_.notify_all();
  return fresh;
}

SystemSnapshot SystemSampler::Collect() {
  SystemSnapshot snapshot;
  CollectCpu(&snapshot);
  CollectMemory(&snapshot);
  CollectOthers(&snapshot);
  snapshot.disks.reserve(disk_paths_.size());
  for (const std::string& path : disk_paths_) snapshot.disks.push_back(SampleDisk(path));
  snapshot.timestamp = WallSeconds();
  return snapshot;
}

std::optional<ProcStat> SystemSampler::ReadStat() {
  if (!fs_.Read("stat", &buffer_)) return std::nullopt;
  return ParseProcStat(buffer_);
}

void SystemSampler::CollectCpu(SystemSnapshot* snapshot) {
  std::optional<ProcStat> stat = ReadStat();
  auto now = std::chrono::steady_clock::now();
  if (stat && !cpu_percent_) {
    if (!cpu_base_) {  // the prime reading failed; this one becomes the baseline
      cpu_base_ = stat->cpu;
      cpu_base_time_ = now;
    }
    auto age = now - cpu_base_time_;
    if (age < kMinCpuInterval) {
      std::this_thread::sleep_for(kMinCpuInterval - age);
      stat = ReadStat();
      now = std::chrono::steady_clock::now();
    }
  }
  if (!stat) return;
  if (!cpu_percent_ || now - cpu_base_time_ >= kMinCpuInterval) {
    cpu_percent_ = CpuPercent(*cpu_base_, stat->cpu);
    cpu_base_ = stat->cpu;
    cpu_base_time_ = now;
  }
  snapshot->cpu_ok = true;
  snapshot->cpu_percent = *cpu_percent_;
  snapshot->cpu_count = stat->cpu_count();
  snapshot->boot_time = stat->btime.value_or(0);
}

void SystemSampler::CollectMemory(SystemSnapshot* snapshot) {
  if (!fs_.Read("meminfo", &buffer_)) return;
  std::optional<MemInfo> mem = ParseMemInfo(buffer_);
  if (!mem) return;
  snapshot->memory_ok = true;
  snapshot->memory_total = mem->total_bytes;
  snapshot->memory_available = mem->available_bytes;
  snapshot->memory_used = mem->total_bytes - mem->available_bytes;
  snapshot->memory_percent = Percent(snapshot->memory_used, mem->total_bytes);
  snapshot->swap_total = mem->swap_total_bytes;
  snapshot->swap_used = mem->swap_total_bytes - mem->swap_free_bytes;
  snapshot->swap_percent = Percent(snapshot->swap_used, mem->swap_total_bytes);
}

void SystemSampler::CollectOthers(SystemSnapshot* snapshot) {
  if (fs_.Read("loadavg", &buffer_)) {
    if (std::optional<LoadAvg> load = ParseLoadAvg(buffer_)) {
      snapshot->load_ok = true;
      snapshot->load_average_1m = load->load1;
      snapshot->load_average_5m = load->load5;
      snapshot->load_average_15m = load->load15;
    }
  }
  if (fs_.Read("net/dev", &buffer_)) {
    if (std::optional<NetDevTotals> net = ParseNetDev(buffer_)) {
      snapshot->network_ok = true;
      snapshot->bytes_sent = net->bytes_sent;
      snapshot->bytes_recv = net->bytes_recv;
      snapshot->packets_sent = net->packets_sent;
      snapshot->packets_recv = net->packets_recv;
    }
  }
  if (fs_.Read("uptime", &buffer_)) {
    if (std::optional<Uptime> uptime = ParseUptime(buffer_)) {
      snapshot->uptime_ok = true;
      snapshot->uptime_seconds = uptime->uptime_seconds;
    }
  }
  if (fs_.ListPids(&pids_)) {
    snapshot->processes_ok = true;
    snapshot->process_count = static_cast<int64_t>(pids_.size());
  }
}

}  // namespace speedmon::sysprobe
