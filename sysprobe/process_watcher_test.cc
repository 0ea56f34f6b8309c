// Tests for ProcessWatcher and SelfSample: exact values from fixture processes, selection
// by pid / pid file / cmdline regex, restart counting, and live children of this test.
#include "sysprobe/process_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "sysprobe/test_util.h"

namespace speedmon::sysprobe {
namespace {

using namespace std::chrono_literals;
using testing::ScratchDir;
using testing::Slurp;
using testing::TestData;
using testing::WriteFile;

constexpr int64_t kFixtureBtime = 1795884681;

// The fixture was taken with USER_HZ 100 and 4 KiB pages.
ProcFs FixtureFs(const std::string& root = TestData("proc")) { return ProcFs(root, 100, 4096); }

// A watcher for a selector that must be valid.
ProcessWatcher Watch(ProcessSelector selector, ProcFs fs = ProcFs()) {
  base::StatusOr<ProcessWatcher> watcher = ProcessWatcher::Create(std::move(selector), fs);
  if (watcher.ok()) return std::move(watcher).value();
  ADD_FAILURE() << watcher.status().ToString();
  return ProcessWatcher::Create(ProcessSelector{.pid = 1}, fs).value();
}

ProcessSample SampleOnce(ProcessSelector selector, ProcFs fs = FixtureFs()) {
  return Watch(std::move(selector), std::move(fs)).Sample();
}

ProcessSelector ByPid(int pid) { return ProcessSelector{.pid = pid}; }
ProcessSelector ByRegex(std::string regex) {
  return ProcessSelector{.cmdline_regex = std::move(regex)};
}
ProcessSelector ByPidFile(std::string path) { return ProcessSelector{.pid_file = std::move(path)}; }

TEST(ProcessWatcher, ByPidWithParenthesesInComm) {
  ProcessSample s = SampleOnce(ByPid(4242));
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.pid, 4242);
  EXPECT_EQ(s.comm, "(sd-pam)");
  EXPECT_EQ(s.state, 'S');
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 2.0);  // (150 + 50) / 100
  EXPECT_EQ(s.resident_bytes, 512u * 4096);
  EXPECT_EQ(s.virtual_bytes, 23769088u);
  EXPECT_EQ(s.threads, 1);
  EXPECT_EQ(s.open_fds, -1);  // no fd directory in the fixture: not readable
  EXPECT_DOUBLE_EQ(s.start_time, kFixtureBtime + 25.0);  // starttime 2500 ticks
  EXPECT_EQ(s.restarts, 0u);
}

TEST(ProcessWatcher, ByPidWithSpaceAndParenInComm) {
  ProcessSample s = SampleOnce(ByPid(777));
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.comm, "a) b");
  EXPECT_EQ(s.state, 'R');
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 130.23);  // (12345 + 678) / 100
  EXPECT_EQ(s.resident_bytes, 104857600u);  // 25600 pages
  EXPECT_EQ(s.virtual_bytes, 209715200u);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.open_fds, 5);
  EXPECT_DOUBLE_EQ(s.start_time, kFixtureBtime + 100.0);
}

TEST(ProcessWatcher, ZombieGarbageAndMissingAreNotFound) {
  ProcessSample zombie = SampleOnce(ByPid(778));
  EXPECT_FALSE(zombie.found);
  EXPECT_EQ(zombie.pid, 0);
  EXPECT_EQ(zombie.open_fds, -1);
  EXPECT_FALSE(SampleOnce(ByPid(900)).found);    // binary garbage in stat
  EXPECT_FALSE(SampleOnce(ByPid(31337)).found);  // no such directory
}

TEST(ProcessWatcher, RegexPicksLowestMatchingPid) {
  EXPECT_EQ(SampleOnce(ByRegex("pokemon_gym.*8081")).pid, 777);  // 1200 matches too
  EXPECT_EQ(SampleOnce(ByRegex("--replica$")).pid, 1200);
  EXPECT_EQ(SampleOnce(ByRegex("^\\(sd-pam\\)$")).pid, 4242);
  EXPECT_EQ(SampleOnce(ByRegex(".")).pid, 1);
  // The cmdline is joined with spaces, so a regex can span arguments.
  EXPECT_EQ(SampleOnce(ByRegex("-m pokemon_gym\\.server --port 8081$")).pid, 777);
}

