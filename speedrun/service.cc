// The speedrun service: validation on the admin thread, one writer thread batching
// commits, then state, metrics and answers; see service.h for the threading contract.
#include "speedrun/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "base/boundary.h"
#include "base/json.h"

namespace speedmon::speedrun {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The dotted names and the exported gauge names Value() answers.
enum class ValueKind {
  kSuccessRate,
  kCompileMs,
  kCheckpointMs,
  kQuality,
  kCompliance,
  kAvailability
};
struct ValueName {
  const char* name;
  ValueKind kind;
  double divisor;  // from the report's unit (percent, ms, 0..1, 1/0) to the name's
};
constexpr ValueName kValueNames[] = {
    {"speedrun.experiment_success_rate", ValueKind::kSuccessRate, 1},
    {"speedrun.average_script_compilation_ms", ValueKind::kCompileMs, 1},
    {"speedrun.average_checkpoint_loading_ms", ValueKind::kCheckpointMs, 1},
    {"speedrun.pattern_quality_average", ValueKind::kQuality, 1},
    {"speedrun.sla_compliance", ValueKind::kCompliance, 1},
    {"speedrun.system_availability", ValueKind::kAvailability, 1},
    {"pokemon_speedrun_experiment_success_rate", ValueKind::kSuccessRate, 1},
    {"pokemon_speedrun_script_compilation_average_seconds", ValueKind::kCompileMs, 1000},
    {"pokemon_speedrun_checkpoint_loading_average_seconds", ValueKind::kCheckpointMs, 1000},
    {"pokemon_speedrun_pattern_quality_average", ValueKind::kQuality, 1},
    {"pokemon_speedrun_sla_compliance", ValueKind::kCompliance, 1},
};

// Inserts records in order and keeps only the newly inserted ones in *records (the
// others are duplicates). The store's error when it failed; the batch is then rolled back.
template <typename Record, typename InsertFn>
base::Status InsertNew(std::vector<Record>* records, uint64_t* duplicates, InsertFn insert) {
  std::vector<Record> inserted;
  inserted.reserve(records->size());
  for (Record& r : *records) {
    base::StatusOr<Store::Insert> result = insert(r);
    if (!result.ok()) return result.status();
    if (*result == Store::Insert::kInserted) {
      inserted.push_back(std::move(r));
    } else {
      ++*duplicates;
    }
  }
  *records = std::move(inserted);
  return base::OkStatus();
}

}  // namespace

struct Service::Write {
  enum class Kind { kExperiments, kPatterns, kReuse, kRead };
  Kind kind = Kind::kExperiments;
  bool single = false;
  std::vector<Experiment> experiments;
  std::vector<Pattern> patterns;
  std::string pattern_id;                            // kReuse
  std::string reuse_key;                             // kReuse: its Idempotency-Key, or empty
  std::function<base::StatusOr<json>(Store&)> read;  // kRead
  ReadDone read_done;                                // kRead
  WriteDone done;
  base::StatusOr<WriteResult> result = base::InternalError("not written");  // set by the writer

  size_t Items() const {
    return experiments.size() + patterns.size() + (kind == Kind::kReuse || kind == Kind::kRead);
  }
};

namespace {
class ConsistentCollectable : public prometheus::Collectable {
 public:
  explicit ConsistentCollectable(const Service* service) : service_(service) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return service_->CollectMetrics();
  }

 private:
  const Service* service_;
};
}  // namespace

Service::Service(config::SpeedrunConfig speedrun, config::SlaConfig sla,
                 std::shared_ptr<prometheus::Registry> registry, ServiceLimits limits)
    : speedrun_(std::move(speedrun)),
      limits_(limits),
      registry_(std::move(registry)),
      families_(*registry_),
      window_(speedrun_.window_experiments, speedrun_.window_patterns, sla),
      metrics_(families_) {
  collectable_ = std::make_shared<ConsistentCollectable>(this);
}

Service::~Service() { Close(); }

