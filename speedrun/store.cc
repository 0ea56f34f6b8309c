// The SQLite speedrun store; see store.h. One thread at a time (Service's writer).
#include "speedrun/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <limits>

namespace speedmon::speedrun {
namespace {

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS experiments(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  ai_strategy TEXT NOT NULL,
  duration_seconds REAL NOT NULL,
  script_length INTEGER,
  script_compilation_time_ms REAL,
  checkpoint_loading_time_ms REAL,
  pattern_discoveries INTEGER,
  timestamp REAL NOT NULL,
  error_message TEXT,
  performance_score REAL);
CREATE TABLE IF NOT EXISTS patterns(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  pattern_type TEXT NOT NULL,
  quality_score REAL NOT NULL,
  discovery_time_seconds REAL,
  experiment_id TEXT,
  ai_worker TEXT,
  reuse_count INTEGER NOT NULL,
  timestamp REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reuse_keys(
  seq INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  pattern_id TEXT NOT NULL,
  reuse_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS totals(
  key TEXT PRIMARY KEY,
  n INTEGER NOT NULL,
  x REAL NOT NULL) WITHOUT ROWID;
)sql";

constexpr char kExperimentColumns[] =
    "id, status, ai_strategy, duration_seconds, script_length, script_compilation_time_ms, "
    "checkpoint_loading_time_ms, pattern_discoveries, timestamp, error_message, "
    "performance_score";
constexpr char kPatternColumns[] =
    "id, pattern_type, quality_score, discovery_time_seconds, experiment_id, ai_worker, "
    "reuse_count, timestamp";

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// Resets a statement when the step is done, whatever the outcome.
class Step {
 public:
  explicit Step(sqlite3_stmt* s) : s_(s) {}
  ~Step() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int operator()() { return sqlite3_step(s_); }

 private:
  sqlite3_stmt* s_;
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
void Bind(sqlite3_stmt* s, int i, const std::optional<std::string>& v) {
  if (v) BindText(s, i, *v);  // unbound parameters are NULL
}
void Bind(sqlite3_stmt* s, int i, const std::optional<double>& v) {
  if (v) sqlite3_bind_double(s, i, *v);
}
void Bind(sqlite3_stmt* s, int i, const std::optional<int64_t>& v) {
  if (v) sqlite3_bind_int64(s, i, *v);
}

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}
std::optional<std::string> OptText(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  return Text(s, col);
}
std::optional<double> OptDouble(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(s, col);
}
std::optional<int64_t> OptInt(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(s, col);
}

// Runs a query, calling `row` for each result row. False on an SQLite error.
bool ForEachRow(sqlite3* db, const std::string& sql,
                const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return false;
  Stmt s(raw);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) row(raw);
  return rc == SQLITE_DONE;
}

// One experiment from the kExperimentColumns starting at column `c`; nullopt for a row
// this version did not write (an unknown status): not worth failing a read for.
std::optional<Experiment> ReadExperiment(sqlite3_stmt* r, int c) {
  std::optional<ExperimentStatus> status = ParseStatus(Text(r, c + 1));
  if (!status) return std::nullopt;
  Experiment e;
  e.id = Text(r, c);
  e.status = *status;
  e.ai_strategy = Text(r, c + 2);
  e.duration_seconds = sqlite3_column_double(r, c + 3);
  e.script_length = OptInt(r, c + 4);
  e.script_compilation_ms = OptDouble(r, c + 5);
  e.checkpoint_loading_ms = OptDouble(r, c + 6);
  e.pattern_discoveries = OptInt(r, c + 7);
  e.timestamp = sqlite3_column_double(r, c + 8);
  e.error_message = OptText(r, c + 9);
  e.performance_score = OptDouble(r, c + 10);
  return e;
}

// One pattern from the kPatternColumns starting at column `c`, as ReadExperiment.
std::optional<Pattern> ReadPattern(sqlite3_stmt* r, int c) {
  std::optional<PatternType> type = ParsePatternType(Text(r, c + 1));
  if (!type) return std::nullopt;
  Pattern p;
  p.id = Text(r, c);
  p.type = *type;
  p.quality_score = std::clamp(sqlite3_column_double(r, c + 2), 0.0, 1.0);
  p.discovery_time_seconds = OptDouble(r, c + 3);
  p.experiment_id = OptText(r, c + 4);
  p.ai_worker = OptText(r, c + 5);
  p.reuse_count = sqlite3_column_int64(r, c + 6);
  p.timestamp = sqlite3_column_double(r, c + 7);
  return p;
}

}  // namespace

struct Store::Statements {
  Stmt begin, commit, rollback;
  Stmt insert_experiment, insert_pattern, reuse, find_reuse_key, insert_reuse_key, add_total;
  Stmt trim_experiments, trim_patterns, trim_reuse_keys;
};

Store::Store() = default;
Store::~Store() { Close(); }

base::Status Store::Fail(const char* what) const {
  return base::UnavailableError(std::string("speedrun store ") +
                                (path_.empty() ? ":memory:" : path_) + ": " + what + ": " +
                                (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

base::Status Store::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return Fail(sql);
  return base::OkStatus();
}

base::Status Store::Open(const std::string& path) {
  Close();
  path_ = path;
  base::Status status = OpenDatabase(path);
  if (!status.ok()) Close();
  return status;
}

base::Status Store::OpenDatabase(const std::string& path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.empty() ? ":memory:" : path.c_str(), &db_, flags, nullptr) !=
      SQLITE_OK) {
    return Fail("open");
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 5000);

  // Reading the schema version is the first access: it tells a non-database file early.
  int version = 0;
  if (!ForEachRow(db_, "PRAGMA user_version",
                  [&](sqlite3_stmt* r) { version = sqlite3_column_int(r, 0); })) {
    return Fail("read schema version");
  }
  if (version > kSchemaVersion) {
    return base::UnavailableError(
        "speedrun store " + path + ": schema version " + std::to_string(version) +
        " is newer than this speedmon understands (" + std::to_string(kSchemaVersion) + ")");
  }
  if (!path.empty()) {
    if (base::Status s = Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  }
  for (const std::string& sql : {std::string("PRAGMA synchronous=NORMAL"), std::string(kSchema),
                                 "PRAGMA user_version=" + std::to_string(kSchemaVersion)}) {
    if (base::Status s = Exec(sql.c_str()); !s.ok()) return s;
  }

  stmts_ = std::make_unique<Statements>();
  struct {
    Stmt* stmt;
    std::string sql;
  } const prepare[] = {
      {&stmts_->begin, "BEGIN IMMEDIATE"},
      {&stmts_->commit, "COMMIT"},
      {&stmts_->rollback, "ROLLBACK"},
      {&stmts_->insert_experiment, std::string("INSERT INTO experiments(") + kExperimentColumns +
                                       ") VALUES(?,?,?,?,?,?,?,?,?,?,?) "
                                       "ON CONFLICT(id) DO NOTHING"},
      {&stmts_->insert_pattern, std::string("INSERT INTO patterns(") + kPatternColumns +
                                    ") VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING"},
      {&stmts_->reuse,
       "UPDATE patterns SET reuse_count = reuse_count + 1 WHERE id = ? RETURNING reuse_count"},
      {&stmts_->find_reuse_key, "SELECT pattern_id, reuse_count FROM reuse_keys WHERE key = ?"},
      {&stmts_->insert_reuse_key,
       "INSERT INTO reuse_keys(key, pattern_id, reuse_count) VALUES(?,?,?)"},
      {&stmts_->add_total,
       "INSERT INTO totals(key, n, x) VALUES(?,?,?) "
       "ON CONFLICT(key) DO UPDATE SET n = n + excluded.n, x = x + excluded.x"},
      {&stmts_->trim_experiments, "DELETE FROM experiments WHERE seq < ?"},
      {&stmts_->trim_patterns, "DELETE FROM patterns WHERE seq < ?"},
      {&stmts_->trim_reuse_keys, "DELETE FROM reuse_keys WHERE seq < ?"},
  };
  sqlite3_stmt* raw = nullptr;
  for (const auto& p : prepare) {
    if (sqlite3_prepare_v3(db_, p.sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      return Fail("prepare");
    }
    p.stmt->reset(raw);
  }

  for (auto [table, t] : {std::pair{"experiments", &experiments_},
                          {"patterns", &patterns_},
                          {"reuse_keys", &reuse_keys_}}) {
    std::string sql =
        std::string("SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM ") + table;
    if (!ForEachRow(db_, sql, [t = t](sqlite3_stmt* r) {
          t->min_seq = sqlite3_column_int64(r, 0);
          t->max_seq = sqlite3_column_int64(r, 1);
        })) {
      return Fail("read row range");
    }
  }
  return base::OkStatus();
}

void Store::Close() {
  stmts_.reset();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

base::Status Store::LoadTotals(Totals* out) {
  *out = Totals();
  if (!ForEachRow(db_, "SELECT key, n, x FROM totals", [&](sqlite3_stmt* r) {
        out->AddRow(TotalRow{Text(r, 0), sqlite3_column_int64(r, 1), sqlite3_column_double(r, 2)});
      })) {
    return Fail("load totals");
  }
  return base::OkStatus();
}

base::Status Store::LoadRecentExperiments(size_t n, std::vector<Experiment>* out) {
  out->clear();
  std::string sql = std::string("SELECT ") + kExperimentColumns +
                    " FROM experiments ORDER BY seq DESC LIMIT " + std::to_string(n);
  if (!ForEachRow(db_, sql, [&](sqlite3_stmt* r) {
        if (std::optional<Experiment> e = ReadExperiment(r, 0)) out->push_back(std::move(*e));
      })) {
    return Fail("load experiments");
  }
  std::reverse(out->begin(), out->end());
  return base::OkStatus();
}

base::Status Store::LoadRecentPatterns(size_t n, std::vector<Pattern>* out) {
  out->clear();
  std::string sql = std::string("SELECT ") + kPatternColumns +
                    " FROM patterns ORDER BY seq DESC LIMIT " + std::to_string(n);
  if (!ForEachRow(db_, sql, [&](sqlite3_stmt* r) {
        if (std::optional<Pattern> p = ReadPattern(r, 0)) out->push_back(std::move(*p));
      })) {
    return Fail("load patterns");
  }
  std::reverse(out->begin(), out->end());
  return base::OkStatus();
}

base::Status Store::Select(const std::string& sql, const std::function<void(sqlite3_stmt*)>& bind,
                           const std::function<void(sqlite3_stmt*)>& row, const char* what) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return Fail(what);
  Stmt s(raw);
  bind(raw);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) row(raw);
  return rc == SQLITE_DONE ? base::OkStatus() : Fail(what);
}

base::StatusOr<std::optional<ExperimentRow>> Store::FindExperiment(std::string_view id) {
  std::optional<ExperimentRow> found;
  base::Status s = Select(
      std::string("SELECT seq, ") + kExperimentColumns + " FROM experiments WHERE id = ?",
      [&](sqlite3_stmt* st) { BindText(st, 1, id); },
      [&](sqlite3_stmt* r) {
        if (std::optional<Experiment> e = ReadExperiment(r, 1)) {
          found = ExperimentRow{sqlite3_column_int64(r, 0), std::move(*e)};
        }
      },
      "find experiment");
  if (!s.ok()) return s;
  return found;
}

base::StatusOr<std::optional<PatternRow>> Store::FindPattern(std::string_view id) {
  std::optional<PatternRow> found;
  base::Status s = Select(
      std::string("SELECT seq, ") + kPatternColumns + " FROM patterns WHERE id = ?",
      [&](sqlite3_stmt* st) { BindText(st, 1, id); },
      [&](sqlite3_stmt* r) {
        if (std::optional<Pattern> p = ReadPattern(r, 1)) {
          found = PatternRow{sqlite3_column_int64(r, 0), std::move(*p)};
        }
      },
      "find pattern");
  if (!s.ok()) return s;
  return found;
}

base::StatusOr<std::vector<ExperimentRow>> Store::ListExperiments(int64_t before, size_t limit) {
  std::vector<ExperimentRow> out;
  base::Status s = Select(
      std::string("SELECT seq, ") + kExperimentColumns +
          " FROM experiments WHERE seq < ? ORDER BY seq DESC LIMIT ?",
      [&](sqlite3_stmt* st) {
        sqlite3_bind_int64(st, 1, before > 0 ? before : std::numeric_limits<int64_t>::max());
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(limit));
      },
      [&](sqlite3_stmt* r) {
        if (std::optional<Experiment> e = ReadExperiment(r, 1)) {
          out.push_back(ExperimentRow{sqlite3_column_int64(r, 0), std::move(*e)});
        }
      },
      "list experiments");
  if (!s.ok()) return s;
  return out;
}

base::StatusOr<std::vector<PatternRow>> Store::ListPatterns(std::optional<PatternType> type,
                                                            int64_t before, size_t limit) {
  std::vector<PatternRow> out;
  base::Status s = Select(
      std::string("SELECT seq, ") + kPatternColumns +
          " FROM patterns WHERE seq < ? AND (?3 IS NULL OR pattern_type = ?3) "
          "ORDER BY seq DESC LIMIT ?2",
      [&](sqlite3_stmt* st) {
        sqlite3_bind_int64(st, 1, before > 0 ? before : std::numeric_limits<int64_t>::max());
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(limit));
        if (type) BindText(st, 3, PatternTypeName(*type));
      },
      [&](sqlite3_stmt* r) {
        if (std::optional<Pattern> p = ReadPattern(r, 1)) {
          out.push_back(PatternRow{sqlite3_column_int64(r, 0), std::move(*p)});
        }
      },
      "list patterns");
  if (!s.ok()) return s;
  return out;
}

