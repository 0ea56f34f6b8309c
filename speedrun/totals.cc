// All-time totals and their rows in the store; see totals.h. Writer thread and Open().
#include "speedrun/totals.h"

#include <charconv>

namespace speedmon::speedrun {
namespace {

constexpr char kExperimentsPrefix[] = "experiments|";
constexpr char kPatternsPrefix[] = "patterns|";
constexpr char kReuses[] = "reuses";
constexpr char kHistPrefix[] = "hist|";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

void AddHistogramRows(const char* name, const HistogramTotals& h, std::vector<TotalRow>* rows) {
  std::string prefix = std::string(kHistPrefix) + name + "|";
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (h.counts[i]) rows->push_back({prefix + std::to_string(i), int64_t(h.counts[i]), 0});
  }
  if (h.sum != 0) rows->push_back({prefix + "sum", 0, h.sum});
}

// "duration|3" or "duration|sum" into h when the name matches.
void AddHistogramRow(std::string_view rest, const char* name, const TotalRow& row,
                     HistogramTotals* h) {
  std::string_view n = name;
  if (!StartsWith(rest, n) || rest.size() <= n.size() || rest[n.size()] != '|') return;
  std::string_view which = rest.substr(n.size() + 1);
  if (which == "sum") {
    h->sum += row.x;
    return;
  }
  size_t index = 0;
  auto [end, ec] = std::from_chars(which.data(), which.data() + which.size(), index);
  // A bucket index outside today's layout means the layout changed: that history is
  // dropped rather than put into a wrong bucket.
  if (ec == std::errc() && end == which.data() + which.size() && index < h->counts.size()) {
    h->counts[index] += static_cast<uint64_t>(row.n);
  }
}

}  // namespace

const std::vector<double>& DurationBuckets() {
  static const std::vector<double> kBuckets = {0.1, 0.5, 1,   5,   10,   30,
                                               60,  120, 300, 600, 1800, 3600};
  return kBuckets;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
                                               0.25, 0.5,   0.75, 1,     2.5, 5};
  return kBuckets;
}

void HistogramTotals::Observe(double value) {
  size_t i = 0;
  while (i < bounds->size() && value > (*bounds)[i]) ++i;
  ++counts[i];
  sum += value;
}

void HistogramTotals::Add(const HistogramTotals& other) {
  for (size_t i = 0; i < counts.size() && i < other.counts.size(); ++i) {
    counts[i] += other.counts[i];
  }
  sum += other.sum;
}

uint64_t HistogramTotals::Count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

Totals::Totals()
    : duration(&DurationBuckets()), compile(&LatencyBuckets()), checkpoint(&LatencyBuckets()) {}

void Totals::AddExperiment(const Experiment& e, const std::string& strategy_label) {
  ++experiments[{StatusName(e.status), strategy_label}];
  duration.Observe(e.duration_seconds);
  if (auto ms = MeasuredMs(e.script_compilation_ms)) compile.Observe(*ms / 1000);
  if (auto ms = MeasuredMs(e.checkpoint_loading_ms)) checkpoint.Observe(*ms / 1000);
}

void Totals::AddPattern(const Pattern& p) {
  ++patterns[PatternTypeName(p.type)];
  reuses += static_cast<uint64_t>(p.reuse_count);
}

void Totals::Add(const Totals& other) {
  for (const auto& [k, n] : other.experiments) experiments[k] += n;
  for (const auto& [k, n] : other.patterns) patterns[k] += n;
  reuses += other.reuses;
  duration.Add(other.duration);
  compile.Add(other.compile);
  checkpoint.Add(other.checkpoint);
}

bool Totals::Empty() const { return experiments.empty() && patterns.empty() && reuses == 0; }

uint64_t Totals::ExperimentCount() const {
  uint64_t n = 0;
  for (const auto& [k, count] : experiments) n += count;
  return n;
}

std::vector<TotalRow> Totals::ToRows() const {
  std::vector<TotalRow> rows;
  for (const auto& [k, n] : experiments) {
    rows.push_back({kExperimentsPrefix + k.first + "|" + k.second, int64_t(n), 0});
  }
  for (const auto& [type, n] : patterns) rows.push_back({kPatternsPrefix + type, int64_t(n), 0});
  if (reuses) rows.push_back({kReuses, int64_t(reuses), 0});
  AddHistogramRows("duration", duration, &rows);
  AddHistogramRows("compile", compile, &rows);
  AddHistogramRows("checkpoint", checkpoint, &rows);
  return rows;
}

void Totals::AddRow(const TotalRow& row) {
  std::string_view key = row.key;
  uint64_t n = row.n > 0 ? static_cast<uint64_t>(row.n) : 0;
  if (StartsWith(key, kExperimentsPrefix)) {
    // The status never contains '|'; the strategy may, so it is everything after.
    std::string_view rest = key.substr(sizeof(kExperimentsPrefix) - 1);
    size_t bar = rest.find('|');
    if (bar == std::string_view::npos || !ParseStatus(rest.substr(0, bar))) return;
    experiments[{std::string(rest.substr(0, bar)), std::string(rest.substr(bar + 1))}] += n;
  } else if (StartsWith(key, kPatternsPrefix)) {
    std::string_view type = key.substr(sizeof(kPatternsPrefix) - 1);
    if (ParsePatternType(type)) patterns[std::string(type)] += n;
  } else if (key == kReuses) {
    reuses += n;
  } else if (StartsWith(key, kHistPrefix)) {
    std::string_view rest = key.substr(sizeof(kHistPrefix) - 1);
    AddHistogramRow(rest, "duration", row, &duration);
    AddHistogramRow(rest, "compile", row, &compile);
    AddHistogramRow(rest, "checkpoint", row, &checkpoint);
  }
}

}  // namespace speedmon::speedrun
