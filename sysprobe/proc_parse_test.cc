// Tests for the /proc text parsers: real files from a 2-CPU host, crafted variants (64
// CPUs, old kernels, long lines, odd comm names) and garbage of every kind.
#include "sysprobe/proc_parse.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sysprobe/test_util.h"

namespace speedmon::sysprobe {
namespace {

using testing::Slurp;
using testing::TestData;

// ---- /proc/stat ----

TEST(ParseProcStat, RealTwoCpuHost) {
  std::optional<ProcStat> stat = ParseProcStat(Slurp(TestData("proc/stat")));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.user, 5616u);
  EXPECT_EQ(stat->cpu.nice, 0u);
  EXPECT_EQ(stat->cpu.system, 2758u);
  EXPECT_EQ(stat->cpu.idle, 118337u);
  EXPECT_EQ(stat->cpu.iowait, 375u);
  EXPECT_EQ(stat->cpu.irq, 0u);
  EXPECT_EQ(stat->cpu.softirq, 45u);
  EXPECT_EQ(stat->cpu.steal, 6u);
  EXPECT_EQ(stat->cpu_count(), 2);
  EXPECT_EQ(stat->cpus[1].user, 3394u);
  EXPECT_EQ(stat->cpus[1].iowait, 362u);
  EXPECT_EQ(stat->btime, 1795884681);
  EXPECT_EQ(stat->processes, 9532u);
  EXPECT_EQ(stat->procs_running, 1u);
  EXPECT_EQ(stat->procs_blocked, 0u);
}

TEST(ParseProcStat, SixtyFourCpusAndAnIntrLineOverFourKiB) {
  std::string text = Slurp(TestData("stat_64cpu"));
  ASSERT_GT(text.size(), 4096u);
  std::optional<ProcStat> stat = ParseProcStat(text);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu_count(), 64);
  EXPECT_EQ(stat->cpu.user, 66016u);
  EXPECT_EQ(stat->cpu.nice, 2016u);
  EXPECT_EQ(stat->cpu.system, 34016u);
  EXPECT_EQ(stat->cpu.idle, 6420160u);
  EXPECT_EQ(stat->cpu.iowait, 63u);
  EXPECT_EQ(stat->cpu.softirq, 2016u);
  EXPECT_EQ(stat->cpus[63].user, 1063u);
  EXPECT_EQ(stat->cpus[63].system, 563u);
  EXPECT_EQ(stat->cpus[63].idle, 100630u);
  EXPECT_EQ(stat->btime, 1700000000);
  EXPECT_EQ(stat->processes, 4567890u);
  EXPECT_EQ(stat->procs_running, 17u);
  EXPECT_EQ(stat->procs_blocked, 2u);
}

TEST(ParseProcStat, Linux260SevenColumns) {
  std::optional<ProcStat> stat = ParseProcStat(Slurp(TestData("stat_linux_2_6_0")));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.user, 8271u);
  EXPECT_EQ(stat->cpu.softirq, 0u);
  EXPECT_EQ(stat->cpu.irq, 197u);
  EXPECT_EQ(stat->cpu.steal, 0u);
  EXPECT_EQ(stat->cpu.guest, 0u);
  EXPECT_EQ(stat->cpu_count(), 1);
  EXPECT_EQ(stat->btime, 1075215823);
}

TEST(ParseProcStat, FourColumnsAreEnoughThreeAreNot) {
  std::optional<ProcStat> stat = ParseProcStat("cpu 1 2 3 4\n");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.idle, 4u);
  EXPECT_EQ(stat->cpu_count(), 0);
  EXPECT_FALSE(stat->btime);
  EXPECT_FALSE(stat->processes);
  EXPECT_FALSE(ParseProcStat("cpu 1 2 3\n"));
  EXPECT_FALSE(ParseProcStat("cpu  2477 0 15"));  // truncated mid-line
}

