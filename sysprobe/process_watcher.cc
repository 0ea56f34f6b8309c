// One watched process and speedmon's own figures (see process_watcher.h).
// ProcessWatcher and SelfSampler: their owner's thread. SelfSample: any thread.
#include "sysprobe/process_watcher.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "sysprobe/proc_parse.h"

namespace speedmon::sysprobe {
namespace {

// Pid files are a number and a newline; a big one is not a pid file.
constexpr size_t kMaxPidFileBytes = 4096;

// libstdc++'s std::regex recurses once per input character for patterns like "(a|b)*":
// at -O2 a 20 KB cmdline (a java classpath) overflows an 8 MiB stack. Matching only the
// head of the cmdline bounds the depth; an emulator's distinguishing arguments are early.
constexpr size_t kMaxCmdlineMatchBytes = 4096;

// "<dir>/<leaf>" for a dir of "1234" or "self", in a stack buffer.
class RelPath {
 public:
  RelPath(std::string_view dir, std::string_view leaf) {
    size_t n = std::min(dir.size(), sizeof(path_) - leaf.size() - 2);
    std::memcpy(path_, dir.data(), n);
    path_[n] = '/';
    std::memcpy(path_ + n + 1, leaf.data(), leaf.size());
    size_ = n + 1 + leaf.size();
  }
  std::string_view view() const { return {path_, size_}; }

 private:
  char path_[64];
  size_t size_;
};

class PidDir {
 public:
  explicit PidDir(int pid) {
    auto [end, ec] = std::to_chars(digits_, digits_ + sizeof(digits_), pid);
    size_ = ec == std::errc() ? static_cast<size_t>(end - digits_) : 0;
  }
  std::string_view view() const { return {digits_, size_}; }