base::StatusOr<int64_t> Store::CountPatterns(std::optional<PatternType> type) {
  int64_t n = 0;
  base::Status s = Select(
      "SELECT count(*) FROM patterns WHERE ?1 IS NULL OR pattern_type = ?1",
      [&](sqlite3_stmt* st) {
        if (type) BindText(st, 1, PatternTypeName(*type));
      },
      [&](sqlite3_stmt* r) { n = sqlite3_column_int64(r, 0); }, "count patterns");
  if (!s.ok()) return s;
  return n;
}

base::StatusOr<WindowSums> Store::SumWindow(size_t experiments, size_t patterns,
                                            double compile_target_ms, double checkpoint_target_ms) {
  WindowSums w;
  base::Status s = Select(
      "SELECT status, ai_strategy, duration_seconds, script_compilation_time_ms, "
      "checkpoint_loading_time_ms FROM experiments ORDER BY seq DESC LIMIT ?",
      [&](sqlite3_stmt* st) { sqlite3_bind_int64(st, 1, static_cast<int64_t>(experiments)); },
      [&](sqlite3_stmt* r) {
        bool success = ParseStatus(Text(r, 0)) == ExperimentStatus::kSuccess;
        ++w.experiments;
        w.successful += success;
        w.duration_sum += sqlite3_column_double(r, 2);
        WindowSums::Strategy& st = w.strategies[Text(r, 1)];
        ++st.count;
        st.success += success;
        std::optional<double> compile = OptDouble(r, 3), checkpoint = OptDouble(r, 4);
        if (compile && *compile > 0) {
          ++w.compile_count;
          w.compile_sum += *compile;
          w.compile_under_target += *compile < compile_target_ms;
        }
        if (checkpoint && *checkpoint > 0) {
          ++w.checkpoint_count;
          w.checkpoint_sum += *checkpoint;
          w.checkpoint_under_target += *checkpoint < checkpoint_target_ms;
        }
      },
      "sum experiments");
  if (!s.ok()) return s;
  bool newest = true;
  s = Select(
      "SELECT quality_score, reuse_count, timestamp FROM patterns ORDER BY seq DESC LIMIT ?",
      [&](sqlite3_stmt* st) { sqlite3_bind_int64(st, 1, static_cast<int64_t>(patterns)); },
      [&](sqlite3_stmt* r) {
        ++w.patterns;
        w.quality_sum += std::clamp(sqlite3_column_double(r, 0), 0.0, 1.0);
        w.reuses += sqlite3_column_int64(r, 1);
        double ts = sqlite3_column_double(r, 2);
        if (newest) w.last_pattern_timestamp = ts;
        newest = false;
        w.first_pattern_timestamp = ts;
      },
      "sum patterns");
  if (!s.ok()) return s;
  return w;
}

