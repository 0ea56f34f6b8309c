// All-time totals behind the speedrun counters and histograms: what the store keeps in
// its `totals` table so counters continue after a restart even when raw rows have been
// trimmed by retention.
//
// A Totals is a plain value. The writer thread builds one per batch (the delta), writes
// it in the batch's transaction, and after the commit adds it to Service's running
// totals and to the Prometheus metrics; Open() restores the running totals from the store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "speedrun/records.h"

namespace speedmon::speedrun {

// Upper bounds (seconds) of the histogram buckets; +Inf is implied.
const std::vector<double>& DurationBuckets();  // experiment duration: 1 s .. 1 h
const std::vector<double>& LatencyBuckets();   // compile and checkpoint: 10 ms .. 5 s

struct HistogramTotals {
  explicit HistogramTotals(const std::vector<double>* bounds)
      : bounds(bounds), counts(bounds->size() + 1, 0) {}
  void Observe(double value);  // counts[i] += 1 for the first bound >= value (le)
  void Add(const HistogramTotals& other);
  uint64_t Count() const;

  const std::vector<double>* bounds;
  std::vector<uint64_t> counts;  // per bucket, not cumulative; the last is +Inf
  double sum = 0;
};

// One row of the store's totals table.
struct TotalRow {
  std::string key;
  int64_t n = 0;
  double x = 0;
};

struct Totals {
  Totals();

  // Counts a newly accepted record. `strategy_label` is the already folded label.
  void AddExperiment(const Experiment& e, const std::string& strategy_label);
  void AddPattern(const Pattern& p);  // the pattern and its initial reuse_count
  void Add(const Totals& other);
  bool Empty() const;
  uint64_t ExperimentCount() const;

  // As rows ("experiments|<status>|<strategy>", "patterns|<type>", "reuses",
  // "hist|<name>|<bucket index>", "hist|<name>|sum"); zero rows are left out.
  std::vector<TotalRow> ToRows() const;
  // Adds a row read back from the store; unknown keys (from another version) are ignored.
  void AddRow(const TotalRow& row);

  std::map<std::pair<std::string, std::string>, uint64_t> experiments;  // (status, strategy)
  std::map<std::string, uint64_t> patterns;                             // by pattern_type
  uint64_t reuses = 0;
  HistogramTotals duration;    // seconds
  HistogramTotals compile;     // seconds, experiments with a measured compile time (> 0)
  HistogramTotals checkpoint;  // seconds, likewise
};

}  // namespace speedmon::speedrun