 private:
  char digits_[16];
  size_t size_;
};

std::optional<int64_t> ReadBootTime(const ProcFs& fs, std::string* buffer) {
  if (!fs.Read("stat", buffer)) return std::nullopt;
  std::optional<ProcStat> stat = ParseProcStat(*buffer);
  if (!stat) return std::nullopt;
  return stat->btime;
}

// Fills *out from <dir>/stat and <dir>/fd. false when the process is gone, unreadable,
// or already dead (zombie): none of those is a process to report.
bool ReadStats(const ProcFs& fs, std::string_view dir, std::optional<int64_t> boot_time,
               std::string* buffer, ProcessStats* out, uint64_t* starttime_ticks) {
  if (!fs.Read(RelPath(dir, "stat").view(), buffer)) return false;
  std::optional<PidStat> stat = ParsePidStat(*buffer);
  if (!stat || stat->state == 'Z' || stat->state == 'X') return false;
  double ticks = static_cast<double>(fs.clock_ticks());
  out->pid = stat->pid;
  out->comm = std::move(stat->comm);
  out->state = stat->state;
  out->cpu_seconds = static_cast<double>(stat->utime + stat->stime) / ticks;
  out->resident_bytes =
      static_cast<uint64_t>(stat->rss_pages) * static_cast<uint64_t>(fs.page_size());
  out->virtual_bytes = stat->vsize;
  out->threads = stat->num_threads;
  out->open_fds = fs.CountEntries(RelPath(dir, "fd").view());
  out->start_time =
      boot_time ? static_cast<double>(*boot_time) + static_cast<double>(stat->starttime) / ticks
                : 0.0;
  *starttime_ticks = stat->starttime;
  return true;
}

}  // namespace

base::StatusOr<ProcessWatcher> ProcessWatcher::Create(ProcessSelector selector, ProcFs fs) {
  std::regex regex;
  if (selector.pid) {
    if (*selector.pid <= 0) return base::InvalidArgumentError("pid must be > 0", "pid");
  } else if (!selector.pid_file.empty()) {
    // Read on every Sample: the pid changes when the process restarts.
  } else if (!selector.cmdline_regex.empty()) {
    try {
      regex = std::regex(selector.cmdline_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return base::InvalidArgumentError(std::string("bad cmdline_regex: ") + e.what(),
                                        "cmdline_regex");
    }
  } else {
    return base::InvalidArgumentError("no pid, pid_file or cmdline_regex");
  }
  return ProcessWatcher(std::move(selector), std::move(regex), std::move(fs));
}

ProcessWatcher::ProcessWatcher(ProcessSelector selector, std::regex regex, ProcFs fs)
    : fs_(std::move(fs)),
      selector_(std::move(selector)),
      regex_(std::move(regex)),
      self_pid_(getpid()) {}

ProcessSample ProcessWatcher::Sample() {
  ProcessSample sample;
  sample.restarts = restarts_;
  if (!boot_time_) boot_time_ = ReadBootTime(fs_, &buffer_);

  std::optional<int> pid = FindPid();
  if (!pid) return sample;
  ProcessStats stats;
  uint64_t starttime = 0;
  if (!ReadStats(fs_, PidDir(*pid).view(), boot_time_, &buffer_, &stats, &starttime)) {
    return sample;
  }
  if (last_pid_ && (*last_pid_ != stats.pid || last_starttime_ != starttime)) ++restarts_;
  last_pid_ = stats.pid;
  last_starttime_ = starttime;

  static_cast<ProcessStats&>(sample) = std::move(stats);
  sample.found = true;
  sample.restarts = restarts_;
  return sample;
}

std::optional<int> ProcessWatcher::FindPid() {
  if (selector_.pid) return selector_.pid;
  if (!selector_.pid_file.empty()) {
    if (!ReadWholeFile(selector_.pid_file.c_str(), &buffer_, kMaxPidFileBytes)) {
      return std::nullopt;
    }
    return ParsePidFile(buffer_);
  }
  if (last_pid_ && CmdlineMatches(*last_pid_)) return last_pid_;
  return ScanForMatch();
}

std::optional<int> ProcessWatcher::ScanForMatch() {
  if (!fs_.ListPids(&pids_)) return std::nullopt;
  for (int pid : pids_) {  // ascending, so the lowest match wins
    if (CmdlineMatches(pid)) return pid;
  }
  return std::nullopt;
}

bool ProcessWatcher::CmdlineMatches(int pid) {
  if (pid == self_pid_) return false;
  if (!fs_.Read(RelPath(PidDir(pid).view(), "cmdline").view(), &buffer_)) return false;
  std::string cmdline = JoinCmdline(std::string_view(buffer_).substr(0, kMaxCmdlineMatchBytes));
  if (cmdline.empty()) return false;
  try {
    return std::regex_search(cmdline, regex_);
  } catch (const std::regex_error&) {
    // libstdc++ throws error_complexity/error_stack on pathological input; no match.
    return false;
  }
}

std::optional<SelfStats> SelfSampler::Sample() {
  if (!boot_time_) boot_time_ = ReadBootTime(fs_, &buffer_);
  SelfStats self;
  uint64_t starttime = 0;
  if (!ReadStats(fs_, "self", boot_time_, &buffer_, &self, &starttime)) return std::nullopt;
  if (fs_.is_procfs()) {
    // Our own soft limit is what /proc/self/limits would say, without the kernel
    // formatting sixteen lines of text for it.
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      self.max_fds = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
    }
  } else if (fs_.Read("self/limits", &buffer_)) {
    self.max_fds = ParseMaxOpenFiles(buffer_).value_or(-1);
  }
  return self;
}

std::optional<SelfStats> SelfSample(const ProcFs& fs) { return SelfSampler(fs).Sample(); }

std::string SelectorText(const ProcessSelector& selector) {
  if (selector.pid) return "pid " + std::to_string(*selector.pid);
  if (!selector.pid_file.empty()) return "pid_file " + selector.pid_file;
  return "cmdline_regex " + selector.cmdline_regex;
}

}  // namespace speedmon::sysprobe
