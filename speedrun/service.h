// The speedrun service behind the admin API's /api/v1/experiments, /api/v1/patterns and
// /api/v1/sla: validates posted records, makes them durable through one writer thread
// that batches everything pending into one SQLite transaction, keeps the SLA windows and
// the recent list, and publishes the speedrun metrics.
//
// Threads and ownership:
//   - Construction, Open(), Close(), Post*(), Get*(), Value(), SetHealthyProcessRatio()
//     and SetSlaConfig() are called on one thread, the admin (main) thread. Get*() and
//     Value() are also safe from any other thread.
//   - Open() starts the writer thread; it owns the store until Close() joins it. After a
//     batch commits, the writer applies it to the in-memory state and the metrics (under
//     one state mutex) and then calls each write's `done`.
//   - `done` callbacks are owned by the Service until called, exactly once each, without
//     any Service lock held. They must be cheap and thread-safe (post to your loop), and
//     must not call Close().
//   - The registry is shared; the Service registers its families on it in the constructor
//     (see speedrun_metrics.h for the names) and updates them only after commits and from
//     SetHealthyProcessRatio / SetSlaConfig. AppendMetricsText writes those families
//     only: other families on the registry are not in it.
//
// Durability and answers: a write is answered (done) only after its batch has committed
// (WAL, synchronous=NORMAL: it survives the process being killed; see store.h). With
// store_path = "" the same code runs against a private in-memory SQLite database, so
// answers still come from the writer thread, and nothing survives the process.
// Retention: the newest max(retention_rows, window, 1000 recent) experiments and
// max(retention_rows, window_patterns) patterns are kept as rows (retention_rows = 0:
// all); totals are kept forever. A duplicate is recognised while its row is kept.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

#include "base/status.h"
#include "config/config.h"
#include "metrics/family.h"
#include "speedrun/body.h"
#include "speedrun/records.h"
#include "speedrun/sla.h"
#include "speedrun/speedrun_metrics.h"
#include "speedrun/store.h"
#include "speedrun/totals.h"