base::Status Service::Open() {
  if (opened_) return base::FailedPreconditionError("speedrun service: Open() called twice");
  opened_ = true;
  if (base::Status s = store_.Open(speedrun_.store_path); !s.ok()) return s;
  Totals totals;
  std::vector<Experiment> experiments;
  std::vector<Pattern> patterns;
  for (base::Status s : {store_.LoadTotals(&totals),
                         store_.LoadRecentExperiments(speedrun_.window_experiments, &experiments),
                         store_.LoadRecentPatterns(speedrun_.window_patterns, &patterns)}) {
    if (!s.ok()) return s;
  }

  for (const auto& [key, n] : totals.experiments) {
    if (key.second != kOtherStrategy) strategy_labels_.insert(key.second);
  }
  {
    std::lock_guard lock(state_mu_);
    for (const Experiment& e : experiments) {
      window_.AddExperiment(e.status == ExperimentStatus::kSuccess, e.script_compilation_ms,
                            e.checkpoint_loading_ms);
    }
    for (const Pattern& p : patterns) window_.AddPattern(p.quality_score);
    totals_ = totals;
    metrics_.Add(totals);
    metrics_.Update(window_.Report());
  }
  {
    std::lock_guard lock(queue_mu_);
    accepting_ = true;
  }
  writer_ = std::thread([this] { WriterLoop(); });
  return base::OkStatus();
}

void Service::Close() {
  {
    std::lock_guard lock(queue_mu_);
    accepting_ = false;
    stopping_ = true;
  }
  queue_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  store_.Close();
}

void Service::PostExperiments(std::string_view body, std::string_view content_type,
                              WriteDone done) {
  Post(true, body, content_type, std::move(done));
}

void Service::PostPatterns(std::string_view body, std::string_view content_type, WriteDone done) {
  Post(false, body, content_type, std::move(done));
}

void Service::Post(bool experiments, std::string_view body, std::string_view content_type,
                   WriteDone done) {
  BodyLimits body_limits{limits_.max_body_bytes, limits_.max_batch_items, limits_.max_json_depth};
  DecodedBody decoded;
  if (base::Status s = DecodeBody(body, content_type, body_limits, &decoded); !s.ok()) {
    return done(s);
  }
  Write w;
  w.kind = experiments ? Write::Kind::kExperiments : Write::Kind::kPatterns;
  w.single = decoded.single;
  double now = NowSeconds();
  for (size_t i = 0; i < decoded.items.size(); ++i) {
    base::Status s = experiments ? ValidateExperiment(decoded.items[i], decoded.ItemPath(i), now,
                                                      &w.experiments.emplace_back())
                                 : ValidatePattern(decoded.items[i], decoded.ItemPath(i), now,
                                                   &w.patterns.emplace_back());
    if (!s.ok()) return done(s);
  }
  w.done = std::move(done);
  Enqueue(std::move(w));
}

void Service::PostPatternReuse(std::string_view pattern_id, std::string_view key, WriteDone done) {
  if (!base::IsValidUtf8(pattern_id)) {
    return done(base::InvalidArgumentError("pattern_id must be UTF-8", "pattern_id"));
  }
  size_t chars = Utf8Length(pattern_id);
  if (chars < 1 || chars > kMaxIdChars) {
    return done(base::InvalidArgumentError("pattern_id must be 1 to 128 characters", "pattern_id"));
  }
  if (!key.empty() && (!base::IsValidUtf8(key) || Utf8Length(key) > kMaxIdChars)) {
    return done(base::InvalidArgumentError("Idempotency-Key must be 1 to 128 characters of UTF-8",
                                           "Idempotency-Key"));
  }
  Write w;
  w.kind = Write::Kind::kReuse;
  w.pattern_id = std::string(pattern_id);
  w.reuse_key = std::string(key);
  w.done = std::move(done);
  Enqueue(std::move(w));
}

