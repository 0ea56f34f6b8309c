// Pure parsers for the text of /proc files: text in, plain structs out.
//
// No I/O and no shared state, so any thread may call them; the sampler (main thread) and
// the tests use them on file contents and string literals. None of them throws or reads
// past the view it is given: garbage, truncation and binary input give nullopt (or skip
// the bad line where a file is a list of independent lines, as said per function).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace speedmon::sysprobe {

// One "cpu" line of /proc/stat, in clock ticks (USER_HZ). Kernels before 2.6.33 print
// fewer columns; the missing ones are 0.
struct CpuTimes {
  uint64_t user = 0;
  uint64_t nice = 0;
  uint64_t system = 0;
  uint64_t idle = 0;
  uint64_t iowait = 0;
  uint64_t irq = 0;
  uint64_t softirq = 0;
  uint64_t steal = 0;
  uint64_t guest = 0;       // already included in user
  uint64_t guest_nice = 0;  // already included in nice
};

struct ProcStat {
  CpuTimes cpu;                // the aggregate "cpu" line
  std::vector<CpuTimes> cpus;  // the valid "cpuN" lines, in file order
  // Lines that may be missing (very old kernels, containers that fake /proc).
  std::optional<int64_t> btime;       // boot time, unix seconds
  std::optional<uint64_t> processes;  // forks since boot
  std::optional<uint64_t> procs_running;
  std::optional<uint64_t> procs_blocked;

  int cpu_count() const { return static_cast<int>(cpus.size()); }
};

// nullopt unless the aggregate "cpu" line has at least its first four columns (user nice
// system idle). A malformed "cpuN" line is skipped and not counted; a malformed btime /
// processes / procs_* line leaves that field empty.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// Busy share of the ticks that elapsed between two readings, 0..100:
// busy = user + nice + system + irq + softirq + steal, idle = idle + iowait (guest time is
// inside user/nice already, so it is not added again). A column that went backwards
// (iowait does on some kernels, and a reading after CPU hotplug may) contributes 0.
// No ticks elapsed -> 0.
double CpuPercent(const CpuTimes& before, const CpuTimes& after);

struct MemInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;      // never more than total_bytes
  bool available_estimated = false;  // MemAvailable absent (kernels before 3.14)
  uint64_t free_bytes = 0;
  uint64_t buffers_bytes = 0;
  uint64_t cached_bytes = 0;
  uint64_t sreclaimable_bytes = 0;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;  // never more than swap_total_bytes
};

// nullopt without a valid MemTotal, or without both MemAvailable and MemFree. When
// MemAvailable is missing it is estimated as MemFree + Buffers + Cached + SReclaimable
// (each term 0 when absent), what `free` did before the kernel offered the field.
// Values are in kB in the file; lines with another unit or a bad number are ignored.
std::optional<MemInfo> ParseMemInfo(std::string_view text);

struct LoadAvg {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
  uint64_t runnable = 0;  // "1/86": scheduling entities runnable / existing; 0 if absent
  uint64_t entities = 0;
  int64_t last_pid = 0;
};

// nullopt unless the three load figures parse (finite, >= 0).
std::optional<LoadAvg> ParseLoadAvg(std::string_view text);

// Sums over every interface except "lo".
struct NetDevTotals {
  uint64_t bytes_recv = 0;
  uint64_t packets_recv = 0;
  uint64_t bytes_sent = 0;
  uint64_t packets_sent = 0;
  int interfaces = 0;  // interfaces summed (lo excluded)
};

// /proc/net/dev: two header lines, then "name: 16 counters". An interface line with
// fewer than 10 valid counters is skipped. nullopt when no interface line (not even lo)
// was valid: an empty or garbage file, which is not the same as "no traffic".
std::optional<NetDevTotals> ParseNetDev(std::string_view text);

struct Uptime {
  double uptime_seconds = 0;
  double idle_seconds = 0;  // summed over CPUs; 0 if absent
};

std::optional<Uptime> ParseUptime(std::string_view text);

// The fields of /proc/<pid>/stat that we use. Field numbers are those of proc(5).
struct PidStat {
  int pid = 0;              // (1)
  std::string comm;         // (2) without the parentheses; may hold spaces and ')'
  char state = '?';         // (3) R S D Z T t X I ...
  int ppid = 0;             // (4)
  uint64_t utime = 0;       // (14) clock ticks
  uint64_t stime = 0;       // (15) clock ticks
  int64_t num_threads = 0;  // (20)
  uint64_t starttime = 0;   // (22) clock ticks after boot
  uint64_t vsize = 0;       // (23) bytes
  int64_t rss_pages = 0;    // (24) pages; never negative here
};

// comm is free text chosen by the process ("a) b", "(sd-pam)"), so the fields after it
// are found from the LAST ')'. nullopt when any field up to rss is missing or malformed.
std::optional<PidStat> ParsePidStat(std::string_view text);

// /proc/<pid>/cmdline: arguments separated (and usually ended) by NUL. A process that
// rewrote its title may use spaces instead; that is one argument here. Kernel threads and
// zombies have an empty cmdline -> no arguments.
std::vector<std::string> ParseCmdline(std::string_view raw);

// The arguments joined by single spaces: what cmdline_regex is matched against.
std::string JoinCmdline(std::string_view raw);

// The soft "Max open files" limit from /proc/<pid>/limits; -1 for "unlimited".
std::optional<int64_t> ParseMaxOpenFiles(std::string_view limits);

// A pid file: optional whitespace, a decimal pid > 0, optional whitespace (a trailing
// newline is usual). Anything else, e.g. "12ab" or two numbers, is nullopt.
std::optional<int> ParsePidFile(std::string_view text);

}  // namespace speedmon::sysprobe