TEST(ProcessWatcher, RegexMatchesNothingOrOnlyUnreadableStat) {
  EXPECT_FALSE(SampleOnce(ByRegex("no-such-emulator")).found);
  EXPECT_FALSE(SampleOnce(ByRegex("pokemon_gym.*8083")).found);  // pid 900: garbage stat
  EXPECT_FALSE(SampleOnce(ByRegex("^$")).found);  // the zombie's empty cmdline never matches
}

TEST(ProcessWatcher, ByPidFile) {
  ProcessSample s = SampleOnce(ByPidFile(TestData("emulator.pid")));
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.pid, 777);
  EXPECT_FALSE(SampleOnce(ByPidFile(TestData("bad.pid"))).found);
  EXPECT_FALSE(SampleOnce(ByPidFile(TestData("empty"))).found);
  EXPECT_FALSE(SampleOnce(ByPidFile(TestData("no-such.pid"))).found);
  EXPECT_FALSE(SampleOnce(ByPidFile(TestData("garbage.bin"))).found);
}

TEST(ProcessWatcher, InvalidSelectors) {
  base::Status bad_regex = ProcessWatcher::Create(ByRegex("(unclosed"), FixtureFs()).status();
  EXPECT_EQ(bad_regex.code(), base::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_regex.field(), "cmdline_regex");
  EXPECT_TRUE(bad_regex.message().starts_with("bad cmdline_regex: ")) << bad_regex.message();
  EXPECT_EQ(ProcessWatcher::Create(ProcessSelector{}, FixtureFs()).status(),
            base::InvalidArgumentError("no pid, pid_file or cmdline_regex"));
  EXPECT_EQ(ProcessWatcher::Create(ByPid(0), FixtureFs()).status(),
            base::InvalidArgumentError("pid must be > 0", "pid"));
  // pid wins when several are set.
  EXPECT_EQ(
      Watch(ProcessSelector{.pid = 4242, .cmdline_regex = "pokemon_gym"}, FixtureFs()).Sample().pid,
      4242);
}

TEST(ProcessWatcher, RestartsCountNewPidOrNewStartTimeNotGaps) {
  ScratchDir dir;
  std::filesystem::copy(TestData("proc"), dir / "proc", std::filesystem::copy_options::recursive);
  ProcessWatcher watcher = Watch(ByPidFile(dir / "emulator.pid"), FixtureFs(dir / "proc"));

  EXPECT_FALSE(watcher.Sample().found);  // no pid file yet
  WriteFile(dir / "emulator.pid", "777\n");
  ProcessSample s = watcher.Sample();
  EXPECT_TRUE(s.found);
  EXPECT_EQ(s.restarts, 0u);  // first discovery

  EXPECT_EQ(watcher.Sample().restarts, 0u);  // same process again

  std::filesystem::remove(dir / "emulator.pid");  // gone for a while...
  s = watcher.Sample();
  EXPECT_FALSE(s.found);
  EXPECT_EQ(s.restarts, 0u);
  WriteFile(dir / "emulator.pid", "777\n");  // ...and the same one back: no restart
  EXPECT_EQ(watcher.Sample().restarts, 0u);

  WriteFile(dir / "emulator.pid", "1200\n");  // new pid
  s = watcher.Sample();
  EXPECT_EQ(s.pid, 1200);
  EXPECT_EQ(s.restarts, 1u);

  // Same pid, new start time: the pid was reused by a new process.
  std::string stat = Slurp(dir / "proc/1200/stat");
  stat.replace(stat.find(" 20000 "), 7, " 20500 ");
  WriteFile(dir / "proc/1200/stat", stat);
  s = watcher.Sample();
  EXPECT_EQ(s.restarts, 2u);
  EXPECT_DOUBLE_EQ(s.start_time, kFixtureBtime + 205.0);
  EXPECT_EQ(watcher.restarts(), 2u);

  std::filesystem::remove(dir / "proc/1200/stat");
  s = watcher.Sample();
  EXPECT_FALSE(s.found);
  EXPECT_EQ(s.restarts, 2u);  // kept while missing
}

