// Tests for SystemSampler: exact values from a fixture proc root, CPU percent across two
// readings, the cache with a fake clock, one collection under concurrency, and a live
// snapshot of this machine checked against /proc/meminfo and statvfs read here.
#include "sysprobe/system_sampler.h"

#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <latch>
#include <thread>

#include "sysprobe/proc_fs.h"
#include "sysprobe/test_util.h"

namespace speedmon::sysprobe {
namespace {

using namespace std::chrono_literals;
using testing::ScratchDir;
using testing::Slurp;
using testing::TestData;
using testing::WriteFile;
using Clock = std::chrono::steady_clock;

// A clock tests move by hand. Shared by the sampler's threads, hence atomic.
class FakeClock {
 public:
  Clock::time_point Now() const { return Clock::time_point(Clock::duration(ticks_.load())); }
  void Advance(Clock::duration d) { ticks_ += d.count(); }
  std::function<Clock::time_point()> Function() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<Clock::rep> ticks_{Clock::duration(1h).count()};
};

SamplerOptions FixtureOptions(FakeClock* clock) {
  SamplerOptions options;
  options.proc_root = TestData("proc");
  options.disk_paths = {};
  options.clock = clock->Function();
  return options;
}

TEST(ReadWholeFile, EverySizeAroundTheFirstReadAndTheLimit) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string buf = "left over";
  // Around the 16 KiB read into the stack buffer, then larger ones that go on in `buf`,
  // smaller again (the capacity stays), and empty.
  for (size_t size : {0u, 1u, 300u, 16383u, 16384u, 16385u, 40000u, 100u, 70000u, 0u}) {
    std::string contents(size, 'x');
    for (size_t i = 0; i < size; ++i) contents[i] = static_cast<char>('a' + i % 26);
    WriteFile(dir / "f", contents);
    ASSERT_TRUE(ReadWholeFile((dir / "f").c_str(), &buf)) << size;
    EXPECT_EQ(buf, contents) << size;
  }
  // At the limit it is read; one byte past, it is refused and `buf` left empty.
  for (size_t max : {10u, 20000u}) {
    WriteFile(dir / "f", std::string(max, 'y'));
    ASSERT_TRUE(ReadWholeFile((dir / "f").c_str(), &buf, max));
    EXPECT_EQ(buf, std::string(max, 'y'));
    WriteFile(dir / "f", std::string(max + 1, 'y'));
    EXPECT_FALSE(ReadWholeFile((dir / "f").c_str(), &buf, max));
    EXPECT_EQ(buf, "");
  }
  EXPECT_FALSE(ReadWholeFile((dir / "missing").c_str(), &buf));
}

TEST(SystemSampler, FixtureRootGivesExactValues) {
  FakeClock clock;
  SamplerOptions options = FixtureOptions(&clock);
  options.disk_paths = {"/", "/nonexistent/speedmon-sysprobe"};
  SystemSampler sampler(std::move(options));
  std::shared_ptr<const SystemSnapshot> s = sampler.Get();
  ASSERT_NE(s, nullptr);

  EXPECT_TRUE(s->cpu_ok);
  EXPECT_EQ(s->cpu_percent, 0.0);  // the fixture's counters do not move
  EXPECT_EQ(s->cpu_count, 2);
  EXPECT_EQ(s->boot_time, 1795884681);
  EXPECT_TRUE(s->load_ok);
  EXPECT_DOUBLE_EQ(s->load_average_1m, 0.23);
  EXPECT_DOUBLE_EQ(s->load_average_5m, 0.13);
  EXPECT_DOUBLE_EQ(s->load_average_15m, 0.05);
  EXPECT_TRUE(s->memory_ok);
  EXPECT_EQ(s->memory_total, 24684092ull * 1024);
  EXPECT_EQ(s->memory_available, 24294620ull * 1024);
  EXPECT_EQ(s->memory_used, 389472ull * 1024);
  EXPECT_DOUBLE_EQ(s->memory_percent, 100.0 * 389472 / 24684092);
  EXPECT_EQ(s->swap_total, 0u);
  EXPECT_EQ(s->swap_used, 0u);
  EXPECT_EQ(s->swap_percent, 0.0);
  EXPECT_TRUE(s->network_ok);
  EXPECT_EQ(s->bytes_recv, 182321483u);
  EXPECT_EQ(s->packets_recv, 3343u);
  EXPECT_EQ(s->bytes_sent, 127869u);
  EXPECT_EQ(s->packets_sent, 1737u);
  EXPECT_TRUE(s->uptime_ok);
  EXPECT_DOUBLE_EQ(s->uptime_seconds, 638.06);
  EXPECT_TRUE(s->processes_ok);
  EXPECT_EQ(s->process_count, 6);  // 1 777 778 900 1200 4242; "self" and "net" are no pids
  EXPECT_EQ(s->collected_at, clock.Now());

  ASSERT_EQ(s->disks.size(), 2u);
  EXPECT_EQ(s->disks[0].path, "/");
  EXPECT_TRUE(s->disks[0].ok);
  EXPECT_GT(s->disks[0].total, 0u);
  EXPECT_EQ(s->disks[1].path, "/nonexistent/speedmon-sysprobe");
  EXPECT_FALSE(s->disks[1].ok);  // reported, not dropped
  EXPECT_EQ(s->disks[1].error, ENOENT);
  EXPECT_EQ(s->disks[1].total, 0u);
  EXPECT_EQ(s->disks[1].percent, 0.0);
}

TEST(SystemSampler, MissingRootReportsEverySourceAsFailed) {
  FakeClock clock;
  SamplerOptions options = FixtureOptions(&clock);
  options.proc_root = "/nonexistent/speedmon-proc";
  SystemSampler sampler(std::move(options));
  std::shared_ptr<const SystemSnapshot> s = sampler.Get();
  EXPECT_FALSE(s->cpu_ok);
  EXPECT_FALSE(s->memory_ok);
  EXPECT_FALSE(s->load_ok);
  EXPECT_FALSE(s->network_ok);
  EXPECT_FALSE(s->uptime_ok);
  EXPECT_FALSE(s->processes_ok);
  EXPECT_EQ(s->memory_total, 0u);
  EXPECT_EQ(s->cpu_count, 0);
  EXPECT_GT(s->timestamp, 0.0);
}

TEST(SystemSampler, CpuPercentFromTwoReadingsAndTheBaselineRule) {
  ScratchDir root;
  WriteFile(root / "stat", Slurp(TestData("stat_cpu_before")));
  FakeClock clock;
  SamplerOptions options = FixtureOptions(&clock);
  options.proc_root = root.path();
  options.cache_duration = 1s;
  SystemSampler sampler(std::move(options));  // primes from stat_cpu_before

  WriteFile(root / "stat", Slurp(TestData("stat_cpu_after")));
  std::shared_ptr<const SystemSnapshot> first = sampler.Get();
  EXPECT_TRUE(first->cpu_ok);
  EXPECT_EQ(first->cpu_percent, 30.0);  // 90 busy of 300 ticks
  EXPECT_EQ(first->cpu_count, 2);
  EXPECT_FALSE(first->memory_ok);  // only stat exists in this root

  // A collection sooner than kMinCpuInterval after the baseline repeats the figure and
  // keeps the baseline, even though the counters moved (all busy now).
  WriteFile(root / "stat", "cpu  250 0 80 1000 60 0 0 0 0 0\n");
  clock.Advance(1s);
  std::shared_ptr<const SystemSnapshot> second = sampler.Get();
  ASSERT_NE(second, first);
  EXPECT_EQ(second->cpu_percent, 30.0);

  // Later, the percent covers everything since the baseline (stat_cpu_after):
  // +90 user, +0 idle -> 100 %.
  std::this_thread::sleep_for(SystemSampler::kMinCpuInterval + 10ms);
  clock.Advance(1s);
  EXPECT_EQ(sampler.Get()->cpu_percent, 100.0);
  EXPECT_EQ(sampler.collections(), 3u);
}

TEST(SystemSampler, CacheReturnsTheSameSnapshotUntilCacheDurationPasses) {
  FakeClock clock;
  SamplerOptions options = FixtureOptions(&clock);
  options.cache_duration = 1000ms;
  SystemSampler sampler(std::move(options));

  std::shared_ptr<const SystemSnapshot> a = sampler.Get();
  clock.Advance(999ms);
  std::shared_ptr<const SystemSnapshot> b = sampler.Get();
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->timestamp, b->timestamp);
  EXPECT_EQ(sampler.collections(), 1u);

