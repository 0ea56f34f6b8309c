// The /proc and pid-file parsers on any file contents (a file can be truncated, from
// another kernel, or not what it claims to be).
#include <string>

#include "sysprobe/proc_parse.h"

using namespace speedmon::sysprobe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 10) {
    case 0:
      if (auto a = ParseProcStat(text)) {
        if (auto b = ParseProcStat(text)) (void)CpuPercent(a->cpu, b->cpu);
      }
      break;
    case 1:
      (void)ParseMemInfo(text);
      break;
    case 2:
      (void)ParseLoadAvg(text);
      break;
    case 3:
      (void)ParseNetDev(text);
      break;
    case 4:
      (void)ParseUptime(text);
      break;
    case 5:
      (void)ParsePidStat(text);
      break;
    case 6:
      (void)ParseCmdline(text);
      (void)JoinCmdline(text);
      break;
    case 7:
      (void)ParseMaxOpenFiles(text);
      break;
    case 8:
      (void)ParsePidFile(text);
      break;
    default:
      (void)ParseProcStat(text);
      (void)ParsePidStat(text);
      break;
  }
  return 0;
}