base::Status Store::Begin() {
  experiments_at_begin_ = experiments_;
  patterns_at_begin_ = patterns_;
  Step step(stmts_->begin.get());
  return step() == SQLITE_DONE ? base::OkStatus() : Fail("begin");
}

base::Status Store::Commit() {
  Step step(stmts_->commit.get());
  return step() == SQLITE_DONE ? base::OkStatus() : Fail("commit");
}

void Store::Rollback() {
  experiments_ = experiments_at_begin_;
  patterns_ = patterns_at_begin_;
  // After some errors (SQLITE_FULL, IOERR) SQLite has already rolled back; then ROLLBACK
  // itself fails with "no transaction is active", which is fine.
  if (sqlite3_get_autocommit(db_) == 0) {
    Step step(stmts_->rollback.get());
    step();
  }
}

base::StatusOr<Store::Insert> Store::FinishInsert(int rc, Table* t) {
  if (rc != SQLITE_DONE) return Fail("insert");
  if (sqlite3_changes(db_) == 0) return Insert::kDuplicate;
  t->max_seq = sqlite3_last_insert_rowid(db_);
  if (t->min_seq == 0) t->min_seq = t->max_seq;
  return Insert::kInserted;
}

base::StatusOr<Store::Insert> Store::InsertExperiment(const Experiment& e) {
  sqlite3_stmt* s = stmts_->insert_experiment.get();
  Step step(s);
  BindText(s, 1, e.id);
  BindText(s, 2, StatusName(e.status));
  BindText(s, 3, e.ai_strategy);
  sqlite3_bind_double(s, 4, e.duration_seconds);
  Bind(s, 5, e.script_length);
  Bind(s, 6, e.script_compilation_ms);
  Bind(s, 7, e.checkpoint_loading_ms);
  Bind(s, 8, e.pattern_discoveries);
  sqlite3_bind_double(s, 9, e.timestamp);
  Bind(s, 10, e.error_message);
  Bind(s, 11, e.performance_score);
  return FinishInsert(step(), &experiments_);
}