  clock.Advance(1ms);  // now exactly cache_duration old: stale
  std::shared_ptr<const SystemSnapshot> c = sampler.Get();
  EXPECT_NE(c, a);
  EXPECT_GT(c->timestamp, a->timestamp);
  EXPECT_EQ(c->collected_at, a->collected_at + 1000ms);
  EXPECT_EQ(sampler.collections(), 2u);
}

TEST(SystemSampler, ZeroCacheDurationCollectsEveryTime) {
  FakeClock clock;
  SamplerOptions options = FixtureOptions(&clock);
  options.cache_duration = 0ms;
  SystemSampler sampler(std::move(options));
  sampler.Get();
  sampler.Get();
  sampler.Get();
  EXPECT_EQ(sampler.collections(), 3u);
}

TEST(SystemSampler, EightConcurrentCallersCauseOneCollection) {
  FakeClock clock;
  SystemSampler sampler(FixtureOptions(&clock));
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::shared_ptr<const SystemSnapshot>> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = sampler.Get();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(sampler.collections(), 1u);
  for (const auto& result : results) {
    ASSERT_NE(result, nullptr);
    EXPECT_EQ(result, results[0]);
  }
}

TEST(SystemSampler, ConcurrentCallersAfterExpiryStillCollectOnce) {
  FakeClock clock;
  SystemSampler sampler(FixtureOptions(&clock));
  std::shared_ptr<const SystemSnapshot> old = sampler.Get();
  clock.Advance(1h);
  std::latch start(8);
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      if (sampler.Get() != old) ++fresh;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(sampler.collections(), 2u);
  EXPECT_EQ(fresh.load(), 8);
}

