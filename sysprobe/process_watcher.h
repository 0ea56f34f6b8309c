// One watched process (an emulator), found by pid, pid file or cmdline regex, sampled
// from /proc/<pid>/{stat,fd,cmdline}; and SelfSample() for speedmon's own process_*.
//
// A ProcessWatcher belongs to one thread (the main loop, which samples on scrape) and is
// not thread-safe. SelfSample() is a free function; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "base/status.h"
#include "sysprobe/proc_fs.h"

namespace speedmon::sysprobe {

// What /proc says about one process at one moment.
struct ProcessStats {
  int pid = 0;
  std::string comm;        // the kernel's short name (<= 15 bytes), not the cmdline
  char state = '?';        // R running, S sleeping, D disk wait, T stopped, ...
  double cpu_seconds = 0;  // user + system time since it started
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  int64_t threads = 0;
  int64_t open_fds = -1;  // entries of /proc/<pid>/fd; -1 when not readable
  double start_time = 0;  // unix seconds: btime + starttime / CLK_TCK; 0 without btime
};

struct ProcessSample : ProcessStats {
  bool found = false;  // false: no matching live process now; ProcessStats fields are 0/-1
  // Times the watched process was replaced since the watcher started: found with another
  // pid or another start time than the previous time it was found. The first discovery
  // is not a restart; a sample that misses the process does not reset anything.
  uint64_t restarts = 0;
};

// Exactly one should be set; if several are, pid wins over pid_file over cmdline_regex.
struct ProcessSelector {
  std::optional<int> pid;
  std::string pid_file;  // a file holding the pid (read on every Sample)
  // ECMAScript, searched (not fully matched) in the cmdline's arguments joined by spaces,
  // up to its first 4096 bytes. std::regex backtracks: a pattern with nested repetition
  // such as "(a*)*b" can take exponential time; keep patterns simple.
  std::string cmdline_regex;
};

// What a selector watches, for people and for comparing two selectors: "pid 42",
// "pid_file /run/x.pid" or "cmdline_regex pokemon-gym.*8081" (the one that wins, as above).
std::string SelectorText(const ProcessSelector& selector);

class ProcessWatcher {
 public:
  // Never throws. kInvalidArgument for a selector that cannot match anything: "pid must
  // be > 0" (field "pid"), "bad cmdline_regex: <why>" (field "cmdline_regex"), or "no pid,
  // pid_file or cmdline_regex".
  static base::StatusOr<ProcessWatcher> Create(ProcessSelector selector, ProcFs fs = ProcFs());

  // Finds the process and reads it. For cmdline_regex: the process found last time is
  // kept while it lives with the same start time and still matches (so a second matching
  // process appearing later does not steal the watch); otherwise every pid is scanned and
  // the lowest matching one wins. Our own pid, kernel threads (empty cmdline) and zombies
  // never match. A zombie or dead ('Z', 'X') process counts as not found in every mode.
  ProcessSample Sample();

  uint64_t restarts() const { return restarts_; }

 private:
  ProcessWatcher(ProcessSelector selector, std::regex regex, ProcFs fs);
  std::optional<int> FindPid();
  std::optional<int> ScanForMatch();
  bool CmdlineMatches(int pid);

  const ProcFs fs_;
  const ProcessSelector selector_;
  std::regex regex_;
  const int self_pid_;

  std::string buffer_;
  std::vector<int> pids_;
  std::optional<int64_t> boot_time_;  // read once: btime does not change while up
  // Identity of the process last found: a different one next time is a restart.
  std::optional<int> last_pid_;
  uint64_t last_starttime_ = 0;
  uint64_t restarts_ = 0;
};

struct SelfStats : ProcessStats {
  int64_t max_fds = -1;  // soft RLIMIT_NOFILE from /proc/self/limits; -1 unknown/unlimited
};

// speedmon's own figures for the standard process_* metrics, from fs.root()/self, for a
// caller that samples often (every scrape): the boot time is read once and the read
// buffer is kept, so a sample costs /proc/self/{stat,fd,limits} only. Not thread-safe.
class SelfSampler {
 public:
  explicit SelfSampler(ProcFs fs = ProcFs()) : fs_(std::move(fs)) {}
  // nullopt when /proc/self/stat cannot be read or parsed.
  std::optional<SelfStats> Sample();

 private:
  const ProcFs fs_;
  std::string buffer_;
  std::optional<int64_t> boot_time_;  // read once: btime does not change while up
};

// One sample through a fresh SelfSampler.
std::optional<SelfStats> SelfSample(const ProcFs& fs = ProcFs());

}  // namespace speedmon::sysprobe