TEST(ParseProcStat, MissingOrBrokenOptionalLines) {
  std::optional<ProcStat> stat = ParseProcStat(
      "cpu 1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3\ncpu1 1 2 3 4\ncpuX 1 2 3 4\n"
      "btime -5\nprocesses abc\nprocs_running 3x\n");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.guest_nice, 10u);
  EXPECT_EQ(stat->cpu_count(), 1);  // cpu0 has three columns, cpuX is no CPU
  EXPECT_FALSE(stat->btime);
  EXPECT_FALSE(stat->processes);
  EXPECT_FALSE(stat->procs_running);
  EXPECT_FALSE(stat->procs_blocked);
}

TEST(ParseProcStat, AggregateLineRequiredAndValid) {
  EXPECT_FALSE(ParseProcStat(""));
  EXPECT_FALSE(ParseProcStat("cpu0 1 2 3 4\nbtime 5\n"));
  EXPECT_FALSE(ParseProcStat("cpu 1 2 x 4\n"));
  EXPECT_FALSE(ParseProcStat("cpu 1 2 3 -4\n"));
  EXPECT_FALSE(ParseProcStat("cpu 99999999999999999999 2 3 4\n"));  // > 2^64
  EXPECT_FALSE(ParseProcStat(Slurp(TestData("empty"))));
  EXPECT_FALSE(ParseProcStat(Slurp(TestData("garbage.bin"))));
  // A second aggregate line is ignored, not summed.
  std::optional<ProcStat> stat = ParseProcStat("cpu 1 2 3 4\ncpu 9 9 9 9\n");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.user, 1u);
}

TEST(ParseProcStat, TabsAndCarriageReturnsDoNotBreakIt) {
  std::optional<ProcStat> stat = ParseProcStat("cpu\t1\t2\t3\t4\nbtime\t42\n");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->cpu.idle, 4u);
  EXPECT_EQ(stat->btime, 42);
}

// ---- CPU percent ----

TEST(CpuPercent, FromTwoHandMadeFixtures) {
  std::optional<ProcStat> before = ParseProcStat(Slurp(TestData("stat_cpu_before")));
  std::optional<ProcStat> after = ParseProcStat(Slurp(TestData("stat_cpu_after")));
  ASSERT_TRUE(before && after);
  // busy: user +60, system +30 = 90; idle: idle +200, iowait +10 = 210; 90 / 300.
  EXPECT_DOUBLE_EQ(CpuPercent(before->cpu, after->cpu), 30.0);
  EXPECT_DOUBLE_EQ(CpuPercent(before->cpus[0], after->cpus[0]), 30.0);
}

TEST(CpuPercent, EdgeCases) {
  CpuTimes a{.user = 10, .idle = 10};
  EXPECT_EQ(CpuPercent(a, a), 0.0);  // no ticks elapsed
  CpuTimes all_busy{.user = 20, .idle = 10};
  EXPECT_EQ(CpuPercent(a, all_busy), 100.0);
  CpuTimes all_idle{.user = 10, .idle = 30};
  EXPECT_EQ(CpuPercent(a, all_idle), 0.0);
  // iowait going backwards contributes 0 instead of wrapping to 2^64.
  CpuTimes before{.user = 100, .idle = 100, .iowait = 50};
  CpuTimes after{.user = 150, .idle = 150, .iowait = 40};
  EXPECT_EQ(CpuPercent(before, after), 50.0);
  // Guest time is inside user already: counting it again would exceed 100 %.
  CpuTimes guest_before{.user = 0, .idle = 0, .guest = 0};
  CpuTimes guest_after{.user = 100, .idle = 0, .guest = 100};
  EXPECT_EQ(CpuPercent(guest_before, guest_after), 100.0);
  CpuTimes steal_after{.user = 10, .idle = 10, .steal = 10};
  EXPECT_EQ(CpuPercent(a, steal_after), 100.0);
}

// ---- /proc/meminfo ----