// ---- live: this machine ----

uint64_t MemInfoKib(const std::string& text, const char* key) {
  size_t at = text.find(std::string("\n") + key + ":");
  if (at == std::string::npos) return 0;
  unsigned long long kib = 0;
  std::sscanf(text.c_str() + at + 1 + std::string(key).size() + 1, "%llu", &kib);
  return kib;
}

TEST(SystemSamplerLive, AgreesWithProcAndStatvfsReadHere) {
  SystemSampler sampler(SamplerOptions{});
  std::shared_ptr<const SystemSnapshot> s = sampler.Get();
  std::string meminfo = "\n" + Slurp("/proc/meminfo");
  struct statvfs root;
  ASSERT_EQ(statvfs("/", &root), 0);

  ASSERT_TRUE(s->cpu_ok && s->memory_ok && s->load_ok && s->network_ok && s->uptime_ok &&
              s->processes_ok);
  EXPECT_EQ(s->cpu_count, sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_GE(s->cpu_percent, 0.0);
  EXPECT_LE(s->cpu_percent, 100.0);

  constexpr uint64_t kMemorySlack = 256ull << 20;  // other builds run on this machine
  EXPECT_EQ(s->memory_total, MemInfoKib(meminfo, "MemTotal") * 1024);
  uint64_t available = MemInfoKib(meminfo, "MemAvailable") * 1024;
  EXPECT_NEAR(static_cast<double>(s->memory_available), static_cast<double>(available),
              kMemorySlack);
  EXPECT_EQ(s->memory_used, s->memory_total - s->memory_available);
  EXPECT_NEAR(s->memory_percent,
              100.0 * static_cast<double>(s->memory_total - available) /
                  static_cast<double>(s->memory_total),
              100.0 * kMemorySlack / static_cast<double>(s->memory_total));
  EXPECT_EQ(s->swap_total, MemInfoKib(meminfo, "SwapTotal") * 1024);

  ASSERT_EQ(s->disks.size(), 1u);
  const DiskUsage& disk = s->disks[0];
  ASSERT_TRUE(disk.ok);
  uint64_t frsize = root.f_frsize;
  EXPECT_EQ(disk.total, root.f_blocks * frsize);
  constexpr double kDiskSlack = 256.0 * (1 << 20);
  double used = static_cast<double>((root.f_blocks - root.f_bfree) * frsize);
  double avail = static_cast<double>(root.f_bavail * frsize);
  EXPECT_NEAR(static_cast<double>(disk.used), used, kDiskSlack);
  EXPECT_NEAR(static_cast<double>(disk.free), avail, kDiskSlack);
  EXPECT_NEAR(disk.percent, 100.0 * used / (used + avail), 1.0);

  EXPECT_GT(s->process_count, 1);
  EXPECT_GT(s->boot_time, 0);
  EXPECT_LE(s->boot_time, static_cast<int64_t>(time(nullptr)));
  EXPECT_NEAR(static_cast<double>(s->boot_time) + s->uptime_seconds,
              static_cast<double>(time(nullptr)), 5.0);
  EXPECT_NEAR(s->timestamp, static_cast<double>(time(nullptr)), 5.0);
}

TEST(SampleDisk, MatchesStatvfsFormula) {
  DiskUsage disk = SampleDisk("/");
  ASSERT_TRUE(disk.ok);
  EXPECT_EQ(disk.error, 0);
  EXPECT_LE(disk.used, disk.total);
  EXPECT_GE(disk.percent, 0.0);
  EXPECT_LE(disk.percent, 100.0);
  DiskUsage missing = SampleDisk("");
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.error, ENOENT);
}

}  // namespace
}  // namespace speedmon::sysprobe