void Service::Enqueue(Write write) {
  size_t items = write.Items();
  std::unique_lock lock(queue_mu_);
  if (!accepting_) {
    lock.unlock();
    return write.done(base::UnavailableError("speedrun store is not open"));
  }
  // One batch may always wait alone, so a legal batch is never refused for its size.
  if (queued_items_ > 0 && queued_items_ + items > limits_.max_queued_items) {
    lock.unlock();
    return write.done(base::UnavailableError("speedrun store is busy: retry later"));
  }
  queued_items_ += items;
  queue_.push_back(std::move(write));
  lock.unlock();
  queue_cv_.notify_one();
}

void Service::WriterLoop() {
  std::vector<Write> batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted has been answered
      batch.swap(queue_);
      queued_items_ = 0;
    }
    base::Guard(
        base::Component::kStore, "store writer", [&] { CommitBatch(&batch); },
        [&] {
          // Nothing of the batch is known to be stored: roll back and answer each write
          // (a write answered already keeps its answer; the admin server drops a second).
          store_.Rollback();
          base::Status failed = base::InternalError("internal error");
          for (Write& w : batch) w.done(failed);
        });
    batch.clear();
  }
}

const std::string& Service::FoldStrategy(const std::string& strategy) {
  static const std::string kOther = kOtherStrategy;
  auto it = strategy_labels_.find(strategy);
  if (it != strategy_labels_.end()) return *it;
  if (strategy == kOther || strategy_labels_.size() >= speedrun_.max_strategy_labels) {
    return kOther;
  }
  return *strategy_labels_.insert(strategy).first;
}

void Service::CommitBatch(std::vector<Write>* batch) {
  Totals delta;
  std::set<std::string> labels_before = strategy_labels_;
  base::Status stored = store_.Begin();
  for (Write& w : *batch) {
    if (!stored.ok()) break;
    if (w.kind == Write::Kind::kRead) continue;  // after the commit
    if (w.kind == Write::Kind::kReuse) {
      base::StatusOr<std::optional<Store::Reuse>> reuse =
          store_.AddReuse(w.pattern_id, w.reuse_key);
      if (!reuse.ok() && reuse.status().code() == base::StatusCode::kAlreadyExists) {
        w.result = reuse.status();  // this post's mistake, not the batch's
      } else if (!reuse.ok()) {
        stored = reuse.status();
      } else if (reuse->has_value()) {
        if (!(*reuse)->duplicate) ++delta.reuses;
        WriteResult result;
        result.kind = WriteResult::Kind::kReuse;
        result.experiment = false;
        result.id = w.pattern_id;
        result.reuse_count = (*reuse)->count;
        result.repeated = (*reuse)->duplicate;
        w.result = std::move(result);
      } else {
        w.result = base::NotFoundError("unknown pattern", "pattern_id");
      }
      continue;
    }
    bool experiments = w.kind == Write::Kind::kExperiments;
    std::string single_id;
    if (w.single) single_id = experiments ? w.experiments[0].id : w.patterns[0].id;
    uint64_t duplicates = 0;
    if (experiments) {
      stored = InsertNew(&w.experiments, &duplicates,
                         [&](const Experiment& e) { return store_.InsertExperiment(e); });
      for (const Experiment& e : w.experiments) delta.AddExperiment(e, FoldStrategy(e.ai_strategy));
    } else {
      stored = InsertNew(&w.patterns, &duplicates,
                         [&](const Pattern& p) { return store_.InsertPattern(p); });
      for (const Pattern& p : w.patterns) delta.AddPattern(p);
    }
    uint64_t accepted = experiments ? w.experiments.size() : w.patterns.size();
    WriteResult result;
    result.experiment = experiments;
    if (!w.single) {
      result.kind = WriteResult::Kind::kBatch;
      result.accepted = accepted;
      result.duplicates = duplicates;
    } else {
      result.kind = accepted ? WriteResult::Kind::kCreated : WriteResult::Kind::kDuplicate;
      result.id = std::move(single_id);
    }
    w.result = std::move(result);
  }
  if (stored.ok()) stored = store_.AddTotals(delta.ToRows());
  if (stored.ok()) {
    uint64_t retention = speedrun_.retention_rows;
    stored =
        store_.Trim(retention ? std::max<uint64_t>(retention, speedrun_.window_experiments) : 0,
                    retention ? std::max<uint64_t>(retention, speedrun_.window_patterns) : 0);
  }
  if (stored.ok()) stored = store_.Commit();
  if (!stored.ok()) {
    // Every write of the batch gets the store's kUnavailable with SQLite's message.
    store_.Rollback();
    strategy_labels_ = std::move(labels_before);
    for (Write& w : *batch) w.done(stored);
    return;
  }
  ApplyCommitted(batch, delta);
  for (Write& w : *batch) {
    if (w.kind == Write::Kind::kRead) {
      w.read_done(w.read(store_));
    } else {
      w.done(std::move(w.result));
    }
  }
}

