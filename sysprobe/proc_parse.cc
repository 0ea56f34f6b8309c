// Pure parsers for /proc text (see proc_parse.h). Stateless; any thread.
#include "sysprobe/proc_parse.h"

#include <charconv>
#include <climits>
#include <cmath>

#include "base/strings.h"

namespace speedmon::sysprobe {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Splits off the next '\n'-terminated line (the last one may lack the '\n').
std::string_view NextLine(std::string_view* rest) {
  size_t end = rest->find('\n');
  std::string_view line = rest->substr(0, end);
  rest->remove_prefix(end == std::string_view::npos ? rest->size() : end + 1);
  return line;
}

// Splits off the next run of non-blank characters; "" when none is left.
std::string_view NextToken(std::string_view* rest) {
  size_t begin = 0;
  while (begin < rest->size() && IsBlank((*rest)[begin])) ++begin;
  size_t end = begin;
  while (end < rest->size() && !IsBlank((*rest)[end])) ++end;
  std::string_view token = rest->substr(begin, end - begin);
  rest->remove_prefix(end);
  return token;
}

// The whole token must be the number: "12x" and "" fail, as does overflow.
template <typename T>
bool ParseInt(std::string_view token, T* out) {
  if (token.empty()) return false;
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

bool ParseNonNegativeDouble(std::string_view token, double* out) {
  if (token.empty()) return false;
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *out);
  return ec == std::errc() && ptr == end && std::isfinite(*out) && *out >= 0;
}

// Reads up to ten tick columns; at least four must be present and all present ones valid.
bool ParseCpuColumns(std::string_view rest, CpuTimes* out) {
  uint64_t* columns[] = {&out->user, &out->nice,    &out->system, &out->idle,  &out->iowait,
                         &out->irq,  &out->softirq, &out->steal,  &out->guest, &out->guest_nice};
  int parsed = 0;
  for (uint64_t* column : columns) {
    std::string_view token = NextToken(&rest);
    if (token.empty()) break;
    if (!ParseInt(token, column)) return false;
    ++parsed;
  }
  return parsed >= 4;
}

// "cpu" followed by one or more digits.
bool IsPerCpuName(std::string_view name) {
  if (name.size() <= 3 || name.substr(0, 3) != "cpu") return false;
  for (char c : name.substr(3)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

template <typename T>
std::optional<T> ParseSingle(std::string_view rest) {
  T value;
  if (!ParseInt(NextToken(&rest), &value)) return std::nullopt;
  return value;
}

uint64_t Delta(uint64_t before, uint64_t after) { return after > before ? after - before : 0; }

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  ProcStat stat;
  bool have_aggregate = false;
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    std::string_view name = NextToken(&line);
    if (name == "cpu") {
      if (have_aggregate) continue;
      CpuTimes times;
      if (!ParseCpuColumns(line, &times)) return std::nullopt;
      stat.cpu = times;
      have_aggregate = true;
    } else if (IsPerCpuName(name)) {
      CpuTimes times;
      if (ParseCpuColumns(line, &times)) stat.cpus.push_back(times);
    } else if (name == "btime") {
      stat.btime = ParseSingle<int64_t>(line);
      if (stat.btime && *stat.btime < 0) stat.btime.reset();
    } else if (name == "processes") {
      stat.processes = ParseSingle<uint64_t>(line);
    } else if (name == "procs_running") {
      stat.procs_running = ParseSingle<uint64_t>(line);
    } else if (name == "procs_blocked") {
      stat.procs_blocked = ParseSingle<uint64_t>(line);
    }
  }
  if (!have_aggregate) return std::nullopt;
  return stat;
}

double CpuPercent(const CpuTimes& before, const CpuTimes& after) {
  uint64_t busy = Delta(before.user, after.user) + Delta(before.nice, after.nice) +
                  Delta(before.system, after.system) + Delta(before.irq, after.irq) +
                  Delta(before.softirq, after.softirq) + Delta(before.steal, after.steal);
  uint64_t idle = Delta(before.idle, after.idle) + Delta(before.iowait, after.iowait);
  uint64_t total = busy + idle;
  if (total == 0) return 0.0;
  return 100.0 * static_cast<double>(busy) / static_cast<double>(total);
}

std::optional<MemInfo> ParseMemInfo(std::string_view text) {
  std::optional<uint64_t> total, available, free, buffers, cached, sreclaimable, swap_total,
      swap_free;
  struct Key {
    std::string_view name;
    std::optional<uint64_t>* value;
  };
  const Key keys[] = {{"MemTotal", &total},       {"MemAvailable", &available},
                      {"MemFree", &free},         {"Buffers", &buffers},
                      {"Cached", &cached},        {"SReclaimable", &sreclaimable},
                      {"SwapTotal", &swap_total}, {"SwapFree", &swap_free}};
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view rest = line.substr(colon + 1);
    for (const Key& key : keys) {
      if (key.name != name || key.value->has_value()) continue;
      uint64_t kib;
      if (!ParseInt(NextToken(&rest), &kib) || NextToken(&rest) != "kB") break;
      if (kib > UINT64_MAX / 1024) break;
      *key.value = kib * 1024;
      break;
    }
  }
  if (!total || (!available && !free)) return std::nullopt;