TEST(ProcessWatcher, RegexKeepsItsProcessWhileItLives) {
  ScratchDir dir;
  std::filesystem::copy(TestData("proc"), dir / "proc", std::filesystem::copy_options::recursive);
  ProcessWatcher watcher = Watch(ByRegex("--port 8081"), FixtureFs(dir / "proc"));
  EXPECT_EQ(watcher.Sample().pid, 777);
  // A lower pid that also matches appears: the watch stays on 777.
  std::filesystem::copy(dir / "proc/1200", dir / "proc/600",
                        std::filesystem::copy_options::recursive);
  std::string stat = Slurp(dir / "proc/600/stat");
  WriteFile(dir / "proc/600/stat", "600" + stat.substr(4));
  EXPECT_EQ(watcher.Sample().pid, 777);
  EXPECT_EQ(watcher.restarts(), 0u);
  // 777 dies: the lowest remaining match takes over, one restart.
  std::filesystem::remove_all(dir / "proc/777");
  ProcessSample s = watcher.Sample();
  EXPECT_EQ(s.pid, 600);
  EXPECT_EQ(s.restarts, 1u);
}

TEST(ProcessWatcher, LongCmdlineIsMatchedByItsHeadWithoutOverflowingTheStack) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "proc/50");
  WriteFile(dir / "proc/50/stat", "50" + Slurp(TestData("proc/1200/stat")).substr(4));
  WriteFile(dir / "proc/50/cmdline", std::string(200000, 'a') + '\0' + "tail-arg" + '\0');
  // std::regex recurses once per character here: over the whole 200 KB it crashed, over
  // the 4 KiB head it matches (the head is all 'a').
  EXPECT_TRUE(SampleOnce(ByRegex("^(a|b)*$"), FixtureFs(dir / "proc")).found);
  EXPECT_FALSE(SampleOnce(ByRegex("tail-arg"), FixtureFs(dir / "proc")).found);
}

// ---- SelfSample ----

TEST(SelfSample, FixtureValues) {
  std::optional<SelfStats> self = SelfSample(FixtureFs());
  ASSERT_TRUE(self);
  EXPECT_EQ(self->pid, 3929);
  EXPECT_EQ(self->comm, "bash");
  EXPECT_DOUBLE_EQ(self->cpu_seconds, 0.03);  // utime 1 + stime 2 ticks
  EXPECT_EQ(self->resident_bytes, 963u * 4096);
  EXPECT_EQ(self->virtual_bytes, 5251072u);
  EXPECT_EQ(self->threads, 1);
  EXPECT_EQ(self->open_fds, 4);
  EXPECT_EQ(self->max_fds, 20000);
  EXPECT_DOUBLE_EQ(self->start_time, kFixtureBtime + 292.13);
  EXPECT_FALSE(SelfSample(FixtureFs("/nonexistent/speedmon-proc")));
}

TEST(SelfSampler, EverySampleOfOneSamplerHasTheFixtureValues) {
  SelfSampler sampler(FixtureFs());
  for (int i = 0; i < 3; ++i) {  // the boot time is read on the first sample only
    std::optional<SelfStats> self = sampler.Sample();
    ASSERT_TRUE(self);
    EXPECT_EQ(self->pid, 3929);
    EXPECT_EQ(self->open_fds, 4);
    EXPECT_EQ(self->max_fds, 20000);
    EXPECT_DOUBLE_EQ(self->start_time, kFixtureBtime + 292.13);
  }
  EXPECT_FALSE(SelfSampler(FixtureFs("/nonexistent/speedmon-proc")).Sample());
}

TEST(ProcFs, CountsOpenFdsAsTheKernelListsThem) {
  ProcFs live;
  ASSERT_TRUE(live.is_procfs());
  EXPECT_FALSE(FixtureFs().is_procfs());
  // The fixture tree is read entry by entry (a plain directory's st_size is not a count).
  EXPECT_EQ(FixtureFs().CountEntries("self/fd"), 4);
  // Live: the count moves with the descriptors we open, whichever path counted them.
  int64_t before = live.CountEntries("self/fd");
  ASSERT_GT(before, 0);
  int fds[3];
  for (int& fd : fds) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(live.CountEntries("self/fd"), before + 3);
  for (int fd : fds) close(fd);
  EXPECT_EQ(live.CountEntries("self/fd"), before);
  EXPECT_EQ(live.CountEntries("no-such-dir"), -1);
}

TEST(SelfSample, LiveProcessAgreesWithTheKernel) {
  std::optional<SelfStats> before = SelfSample();
  ASSERT_TRUE(before);
  EXPECT_EQ(before->pid, getpid());
  EXPECT_GE(before->threads, 1);
  EXPECT_GT(before->resident_bytes, 0u);
  EXPECT_GT(before->virtual_bytes, before->resident_bytes);
  EXPECT_GE(before->cpu_seconds, 0.0);
  EXPECT_LE(before->start_time, static_cast<double>(time(nullptr)) + 1);
  EXPECT_GT(before->start_time, static_cast<double>(time(nullptr)) - 3600);
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(before->max_fds, static_cast<int64_t>(limit.rlim_cur));

  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::optional<SelfStats> after = SelfSample();
  close(fd);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->open_fds, before->open_fds + 1);
}

