// Durability under SIGKILL: a child process posts experiments (single and NDJSON batches,
// with repeats of earlier ids) and reports every id whose write was acknowledged through
// a pipe; the parent kills it mid-stream, three times on the same store, and then checks
// that every acknowledged experiment is stored and counted exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

#include "speedrun/testing.h"

namespace speedmon::speedrun {
namespace {

using testing::Snapshot;
using testing::TempDir;

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n <= 0) _exit(3);  // the parent is gone
    off += static_cast<size_t>(n);
  }
}

std::string Id(int round, int n) { return "r" + std::to_string(round) + "-" + std::to_string(n); }

// Posts until killed. Every acknowledged id (201/200) is written to `fd`, one a line.
[[noreturn]] void RunChild(const std::string& path, int round, int fd) {
  config::SpeedrunConfig sr;
  sr.store_path = path;
  Service service(sr, {}, std::make_shared<prometheus::Registry>());
  if (!service.Open().ok()) _exit(2);
  int next = 0;
  for (int step = 0;; ++step) {
    std::vector<std::string> ids;
    std::string body;
    std::string content_type = "application/json";
    if (step % 2 == 0) {
      ids.push_back(Id(round, next++));
      body = testing::Experiment(ids.back(), step % 10 ? "success" : "failure");
    } else {
      content_type = "application/x-ndjson";
      for (int i = 0; i < 20; ++i) ids.push_back(Id(round, next++));
      // Repeats of earlier ids, which must not be counted again.
      if (next > 40) ids.push_back(Id(round, next - 40));
      ids.push_back(ids[3]);
      for (const std::string& id : ids) body += testing::Experiment(id) + "\n";
    }
    for (;;) {
      auto busy = std::make_shared<std::atomic<bool>>(false);
      service.PostExperiments(body, content_type, [ids, fd, busy](base::StatusOr<WriteResult> r) {
        if (r.ok()) {
          std::string lines;
          for (const std::string& id : ids) lines += id + "\n";
          WriteAll(fd, lines);
        } else {
          busy->store(true);
        }
      });
      if (!busy->load()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // queue full: back off
    }
  }
}

TEST(Crash, AcknowledgedExperimentsSurviveSigkillExactlyOnce) {
  TempDir dir;
  const std::string path = dir.File("crash.db");
  std::set<std::string> acknowledged;
  constexpr size_t kAcksBeforeKill = 20000;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      RunChild(path, round, fds[1]);
    }
    close(fds[1]);
    std::string pending;
    size_t round_acks = 0;
    bool killed = false;
    char buf[65536];
    for (;;) {
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // EOF: the child is dead and its pipe drained
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0, end;
      while ((end = pending.find('\n', start)) != std::string::npos) {
        acknowledged.insert(pending.substr(start, end - start));
        ++round_acks;
        start = end + 1;
      }
      pending.erase(0, start);
      if (!killed && round_acks >= kAcksBeforeKill) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    EXPECT_GE(round_acks, kAcksBeforeKill);
  }

  // Every acknowledged id is in the store, once (the column is UNIQUE; count to be sure).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::set<std::string> stored;
  int64_t rows = 0;
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id FROM experiments", -1, &stmt, nullptr), SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    stored.insert(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    ++rows;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  std::printf("acknowledged %zu ids, %zu stored\n", acknowledged.size(), stored.size());
  EXPECT_EQ(static_cast<size_t>(rows), stored.size());
  size_t missing = 0;
  for (const std::string& id : acknowledged) missing += stored.count(id) == 0;
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";

  // The restored counters agree with the rows: nothing counted twice, nothing lost.
  auto registry = std::make_shared<prometheus::Registry>();
  config::SpeedrunConfig sr;
  sr.store_path = path;
  Service service(sr, {}, registry);
  ASSERT_TRUE(service.Open().ok());
  double counted = 0;
  for (const auto& [key, value] : Snapshot(*registry)) {
    if (key.rfind("pokemon_speedrun_experiments_total{", 0) == 0) counted += value;
  }
  EXPECT_EQ(counted, static_cast<double>(rows));
  EXPECT_EQ(Snapshot(*registry)["pokemon_speedrun_experiment_duration_seconds_count"],
            static_cast<double>(rows));
}

}  // namespace
}  // namespace speedmon::speedrun