namespace speedmon::speedrun {

// What a committed write did. Its JSON form (ToJson) is the admin API's answer body.
struct WriteResult {
  enum class Kind {
    kCreated,    // one record, new: {"status":"created","experiment_id":"..."}
    kDuplicate,  // one record seen before: {"status":"duplicate","experiment_id":"..."}
    kBatch,      // an array or NDJSON: {"accepted":N,"duplicates":M}
    kReuse,      // a pattern reuse: {"status":"counted","pattern_id":"...","reuse_count":N}
  };
  Kind kind = Kind::kCreated;
  bool experiment = true;   // kCreated/kDuplicate: "experiment_id", else "pattern_id"
  std::string id;           // kCreated, kDuplicate, kReuse
  uint64_t accepted = 0;    // kBatch
  uint64_t duplicates = 0;  // kBatch
  int64_t reuse_count = 0;  // kReuse
  bool repeated = false;    // kReuse: its Idempotency-Key was seen ("status":"duplicate")
};
nlohmann::json ToJson(const WriteResult& result);
using WriteDone = std::function<void(base::StatusOr<WriteResult>)>;

// The reads behind the admin API's GET routes that go to the store. Their answers are
// JSON documents (see the Service methods); errors are base::Status.
using ReadDone = std::function<void(base::StatusOr<nlohmann::json>)>;

// A page of a list: at most `limit` rows older than the cursor's row (before = 0: from
// the newest), of one pattern type when `type` is set (patterns only).
struct ListQuery {
  size_t limit = 100;
  int64_t before = 0;
  std::optional<PatternType> type;
};
inline constexpr size_t kMaxPageSize = 1000;

// The opaque `next` cursor of a list answer, and back: nullopt for anything this
// version did not write (answered 400, field "cursor").
std::string EncodeCursor(int64_t seq);
std::optional<int64_t> DecodeCursor(std::string_view cursor);

struct ServiceLimits {
  uint64_t max_body_bytes = 1048576;  // pass [admin].max_body_bytes; larger bodies: 413
  size_t max_batch_items = 10000;     // items per array / NDJSON body; more: 413
  int max_json_depth = 32;            // deeper nesting: 400
  size_t max_queued_items = 100000;   // records waiting for the writer; more: kUnavailable
};

class Service {
 public:
  Service(config::SpeedrunConfig speedrun, config::SlaConfig sla,
          std::shared_ptr<prometheus::Registry> registry, ServiceLimits limits = {});
  ~Service();  // Close()
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Opens the store (creating the file and tables), restores the totals (counters
  // continue where they were), the SLA windows and the recent list, and starts the
  // writer thread. kUnavailable for an unopenable path, not a database or a newer schema.
  // REQUIRES: called at most once.
  base::Status Open();

  // Stops taking writes (later ones get kUnavailable), lets the writer commit and answer
  // everything already accepted, joins it and closes the store. Safe to repeat.
  void Close();

  // POST /api/v1/experiments and /api/v1/patterns. `body` and `content_type` are the
  // request's as received (the header value, "" when absent; see FramingFor in body.h);
  // both are read only during the call. Fields are validated as records.h says (unknown
  // fields are ignored).
  // `done` is called exactly once:
  //   - before this returns, for input that is not recorded: kInvalidArgument (nothing of
  //     the batch is recorded), kTooLarge (body or batch), kUnsupportedFormat
  //     (Content-Type), kUnavailable (not open, or more than max_queued_items waiting:
  //     retry later);
  //   - later, on the writer thread, after the batch holding the write committed: a
  //     WriteResult (kCreated, kDuplicate or kBatch), or kUnavailable with the SQLite
  //     error when the commit failed and nothing of that batch was recorded.
  // An id seen before, or twice in one batch, is a duplicate: not stored or counted again.
  void PostExperiments(std::string_view body, std::string_view content_type, WriteDone done);
  void PostPatterns(std::string_view body, std::string_view content_type, WriteDone done);

  // POST /api/v1/patterns/{pattern_id}/reuse. `pattern_id` is the decoded path segment
  // (any bytes); `key` the request's Idempotency-Key (empty: none), which makes a retry
  // safe: a key seen before counts nothing and answers what its first post answered.
  // After commit: kReuse with the new count, kNotFound for a pattern not (or no longer)
  // stored, or kAlreadyExists for a key first used with another pattern; at once
  // kInvalidArgument for an id or key that is not 1..128 characters of UTF-8, and
  // kUnavailable as above.
  void PostPatternReuse(std::string_view pattern_id, std::string_view key, WriteDone done);

  // Store reads, answered through `done` on the writer thread after every write that was
  // acknowledged before the call (kUnavailable when not open or too busy, or with
  // SQLite's error). `done` follows the WriteDone rules above.
  //   GetExperiment / GetPattern: the record's JSON (records.h ToJson); kNotFound (field
  //     "experiment_id" / "pattern_id") for an id not (or no longer) stored.
  //   ListExperiments: {"experiments": [newest first], "total": all-time count,
  //     "next": cursor | null}; ListPatterns likewise with "patterns" ("total" all-time, of
  //     the type when filtered). `next` is null on the last page.
  //   GetSummary: the summary figures over the SLA windows (docs/API.md, "Summary").
  void GetExperiment(std::string_view id, ReadDone done);
  void GetPattern(std::string_view id, ReadDone done);
  void ListExperiments(ListQuery query, ReadDone done);
  void ListPatterns(ListQuery query, ReadDone done);
  void GetSummary(ReadDone done);

  // GET /api/v1/sla: the shape of SlaJson in sla.h.
  nlohmann::json GetSla() const;

  // Experiments stored since ever (restored at Open) and how many of them have status
  // success: what the status page's charts take differences of. Any thread.
  struct ExperimentCounts {
    uint64_t total = 0, successes = 0;
  };
  ExperimentCounts CountExperiments() const;

  // The current value of a number alert rules read, NaN when there is no data or the
  // name is unknown. Names: see ValueNames() (the dotted speedrun.* names, in their units:
  // percent and ms, and the exported gauge names, in theirs: seconds).
  double Value(std::string_view name) const;
  static const std::vector<std::string>& ValueNames();

  // The healthy process ratio in percent from the health checks; NaN = unknown.
  void SetHealthyProcessRatio(double percent_or_nan);

  // The registry's families in one consistent cut: a committed batch shows in every
  // family (counters, histograms, window gauges) or in none. Scrape through this rather
  // than registry->Collect() when the registry holds speedrun's metrics. Any thread.
  std::vector<prometheus::MetricFamily> CollectMetrics() const;
  // The same families as CollectMetrics, in the same cut, appended as
  // metrics::Serialize would write CollectMetrics() (without OpenMetrics' "# EOF"): what
  // GET /metrics shows (see metrics/family.h for why not through Collect). Any thread.
  void AppendMetricsText(metrics::Format format, metrics::TextBuffer* out) const;
  // The same as a Collectable (for alert rules); valid while the Service lives.
  std::shared_ptr<prometheus::Collectable> collectable() const { return collectable_; }
  // A reloaded [sla] section: the window is recounted against the new targets.
  void SetSlaConfig(const config::SlaConfig& sla);

 private:
  struct Write;

  void Post(bool experiments, std::string_view body, std::string_view content_type, WriteDone done);
  // Queues `read` to run on the writer thread after the batch in front of it commits.
  void Read(std::function<base::StatusOr<nlohmann::json>(Store&)> read, ReadDone done);
  nlohmann::json SummaryJson(const WindowSums& w) const;
  // Queues a validated write; answers kUnavailable itself when not open or full.
  void Enqueue(Write write);
  void WriterLoop();
  void CommitBatch(std::vector<Write>* batch);
  const std::string& FoldStrategy(const std::string& strategy);
  void ApplyCommitted(std::vector<Write>* batch, const Totals& delta);

  const config::SpeedrunConfig speedrun_;
  const ServiceLimits limits_;
  std::shared_ptr<prometheus::Registry> registry_;
  metrics::FamilySet families_;  // registry_'s families; only metrics_ adds to them
  std::shared_ptr<prometheus::Collectable> collectable_;

  // Admin thread only.
  bool opened_ = false;

  // The queue between the admin thread and the writer.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Write> queue_;  // guarded by queue_mu_
  size_t queued_items_ = 0;   // guarded by queue_mu_
  bool accepting_ = false;    // guarded by queue_mu_
  bool stopping_ = false;     // guarded by queue_mu_
  std::thread writer_;

  // Writer thread only (and Open() before the writer starts).
  Store store_;
  std::set<std::string> strategy_labels_;

  // What readers see; changed by the writer after each commit.
  mutable std::mutex state_mu_;
  SlaWindow window_;         // guarded by state_mu_
  Totals totals_;            // guarded by state_mu_
  SpeedrunMetrics metrics_;  // guarded by state_mu_
};

}  // namespace speedmon::speedrun
