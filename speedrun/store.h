// The durable speedrun store: one SQLite database holding the raw experiments and
// patterns (bounded by retention) and the all-time totals.
//
// Threads: not thread-safe; one thread at a time. Service opens and loads it on the main
// thread before its writer thread starts, then only the writer thread touches it until
// Close(). Other processes (the sqlite3 shell) may read the file while it is open.
//
// Durability: WAL journal with synchronous=NORMAL. A transaction is in the WAL file once
// Commit() returns, so it survives the process being killed (SIGKILL, OOM, a crash) -
// that is the threat model: speedmon answers a write only after its batch commits. An
// operating-system crash or power loss may lose the last transactions (FULL would fsync
// the WAL on every commit and cap ingest at the disk's fsync rate).
//
// Duplicates: experiment and pattern ids are unique among the rows kept, so an id is
// recognised as a duplicate as long as its row is within retention.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "speedrun/records.h"
#include "speedrun/totals.h"

struct sqlite3;
struct sqlite3_stmt;

namespace speedmon::speedrun {

// A record with its place in the store: `seq` grows with every record accepted, so it
// orders the rows (newest first = highest seq) and makes a stable paging cursor.
struct ExperimentRow {
  int64_t seq = 0;
  Experiment experiment;
};
struct PatternRow {
  int64_t seq = 0;
  Pattern pattern;
};

// The newest `experiments` and `patterns` rows summed up for GET /api/v1/summary. Compile
// and checkpoint times count only where reported and > 0 ("not measured" otherwise).
struct WindowSums {
  struct Strategy {
    uint64_t count = 0;
    uint64_t success = 0;
  };
  uint64_t experiments = 0;
  uint64_t successful = 0;
  double duration_sum = 0;
  uint64_t compile_count = 0;
  double compile_sum = 0;
  uint64_t compile_under_target = 0;  // strictly below the target
  uint64_t checkpoint_count = 0;
  double checkpoint_sum = 0;
  uint64_t checkpoint_under_target = 0;
  std::map<std::string, Strategy> strategies;  // by ai_strategy as posted
  uint64_t patterns = 0;
  int64_t reuses = 0;
  double quality_sum = 0;
  double first_pattern_timestamp = 0;  // of the oldest pattern row in the window
  double last_pattern_timestamp = 0;   // of the newest
};

class Store {
 public:
  Store();
  ~Store();  // Close()
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens or creates the database at `path` ("" = a private in-memory database),
  // creates the tables, sets WAL and synchronous=NORMAL. kUnavailable with a message
  // such as "speedrun store /x/y.db: open: unable to open database file".
  base::Status Open(const std::string& path);
  void Close();  // checkpoints the WAL (SQLite does on the last close); safe to repeat

  // Reads for Open(): totals, and the newest `n` rows in the order they were accepted.
  base::Status LoadTotals(Totals* out);
  base::Status LoadRecentExperiments(size_t n, std::vector<Experiment>* out);
  base::Status LoadRecentPatterns(size_t n, std::vector<Pattern>* out);

  // A write batch: Begin, any number of writes, Commit (or Rollback after a failure).
  // Each write fails with kUnavailable on an SQLite error, the message saying what:
  // "speedrun store /x/y.db: insert: database or disk is full".
  base::Status Begin();
  base::Status Commit();
  void Rollback();

  enum class Insert { kInserted, kDuplicate };
  base::StatusOr<Insert> InsertExperiment(const Experiment& e);
  base::StatusOr<Insert> InsertPattern(const Pattern& p);

  // Adds one to the pattern's reuse_count: the new value, or nullopt when no pattern
  // has that id. With a `key` (an Idempotency-Key) seen before for this pattern, adds
  // nothing and answers the count that key's reuse produced, `duplicate` set; seen for
  // another pattern, kAlreadyExists. Keys are kept, and trimmed, as patterns are.
  struct Reuse {
    int64_t count = 0;
    bool duplicate = false;
  };
  base::StatusOr<std::optional<Reuse>> AddReuse(std::string_view pattern_id,
                                                std::string_view key = {});

  base::Status AddTotals(const std::vector<TotalRow>& delta);  // adds n and x to each key
  // Deletes the oldest rows beyond `keep_experiments` / `keep_patterns` (0 = keep all).
  base::Status Trim(uint64_t keep_experiments, uint64_t keep_patterns);

  // Reads for the admin API's GET routes; Service runs them on the writer thread
  // between batches, so they see every acknowledged write.
  base::StatusOr<std::optional<ExperimentRow>> FindExperiment(std::string_view id);
  base::StatusOr<std::optional<PatternRow>> FindPattern(std::string_view id);
  // Newest first: rows with seq < before (before = 0: from the newest), at most `limit`.
  base::StatusOr<std::vector<ExperimentRow>> ListExperiments(int64_t before, size_t limit);
  // The same for patterns, only of `type` when given.
  base::StatusOr<std::vector<PatternRow>> ListPatterns(std::optional<PatternType> type,
                                                       int64_t before, size_t limit);
  // Pattern rows kept (of `type` when given).
  base::StatusOr<int64_t> CountPatterns(std::optional<PatternType> type);
  // Sums over the newest `experiments` and `patterns` rows; times below the targets (ms)
  // are counted for the compliance figures.
  base::StatusOr<WindowSums> SumWindow(size_t experiments, size_t patterns,
                                       double compile_target_ms, double checkpoint_target_ms);

  // Rows kept in "experiments" or "patterns" (for tests and tools); -1 on error.
  int64_t CountRows(const char* table);

 private:
  struct Table {
    int64_t min_seq = 0;  // 0 = empty
    int64_t max_seq = 0;
  };
  struct Statements;

  // kUnavailable "speedrun store PATH: <what>: <SQLite's message>".
  base::Status Fail(const char* what) const;
  base::Status Exec(const char* sql);
  base::Status OpenDatabase(const std::string& path);
  base::StatusOr<Insert> FinishInsert(int step_result, Table* t);
  base::Status TrimTable(sqlite3_stmt* s, Table* t, uint64_t keep);
  // Runs `sql` with `bind` applied to the statement, calling `row` per result row.
  base::Status Select(const std::string& sql, const std::function<void(sqlite3_stmt*)>& bind,
                      const std::function<void(sqlite3_stmt*)>& row, const char* what);

  sqlite3* db_ = nullptr;
  std::string path_;
  std::unique_ptr<Statements> stmts_;
  Table experiments_, patterns_, reuse_keys_;
  Table experiments_at_begin_, patterns_at_begin_;  // restored by Rollback
};

}  // namespace speedmon::speedrun