void Service::ApplyCommitted(std::vector<Write>* batch, const Totals& delta) {
  std::lock_guard lock(state_mu_);
  for (Write& w : *batch) {
    for (const Experiment& e : w.experiments) {
      window_.AddExperiment(e.status == ExperimentStatus::kSuccess, e.script_compilation_ms,
                            e.checkpoint_loading_ms);
    }
    for (const Pattern& p : w.patterns) window_.AddPattern(p.quality_score);
  }
  totals_.Add(delta);
  metrics_.Add(delta);
  metrics_.Update(window_.Report());
}

void Service::Read(std::function<base::StatusOr<json>(Store&)> read, ReadDone done) {
  Write w;
  w.kind = Write::Kind::kRead;
  w.read = std::move(read);
  w.read_done = done;
  // Refusals and a failed batch answer through `done` with their status.
  w.done = [done = std::move(done)](base::StatusOr<WriteResult> r) {
    done(r.ok() ? base::InternalError("internal error") : r.status());
  };
  Enqueue(std::move(w));
}

void Service::GetExperiment(std::string_view id_view, ReadDone done) {
  Read(
      [id = std::string(id_view)](Store& store) -> base::StatusOr<json> {
        base::StatusOr<std::optional<ExperimentRow>> row = store.FindExperiment(id);
        if (!row.ok()) return row.status();
        if (!row->has_value()) return base::NotFoundError("unknown experiment", "experiment_id");
        return ToJson((*row)->experiment);
      },
      std::move(done));
}

void Service::GetPattern(std::string_view id_view, ReadDone done) {
  Read(
      [id = std::string(id_view)](Store& store) -> base::StatusOr<json> {
        base::StatusOr<std::optional<PatternRow>> row = store.FindPattern(id);
        if (!row.ok()) return row.status();
        if (!row->has_value()) return base::NotFoundError("unknown pattern", "pattern_id");
        return ToJson((*row)->pattern);
      },
      std::move(done));
}

namespace {
// The page's rows (one more was asked for to learn whether another page follows) and
// its `next` cursor.
template <typename Row, typename ToJsonFn>
json Page(std::vector<Row> rows, size_t limit, const char* key, uint64_t total, ToJsonFn to_json) {
  json next = nullptr;
  if (rows.size() > limit) {
    rows.resize(limit);
    next = EncodeCursor(rows.back().seq);
  }
  json list = json::array();
  for (const Row& r : rows) list.push_back(to_json(r));
  return json{{key, std::move(list)}, {"total", total}, {"next", std::move(next)}};
}
}  // namespace

void Service::ListExperiments(ListQuery q, ReadDone done) {
  Read(
      [this, q](Store& store) -> base::StatusOr<json> {
        base::StatusOr<std::vector<ExperimentRow>> rows =
            store.ListExperiments(q.before, q.limit + 1);
        if (!rows.ok()) return rows.status();
        uint64_t total;
        {
          std::lock_guard lock(state_mu_);
          total = totals_.ExperimentCount();
        }
        return Page(std::move(rows).value(), q.limit, "experiments", total,
                    [](const ExperimentRow& r) { return ToJson(r.experiment); });
      },
      std::move(done));
}