base::StatusOr<Store::Insert> Store::InsertPattern(const Pattern& p) {
  sqlite3_stmt* s = stmts_->insert_pattern.get();
  Step step(s);
  BindText(s, 1, p.id);
  BindText(s, 2, PatternTypeName(p.type));
  sqlite3_bind_double(s, 3, p.quality_score);
  Bind(s, 4, p.discovery_time_seconds);
  Bind(s, 5, p.experiment_id);
  Bind(s, 6, p.ai_worker);
  sqlite3_bind_int64(s, 7, p.reuse_count);
  sqlite3_bind_double(s, 8, p.timestamp);
  return FinishInsert(step(), &patterns_);
}

base::StatusOr<std::optional<Store::Reuse>> Store::AddReuse(std::string_view pattern_id,
                                                            std::string_view key) {
  if (!key.empty()) {
    sqlite3_stmt* find = stmts_->find_reuse_key.get();
    Step step(find);
    BindText(find, 1, key);
    int rc = step();
    if (rc == SQLITE_ROW) {
      auto column = [&](int c) {
        return std::string_view(reinterpret_cast<const char*>(sqlite3_column_text(find, c)),
                                static_cast<size_t>(sqlite3_column_bytes(find, c)));
      };
      if (column(0) != pattern_id) {
        return base::AlreadyExistsError(
            "Idempotency-Key was already used for pattern " + std::string(column(0)),
            "Idempotency-Key");
      }
      return std::optional<Reuse>(Reuse{sqlite3_column_int64(find, 1), true});
    }
    if (rc != SQLITE_DONE) return Fail("find reuse key");
  }
  int64_t count = 0;
  {
    sqlite3_stmt* s = stmts_->reuse.get();
    Step step(s);
    BindText(s, 1, pattern_id);
    int rc = step();
    if (rc == SQLITE_DONE) return std::optional<Reuse>();
    if (rc != SQLITE_ROW) return Fail("count reuse");
    count = sqlite3_column_int64(s, 0);
    // RETURNING rows are produced before the update completes: finish it.
    if (step() != SQLITE_DONE) return Fail("count reuse");
  }
  if (!key.empty()) {
    sqlite3_stmt* s = stmts_->insert_reuse_key.get();
    Step step(s);
    BindText(s, 1, key);
    BindText(s, 2, pattern_id);
    sqlite3_bind_int64(s, 3, count);
    base::StatusOr<Insert> stored = FinishInsert(step(), &reuse_keys_);
    if (!stored.ok()) return stored.status();
  }
  return std::optional<Reuse>(Reuse{count, false});
}