TEST(ParseMemInfo, RealHost) {
  std::optional<MemInfo> mem = ParseMemInfo(Slurp(TestData("proc/meminfo")));
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->total_bytes, 24684092ull * 1024);
  EXPECT_EQ(mem->available_bytes, 24294620ull * 1024);
  EXPECT_FALSE(mem->available_estimated);
  EXPECT_EQ(mem->free_bytes, 23981840ull * 1024);
  EXPECT_EQ(mem->buffers_bytes, 6160ull * 1024);
  EXPECT_EQ(mem->cached_bytes, 463224ull * 1024);
  EXPECT_EQ(mem->sreclaimable_bytes, 123968ull * 1024);
  EXPECT_EQ(mem->swap_total_bytes, 0u);
  EXPECT_EQ(mem->swap_free_bytes, 0u);
}

TEST(ParseMemInfo, OldKernelWithoutMemAvailableIsEstimated) {
  std::optional<MemInfo> mem = ParseMemInfo(Slurp(TestData("meminfo_linux_3_10")));
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->total_bytes, 8052976ull * 1024);
  EXPECT_TRUE(mem->available_estimated);
  // MemFree 513220 + Buffers 204668 + Cached 3926048 + SReclaimable 431236.
  EXPECT_EQ(mem->available_bytes, 5075172ull * 1024);
  EXPECT_EQ(mem->swap_total_bytes, 8257532ull * 1024);
  EXPECT_EQ(mem->swap_free_bytes, 8155028ull * 1024);
}

TEST(ParseMemInfo, EstimateWithoutSReclaimableAndClampedToTotal) {
  std::optional<MemInfo> mem =
      ParseMemInfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n");
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->available_bytes, 420u * 1024);
  mem = ParseMemInfo(
      "MemTotal: 100 kB\nMemFree: 90 kB\nCached: 50 kB\nSwapTotal: 10 kB\n"
      "SwapFree: 20 kB\n");
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->available_bytes, 100u * 1024);
  EXPECT_EQ(mem->swap_free_bytes, 10u * 1024);  // never more free swap than swap
}

TEST(ParseMemInfo, RequiredFieldsAndBadLines) {
  EXPECT_FALSE(ParseMemInfo(""));
  EXPECT_FALSE(ParseMemInfo("MemFree: 100 kB\nMemAvailable: 100 kB\n"));  // no MemTotal
  EXPECT_FALSE(ParseMemInfo("MemTotal: 100 kB\nBuffers: 1 kB\n"));        // nothing available
  EXPECT_FALSE(ParseMemInfo("MemTotal: 100 MB\nMemFree: 1 kB\n"));        // unknown unit
  EXPECT_FALSE(ParseMemInfo("MemTotal: 100\nMemFree: 1 kB\n"));           // no unit
  EXPECT_FALSE(ParseMemInfo("MemTotal: 18014398509481984 kB\nMemFree: 1 kB\n"));  // *1024 wraps
  EXPECT_FALSE(ParseMemInfo("MemTotal: 10"));                                     // truncated
  EXPECT_FALSE(ParseMemInfo(Slurp(TestData("garbage.bin"))));
  // A bad MemAvailable line is ignored and the estimate used.
  std::optional<MemInfo> mem =
      ParseMemInfo("MemTotal: 100 kB\nMemAvailable: lots kB\nMemFree: 7 kB\n");
  ASSERT_TRUE(mem);
  EXPECT_TRUE(mem->available_estimated);
  EXPECT_EQ(mem->available_bytes, 7u * 1024);
}

// ---- /proc/loadavg and /proc/uptime ----

TEST(ParseLoadAvg, RealAndBroken) {
  std::optional<LoadAvg> load = ParseLoadAvg(Slurp(TestData("proc/loadavg")));
  ASSERT_TRUE(load);
  EXPECT_DOUBLE_EQ(load->load1, 0.23);
  EXPECT_DOUBLE_EQ(load->load5, 0.13);
  EXPECT_DOUBLE_EQ(load->load15, 0.05);
  EXPECT_EQ(load->runnable, 1u);
  EXPECT_EQ(load->entities, 91u);
  EXPECT_EQ(load->last_pid, 9533);

  load = ParseLoadAvg("12.50 7.00 3.25");  // the tail is optional
  ASSERT_TRUE(load);
  EXPECT_DOUBLE_EQ(load->load1, 12.5);
  EXPECT_EQ(load->entities, 0u);
  EXPECT_FALSE(ParseLoadAvg(""));
  EXPECT_FALSE(ParseLoadAvg("0.1 0.2"));
  EXPECT_FALSE(ParseLoadAvg("0.1 0.2 x"));
  EXPECT_FALSE(ParseLoadAvg("0.1 -0.2 0.3"));
  EXPECT_FALSE(ParseLoadAvg("nan 0.2 0.3"));
  EXPECT_FALSE(ParseLoadAvg("inf 0.2 0.3"));
  EXPECT_FALSE(ParseLoadAvg("0,1 0,2 0,3"));  // decimal comma: locale never applies
}