  MemInfo info;
  info.total_bytes = *total;
  info.free_bytes = free.value_or(0);
  info.buffers_bytes = buffers.value_or(0);
  info.cached_bytes = cached.value_or(0);
  info.sreclaimable_bytes = sreclaimable.value_or(0);
  if (available) {
    info.available_bytes = *available;
  } else {
    info.available_estimated = true;
    // Each term is < 2^54 after the kB check, so the sum cannot wrap.
    info.available_bytes =
        info.free_bytes + info.buffers_bytes + info.cached_bytes + info.sreclaimable_bytes;
  }
  if (info.available_bytes > info.total_bytes) info.available_bytes = info.total_bytes;
  info.swap_total_bytes = swap_total.value_or(0);
  info.swap_free_bytes = swap_free.value_or(0);
  if (info.swap_free_bytes > info.swap_total_bytes) info.swap_free_bytes = info.swap_total_bytes;
  return info;
}

std::optional<LoadAvg> ParseLoadAvg(std::string_view text) {
  LoadAvg load;
  if (!ParseNonNegativeDouble(NextToken(&text), &load.load1) ||
      !ParseNonNegativeDouble(NextToken(&text), &load.load5) ||
      !ParseNonNegativeDouble(NextToken(&text), &load.load15)) {
    return std::nullopt;
  }
  std::string_view entities = NextToken(&text);
  size_t slash = entities.find('/');
  if (slash != std::string_view::npos) {
    uint64_t runnable, total;
    if (ParseInt(entities.substr(0, slash), &runnable) &&
        ParseInt(entities.substr(slash + 1), &total)) {
      load.runnable = runnable;
      load.entities = total;
    }
  }
  int64_t last_pid;
  if (ParseInt(base::TrimWhitespace(NextToken(&text)), &last_pid)) load.last_pid = last_pid;
  return load;
}

std::optional<NetDevTotals> ParseNetDev(std::string_view text) {
  NetDevTotals totals;
  bool any_valid = false;
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    // Interface names cannot contain ':' (dev_valid_name), so the first one ends the
    // name; large counters may follow it without a space ("eth0:182321483").
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // the two header lines
    std::string_view name = base::TrimWhitespace(line.substr(0, colon));
    std::string_view rest = line.substr(colon + 1);
    if (name.empty()) continue;
    uint64_t counters[10];
    bool valid = true;
    for (uint64_t& counter : counters) {
      if (!ParseInt(base::TrimWhitespace(NextToken(&rest)), &counter)) {
        valid = false;
        break;
      }
    }
    if (!valid) continue;
    any_valid = true;
    if (name == "lo") continue;
    totals.bytes_recv += counters[0];
    totals.packets_recv += counters[1];
    totals.bytes_sent += counters[8];
    totals.packets_sent += counters[9];
    ++totals.interfaces;
  }
  if (!any_valid) return std::nullopt;
  return totals;
}

std::optional<Uptime> ParseUptime(std::string_view text) {
  Uptime uptime;
  if (!ParseNonNegativeDouble(base::TrimWhitespace(NextToken(&text)), &uptime.uptime_seconds)) {
    return std::nullopt;
  }
  double idle;
  if (ParseNonNegativeDouble(base::TrimWhitespace(NextToken(&text)), &idle))
    uptime.idle_seconds = idle;
  return uptime;
}

std::optional<PidStat> ParsePidStat(std::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  PidStat stat;
  if (!ParseInt(base::TrimWhitespace(text.substr(0, open)), &stat.pid) || stat.pid <= 0)
    return std::nullopt;
  stat.comm = std::string(text.substr(open + 1, close - open - 1));

  std::string_view rest = text.substr(close + 1);
  std::string_view state = NextToken(&rest);
  if (state.size() != 1) return std::nullopt;
  stat.state = state[0];
  // Fields 4..24 are all integers; checking every one catches garbage and truncation
  // that would otherwise shift the columns we want.
  int64_t fields[25];
  for (int field = 4; field <= 24; ++field) {
    if (!ParseInt(base::TrimWhitespace(NextToken(&rest)), &fields[field])) return std::nullopt;
  }
  auto unsigned_field = [&](int field) {
    return fields[field] < 0 ? 0 : static_cast<uint64_t>(fields[field]);
  };
  if (fields[4] < 0 || fields[4] > INT_MAX) return std::nullopt;
  stat.ppid = static_cast<int>(fields[4]);
  stat.utime = unsigned_field(14);
  stat.stime = unsigned_field(15);
  stat.num_threads = fields[20];
  stat.starttime = unsigned_field(22);
  stat.vsize = unsigned_field(23);
  stat.rss_pages = fields[24] < 0 ? 0 : fields[24];
  return stat;
}

std::vector<std::string> ParseCmdline(std::string_view raw) {
  std::vector<std::string> args;
  if (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  if (raw.empty()) return args;
  while (true) {
    size_t nul = raw.find('\0');
    args.emplace_back(raw.substr(0, nul));
    if (nul == std::string_view::npos) break;
    raw.remove_prefix(nul + 1);
  }
  return args;
}

std::string JoinCmdline(std::string_view raw) {
  if (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  std::string joined(raw);
  for (char& c : joined) {
    if (c == '\0') c = ' ';
  }
  return joined;
}

std::optional<int64_t> ParseMaxOpenFiles(std::string_view limits) {
  constexpr std::string_view kName = "Max open files";
  while (!limits.empty()) {
    std::string_view line = NextLine(&limits);
    if (line.substr(0, kName.size()) != kName) continue;
    line.remove_prefix(kName.size());
    std::string_view soft = NextToken(&line);
    if (soft == "unlimited") return -1;
    int64_t value;
    if (!ParseInt(soft, &value) || value < 0) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

std::optional<int> ParsePidFile(std::string_view text) {
  int pid;
  if (!ParseInt(base::TrimWhitespace(text), &pid) || pid <= 0) return std::nullopt;
  return pid;
}

}  // namespace speedmon::sysprobe