base::Status Store::AddTotals(const std::vector<TotalRow>& delta) {
  sqlite3_stmt* s = stmts_->add_total.get();
  for (const TotalRow& row : delta) {
    Step step(s);
    BindText(s, 1, row.key);
    sqlite3_bind_int64(s, 2, row.n);
    sqlite3_bind_double(s, 3, row.x);
    if (step() != SQLITE_DONE) return Fail("add totals");
  }
  return base::OkStatus();
}

base::Status Store::TrimTable(sqlite3_stmt* s, Table* t, uint64_t keep) {
  if (keep == 0 || t->min_seq == 0) return base::OkStatus();
  int64_t first_kept = t->max_seq - static_cast<int64_t>(keep) + 1;
  if (first_kept <= t->min_seq) return base::OkStatus();
  Step step(s);
  sqlite3_bind_int64(s, 1, first_kept);
  if (step() != SQLITE_DONE) return Fail("trim");
  t->min_seq = first_kept;
  return base::OkStatus();
}

base::Status Store::Trim(uint64_t keep_experiments, uint64_t keep_patterns) {
  base::Status status = TrimTable(stmts_->trim_experiments.get(), &experiments_, keep_experiments);
  if (!status.ok()) return status;
  status = TrimTable(stmts_->trim_patterns.get(), &patterns_, keep_patterns);
  if (!status.ok()) return status;
  // A retry comes within minutes; keys are kept as long as patterns are.
  return TrimTable(stmts_->trim_reuse_keys.get(), &reuse_keys_, keep_patterns);
}

int64_t Store::CountRows(const char* table) {
  int64_t n = -1;
  if (!ForEachRow(db_, std::string("SELECT count(*) FROM ") + table,
                  [&](sqlite3_stmt* r) { n = sqlite3_column_int64(r, 0); })) {
    return -1;
  }
  return n;
}

}  // namespace speedmon::speedrun