TEST(ParseUptime, RealAndBroken) {
  std::optional<Uptime> uptime = ParseUptime(Slurp(TestData("proc/uptime")));
  ASSERT_TRUE(uptime);
  EXPECT_DOUBLE_EQ(uptime->uptime_seconds, 638.06);
  EXPECT_DOUBLE_EQ(uptime->idle_seconds, 1183.38);
  uptime = ParseUptime("5.5\n");
  ASSERT_TRUE(uptime);
  EXPECT_DOUBLE_EQ(uptime->uptime_seconds, 5.5);
  EXPECT_EQ(uptime->idle_seconds, 0.0);
  EXPECT_FALSE(ParseUptime(""));
  EXPECT_FALSE(ParseUptime("\n"));
  EXPECT_FALSE(ParseUptime("up 5 days"));
  EXPECT_FALSE(ParseUptime(Slurp(TestData("garbage.bin"))));
}

// ---- /proc/net/dev ----

TEST(ParseNetDev, RealHostExcludesLoopback) {
  std::optional<NetDevTotals> net = ParseNetDev(Slurp(TestData("proc/net/dev")));
  ASSERT_TRUE(net);
  EXPECT_EQ(net->bytes_recv, 182321483u);
  EXPECT_EQ(net->packets_recv, 3343u);
  EXPECT_EQ(net->bytes_sent, 127869u);
  EXPECT_EQ(net->packets_sent, 1737u);
  EXPECT_EQ(net->interfaces, 3);  // ifb0, ifb1, eth0
}

TEST(ParseNetDev, BusyHostCountersTouchTheColonAndShortLinesAreSkipped) {
  std::optional<NetDevTotals> net = ParseNetDev(Slurp(TestData("net_dev_busy")));
  ASSERT_TRUE(net);
  EXPECT_EQ(net->bytes_recv, 98765432109876ull + 5000 + 100);
  EXPECT_EQ(net->packets_recv, 123456789012ull + 50 + 1);
  EXPECT_EQ(net->bytes_sent, 54321098765432ull + 6000 + 200);
  EXPECT_EQ(net->packets_sent, 109876543210ull + 60 + 2);
  EXPECT_EQ(net->interfaces, 3);  // eth0, docker0, eth1; veth1a2b3c is truncated
}

TEST(ParseNetDev, OnlyLoopbackMeansZeroTrafficNotAnError) {
  std::optional<NetDevTotals> net = ParseNetDev("    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->interfaces, 0);
  EXPECT_EQ(net->bytes_recv, 0u);
  EXPECT_FALSE(ParseNetDev(""));
  EXPECT_FALSE(ParseNetDev("Inter-|   Receive\n face |bytes\n"));  // headers only
  EXPECT_FALSE(ParseNetDev("eth0: 1 2 3\n"));
  EXPECT_FALSE(ParseNetDev(": 1 2 3 4 5 6 7 8 9 10\n"));
  EXPECT_FALSE(ParseNetDev(Slurp(TestData("garbage.bin"))));
}

// ---- /proc/<pid>/stat ----

TEST(ParsePidStat, RealInitProcess) {
  std::optional<PidStat> stat = ParsePidStat(Slurp(TestData("proc/1/stat")));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->pid, 1);
  EXPECT_EQ(stat->comm, "process_api");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 0);
  EXPECT_EQ(stat->utime, 54u);
  EXPECT_EQ(stat->stime, 236u);
  EXPECT_EQ(stat->num_threads, 13);
  EXPECT_EQ(stat->starttime, 24u);
  EXPECT_EQ(stat->vsize, 47611904u);
  EXPECT_EQ(stat->rss_pages, 3998);
}