void Service::ListPatterns(ListQuery q, ReadDone done) {
  Read(
      [this, q](Store& store) -> base::StatusOr<json> {
        base::StatusOr<std::vector<PatternRow>> rows =
            store.ListPatterns(q.type, q.before, q.limit + 1);
        if (!rows.ok()) return rows.status();
        uint64_t total = 0;
        {
          std::lock_guard lock(state_mu_);
          for (const auto& [type, n] : totals_.patterns) {
            if (!q.type || type == PatternTypeName(*q.type)) total += n;
          }
        }
        return Page(std::move(rows).value(), q.limit, "patterns", total,
                    [](const PatternRow& r) { return ToJson(r.pattern); });
      },
      std::move(done));
}

void Service::GetSummary(ReadDone done) {
  Read(
      [this](Store& store) -> base::StatusOr<json> {
        config::SlaConfig sla;
        {
          std::lock_guard lock(state_mu_);
          sla = window_.sla();
        }
        base::StatusOr<WindowSums> sums =
            store.SumWindow(speedrun_.window_experiments, speedrun_.window_patterns,
                            sla.script_compilation_target_ms, sla.checkpoint_loading_target_ms);
        if (!sums.ok()) return sums.status();
        return SummaryJson(*sums);
      },
      std::move(done));
}

json Service::SummaryJson(const WindowSums& w) const {
  auto ratio = [](double part, double whole, double scale) -> json {
    return whole > 0 ? json(part / whole * scale) : json(nullptr);
  };
  json effectiveness = json::object();
  std::string best = "unknown";
  double best_rate = -1;
  uint64_t best_count = 0;
  for (const auto& [strategy, st] : w.strategies) {
    double rate = 100.0 * static_cast<double>(st.success) / static_cast<double>(st.count);
    effectiveness[strategy] = rate;
    // The highest success rate; a tie goes to the strategy tried more often (then the
    // name, for a stable answer).
    if (rate > best_rate || (rate == best_rate && st.count > best_count)) {
      best = strategy;
      best_rate = rate;
      best_count = st.count;
    }
  }
  double span_hours = (w.last_pattern_timestamp - w.first_pattern_timestamp) / 3600.0;
  uint64_t all_experiments, all_patterns = 0, all_reuses;
  {
    std::lock_guard lock(state_mu_);
    all_experiments = totals_.ExperimentCount();
    for (const auto& [type, n] : totals_.patterns) all_patterns += n;
    all_reuses = totals_.reuses;
  }
  double experiments = static_cast<double>(w.experiments);
  return json{
      {"total_experiments", w.experiments},
      {"successful_experiments", w.successful},
      {"failed_experiments", w.experiments - w.successful},
      {"average_experiment_duration", ratio(w.duration_sum, experiments, 1)},
      {"experiment_success_rate", ratio(static_cast<double>(w.successful), experiments, 100)},
      {"average_script_compilation_ms",
       ratio(w.compile_sum, static_cast<double>(w.compile_count), 1)},
      {"average_checkpoint_loading_ms",
       ratio(w.checkpoint_sum, static_cast<double>(w.checkpoint_count), 1)},
      {"compilation_target_compliance", ratio(static_cast<double>(w.compile_under_target),
                                              static_cast<double>(w.compile_count), 100)},
      {"checkpoint_target_compliance", ratio(static_cast<double>(w.checkpoint_under_target),
                                             static_cast<double>(w.checkpoint_count), 100)},
      {"total_patterns_discovered", w.patterns},
      {"pattern_discovery_rate_per_hour",
       w.patterns > 1 && span_hours > 0 ? static_cast<double>(w.patterns) / span_hours : 0.0},
      {"pattern_reuse_rate",
       ratio(static_cast<double>(w.reuses), static_cast<double>(w.patterns), 1)},
      {"average_pattern_quality", ratio(w.quality_sum, static_cast<double>(w.patterns), 1)},
      {"strategy_effectiveness", std::move(effectiveness)},
      {"most_effective_strategy", best},
      {"timestamp", NowSeconds()},
      {"window",
       {{"experiments", speedrun_.window_experiments}, {"patterns", speedrun_.window_patterns}}},
      {"all_time",
       {{"experiments", all_experiments},
        {"patterns", all_patterns},
        {"pattern_reuses", all_reuses}}}};
}