// ---- live children ----

// Polls until the watcher finds (or loses) its process; fork and exec take a moment.
ProcessSample SampleUntil(ProcessWatcher* watcher, bool found) {
  ProcessSample s;
  for (int i = 0; i < 1000; ++i) {
    s = watcher->Sample();
    if (s.found == found) break;
    std::this_thread::sleep_for(10ms);
  }
  return s;
}

TEST(ProcessWatcherLive, ChildTouching100MBRaisesResidentBytes) {
  int go[2], ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    close(ready[0]);
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(1);
    constexpr size_t kBytes = 100u << 20;
    char* block = static_cast<char*>(malloc(kBytes));
    if (block == nullptr) _exit(2);
    memset(block, 0x5a, kBytes);
    if (write(ready[1], block + 12345, 1) != 1) _exit(3);  // also keeps the memset alive
    while (read(go[0], &byte, 1) > 0) {
    }
    _exit(0);
  }
  close(go[0]);
  close(ready[1]);

  ProcessWatcher watcher = Watch(ByPid(child));
  ProcessSample before = watcher.Sample();
  ASSERT_TRUE(before.found);
  EXPECT_EQ(before.pid, child);
  EXPECT_GE(before.open_fds, 3);

  ASSERT_EQ(write(go[1], "g", 1), 1);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  EXPECT_EQ(byte, 0x5a);
  ProcessSample after = watcher.Sample();
  ASSERT_TRUE(after.found);
  EXPECT_GE(after.resident_bytes, before.resident_bytes + (95u << 20));
  EXPECT_GE(after.virtual_bytes, before.virtual_bytes + (100u << 20));
  EXPECT_EQ(after.start_time, before.start_time);
  EXPECT_EQ(after.restarts, 0u);

  close(go[1]);  // the child's read sees EOF and it exits
  close(ready[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ProcessSample gone = watcher.Sample();
  EXPECT_FALSE(gone.found);
  EXPECT_EQ(gone.restarts, 0u);
}

// A `sleep` whose argv[0] is `name`, so only it matches the test's regex.
pid_t SpawnSleeper(const std::string& name) {
  pid_t child = fork();
  if (child == 0) {
    char* const argv[] = {const_cast<char*>(name.c_str()), const_cast<char*>("600"), nullptr};
    execvp("sleep", argv);
    _exit(127);
  }
  return child;
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
}

TEST(ProcessWatcherLive, KilledAndRespawnedChildIsOneRestart) {
  std::string name = "speedmon-sysprobe-test-" + std::to_string(getpid());
  ProcessWatcher watcher = Watch(ByRegex("^" + name + " 600$"));
  EXPECT_FALSE(watcher.Sample().found);

  pid_t first = SpawnSleeper(name);
  ASSERT_GT(first, 0);
  ProcessSample s = SampleUntil(&watcher, true);
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.pid, first);
  EXPECT_EQ(s.comm, "sleep");
  EXPECT_EQ(s.restarts, 0u);

  KillAndReap(first);
  s = watcher.Sample();
  EXPECT_FALSE(s.found);
  EXPECT_EQ(s.restarts, 0u);

  pid_t second = SpawnSleeper(name);
  ASSERT_GT(second, 0);
  s = SampleUntil(&watcher, true);
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.pid, second);
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(watcher.Sample().restarts, 1u);  // and it stays one
  KillAndReap(second);
}

TEST(ProcessWatcherLive, RegexNeverMatchesOurOwnProcess) {
  // Our cmdline is this test binary's path. Under a parallel ctest another copy of this
  // binary may match, but never this process itself.
  std::string self = Slurp("/proc/self/cmdline");
  std::string escaped;
  for (char c : self.substr(0, self.find('\0'))) {
    if (std::strchr(".^$|?*+()[]{}\\", c) != nullptr) escaped += '\\';
    escaped += c;
  }
  ProcessWatcher watcher = Watch(ByRegex("^" + escaped));
  ProcessSample s = watcher.Sample();
  EXPECT_NE(s.pid, getpid());
}

}  // namespace
}  // namespace speedmon::sysprobe