TEST(ParsePidStat, CommWithParenthesesAndSpaces) {
  std::optional<PidStat> stat = ParsePidStat(Slurp(TestData("proc/4242/stat")));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->comm, "(sd-pam)");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->utime, 150u);
  EXPECT_EQ(stat->rss_pages, 512);

  stat = ParsePidStat(Slurp(TestData("proc/777/stat")));
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->pid, 777);
  EXPECT_EQ(stat->comm, "a) b");
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->utime, 12345u);
  EXPECT_EQ(stat->stime, 678u);
  EXPECT_EQ(stat->num_threads, 4);
  EXPECT_EQ(stat->starttime, 10000u);
  EXPECT_EQ(stat->vsize, 209715200u);
  EXPECT_EQ(stat->rss_pages, 25600);
}

TEST(ParsePidStat, CommWithNewlineAndEmptyComm) {
  const std::string tail = " S 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 99 4096 -3 0 0\n";
  std::optional<PidStat> stat = ParsePidStat("12 (x\ny) z)" + tail);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->comm, "x\ny) z");
  EXPECT_EQ(stat->rss_pages, 0);  // negative rss is clamped
  stat = ParsePidStat("13 ()" + tail);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->comm, "");
}

TEST(ParsePidStat, GarbageAndTruncation) {
  std::string real = Slurp(TestData("proc/777/stat"));
  EXPECT_FALSE(ParsePidStat(""));
  EXPECT_FALSE(ParsePidStat("777 (a) b"));                                  // nothing after comm
  EXPECT_FALSE(ParsePidStat("777 a) b) R 1"));                              // no '('
  EXPECT_FALSE(ParsePidStat("777 (a b R 1 2 3"));                           // no ')'
  EXPECT_FALSE(ParsePidStat(")777 ( R 1 2 3"));                             // ')' before '('
  EXPECT_FALSE(ParsePidStat("x (a) " + real.substr(real.find(") ") + 2)));  // bad pid
  EXPECT_FALSE(ParsePidStat("-1 (a) " + real.substr(real.find(") ") + 2)));
  EXPECT_FALSE(ParsePidStat(real.substr(0, real.find(" 25600"))));  // cut before rss
  std::string two_char_state = real;
  two_char_state.replace(two_char_state.find(" R "), 3, " RR ");
  EXPECT_FALSE(ParsePidStat(two_char_state));
  EXPECT_FALSE(ParsePidStat(Slurp(TestData("proc/900/stat"))));
  EXPECT_FALSE(ParsePidStat(Slurp(TestData("garbage.bin"))));
}

// ---- cmdline, limits, pid files ----