std::string EncodeCursor(int64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "c1.%llx", static_cast<unsigned long long>(seq));
  return buf;
}

std::optional<int64_t> DecodeCursor(std::string_view cursor) {
  constexpr std::string_view kPrefix = "c1.";
  if (!cursor.starts_with(kPrefix) || cursor.size() == kPrefix.size() ||
      cursor.size() > kPrefix.size() + 15) {  // 15 hex digits: no overflow
    return std::nullopt;
  }
  int64_t seq = 0;
  for (char c : cursor.substr(kPrefix.size())) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    seq = seq * 16 + digit;
  }
  if (seq <= 0) return std::nullopt;
  return seq;
}

Service::ExperimentCounts Service::CountExperiments() const {
  ExperimentCounts c;
  std::lock_guard lock(state_mu_);
  for (const auto& [key, n] : totals_.experiments) {
    c.total += n;
    if (key.first == StatusName(ExperimentStatus::kSuccess)) c.successes += n;
  }
  return c;
}

json Service::GetSla() const {
  std::lock_guard lock(state_mu_);
  return SlaJson(window_.Report(), window_.sla());
}

json ToJson(const WriteResult& r) {
  switch (r.kind) {
    case WriteResult::Kind::kCreated:
    case WriteResult::Kind::kDuplicate:
      return json{{"status", r.kind == WriteResult::Kind::kCreated ? "created" : "duplicate"},
                  {r.experiment ? "experiment_id" : "pattern_id", r.id}};
    case WriteResult::Kind::kBatch:
      return json{{"accepted", r.accepted}, {"duplicates", r.duplicates}};
    case WriteResult::Kind::kReuse:
      return json{{"status", r.repeated ? "duplicate" : "counted"},
                  {"pattern_id", r.id},
                  {"reuse_count", r.reuse_count}};
  }
  return json::object();
}

double Service::Value(std::string_view name) const {
  for (const ValueName& v : kValueNames) {
    if (name != v.name) continue;
    SlaReport r;
    {
      std::lock_guard lock(state_mu_);
      r = window_.Report();
    }
    std::optional<double> value;
    switch (v.kind) {
      case ValueKind::kSuccessRate:
        value = r[Requirement::kExperimentSuccessRate].value;
        break;
      case ValueKind::kCompileMs:
        value = r.average_compile_ms;
        break;
      case ValueKind::kCheckpointMs:
        value = r.average_checkpoint_ms;
        break;
      case ValueKind::kQuality:
        value = r[Requirement::kPatternQuality].value;
        break;
      case ValueKind::kCompliance:
        value = r.overall ? 1 : 0;
        break;
      case ValueKind::kAvailability:
        value = r[Requirement::kSystemAvailability].value;
        break;
    }
    return value ? *value / v.divisor : kNaN;
  }
  return kNaN;
}

const std::vector<std::string>& Service::ValueNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const ValueName& v : kValueNames) names.push_back(v.name);
    return names;
  }();
  return kNames;
}

std::vector<prometheus::MetricFamily> Service::CollectMetrics() const {
  std::lock_guard lock(state_mu_);  // every metrics update happens under it
  return registry_->Collect();
}

void Service::AppendMetricsText(metrics::Format format, metrics::TextBuffer* out) const {
  std::lock_guard lock(state_mu_);  // as CollectMetrics
  families_.AppendText(format, out);
}

void Service::SetHealthyProcessRatio(double percent_or_nan) {
  std::lock_guard lock(state_mu_);
  window_.SetAvailability(percent_or_nan);
  metrics_.Update(window_.Report());
}

void Service::SetSlaConfig(const config::SlaConfig& sla) {
  std::lock_guard lock(state_mu_);
  window_.SetSla(sla);
  metrics_.Update(window_.Report());
}

}  // namespace speedmon::speedrun