TEST(Cmdline, NulSeparatedArguments) {
  std::string raw = Slurp(TestData("proc/777/cmdline"));
  EXPECT_EQ(ParseCmdline(raw), (std::vector<std::string>{"/usr/bin/python3", "-m",
                                                         "pokemon_gym.server", "--port", "8081"}));
  EXPECT_EQ(JoinCmdline(raw), "/usr/bin/python3 -m pokemon_gym.server --port 8081");
  EXPECT_TRUE(ParseCmdline("").empty());
  EXPECT_EQ(JoinCmdline(""), "");
  // An empty argument in the middle is kept, and a title rewritten with spaces is one.
  EXPECT_EQ(ParseCmdline(std::string("a\0\0b\0", 5)), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(JoinCmdline(std::string("a\0\0b\0", 5)), "a  b");
  EXPECT_EQ(ParseCmdline("nginx: worker process"),
            (std::vector<std::string>{"nginx: worker process"}));
}

TEST(ParseMaxOpenFiles, RealUnlimitedAndBroken) {
  EXPECT_EQ(ParseMaxOpenFiles(Slurp(TestData("proc/self/limits"))), 20000);
  EXPECT_EQ(ParseMaxOpenFiles("Max open files            unlimited            unlimited  files\n"),
            -1);
  EXPECT_FALSE(ParseMaxOpenFiles(""));
  EXPECT_FALSE(ParseMaxOpenFiles("Max processes 10 10 processes\n"));
  EXPECT_FALSE(ParseMaxOpenFiles("Max open files lots\n"));
}

TEST(ParsePidFile, Formats) {
  EXPECT_EQ(ParsePidFile(Slurp(TestData("emulator.pid"))), 777);
  EXPECT_EQ(ParsePidFile("  42 \r\n"), 42);
  EXPECT_FALSE(ParsePidFile(Slurp(TestData("bad.pid"))));
  EXPECT_FALSE(ParsePidFile(""));
  EXPECT_FALSE(ParsePidFile("0\n"));
  EXPECT_FALSE(ParsePidFile("-5\n"));
  EXPECT_FALSE(ParsePidFile("12 13\n"));
  EXPECT_FALSE(ParsePidFile("99999999999\n"));
}

// ---- never crash: every prefix of every fixture, mutations, random bytes ----

void ParseEverything(std::string_view text) {
  if (std::optional<ProcStat> stat = ParseProcStat(text)) {
    EXPECT_GE(CpuPercent(CpuTimes{}, stat->cpu), 0.0);
    EXPECT_LE(CpuPercent(CpuTimes{}, stat->cpu), 100.0);
  }
  if (std::optional<MemInfo> mem = ParseMemInfo(text)) {
    EXPECT_LE(mem->available_bytes, mem->total_bytes);
    EXPECT_LE(mem->swap_free_bytes, mem->swap_total_bytes);
  }
  ParseLoadAvg(text);
  ParseNetDev(text);
  ParseUptime(text);
  if (std::optional<PidStat> stat = ParsePidStat(text)) {
    EXPECT_GE(stat->rss_pages, 0);
  }
  ParseCmdline(text);
  JoinCmdline(text);
  ParseMaxOpenFiles(text);
  ParsePidFile(text);
}

TEST(ParsersSurvive, EveryTruncationOfEveryFixture) {
  for (const char* name :
       {"proc/stat", "proc/meminfo", "proc/loadavg", "proc/uptime", "proc/net/dev", "proc/1/stat",
        "proc/777/stat", "proc/4242/stat", "proc/777/cmdline", "proc/self/limits", "stat_64cpu",
        "stat_linux_2_6_0", "meminfo_linux_3_10", "net_dev_busy", "garbage.bin"}) {
    SCOPED_TRACE(name);
    std::string text = Slurp(TestData(name));
    ASSERT_FALSE(text.empty());
    // Every prefix of the first KiB, then a sample of the rest (stat_64cpu is 14 KiB).
    for (size_t n = 0; n <= text.size(); n += (n < 1024 ? 1 : 61)) {
      ParseEverything(std::string_view(text).substr(0, n));
    }
  }
}

TEST(ParsersSurvive, MutatedFixturesAndRandomBytes) {
  std::mt19937 rng(20261128);
  std::string alphabet = "0123456789 ()\n\t:-/.kBcpulo";
  alphabet.push_back('\0');
  std::vector<std::string> fixtures;
  for (const char* name : {"proc/stat", "proc/meminfo", "proc/net/dev", "proc/777/stat"}) {
    fixtures.push_back(Slurp(TestData(name)));
  }
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    if (round % 2 == 0) {
      text = fixtures[round / 2 % fixtures.size()];
      for (int flips = 0; flips < 4; ++flips) {
        text[rng() % text.size()] =
            static_cast<char>(rng() % 3 == 0 ? rng() : alphabet[rng() % alphabet.size()]);
      }
    } else {
      text.resize(rng() % 700);
      for (char& c : text) {
        c = static_cast<char>(rng() % 2 ? rng() : alphabet[rng() % alphabet.size()]);
      }
    }
    ParseEverything(text);
  }
}

}  // namespace
}  // namespace speedmon::sysprobe
