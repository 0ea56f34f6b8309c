// Where alert rules read their numbers: a small interface so the evaluator never knows
// about the proxy, plus the implementation the daemon uses, which reads the same
// prometheus-cpp metric families that /metrics exports.
//
// Thread: main thread only (the evaluator calls it from its timer). Collect() on the
// collectables may take their own locks; nothing here holds a lock while calling out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace speedmon::alerting {

using Labels = std::map<std::string, std::string>;

// One series: its labels (without the metric name) and its current value.
struct Sample {
  Labels labels;
  double value = 0;
};

class ValueSource {
 public:
  virtual ~ValueSource() = default;

  // Called once at the start of every evaluation round, before any Query: a source that
  // snapshots (collects) does it here so a round sees one consistent picture.
  virtual void BeginRound() {}

  // Every series of the exported metric `metric` whose labels include all `matchers`
  // (equality). Empty when the metric is absent or nothing matches; an error (which
  // counts as an evaluation failure) when the name cannot be answered as asked.
  virtual base::StatusOr<std::vector<Sample>> Query(
      const std::string& metric, const std::map<std::string, std::string>& matchers) = 0;
};

// Answers from the MetricFamily output of registries and custom collectables.
//
// Gauge, counter and untyped families answer under their family name. Histograms
// answer `name_count`, `name_sum` and `name_bucket` (with an `le` label, matched
// numerically, so le="0.5" finds the 0.5 bucket and le="+Inf" the last); summaries
// answer `name_count`, `name_sum` and `name` with a `quantile` label. A bare histogram
// name is an error (kInvalidArgument), not a silent absence, because it is a rule mistake.
//
// Collectables are held weakly: one that has gone away is skipped.
class CollectablesValueSource : public ValueSource {
 public:
  CollectablesValueSource() = default;
  explicit CollectablesValueSource(std::vector<std::weak_ptr<prometheus::Collectable>> sources);

  void Add(std::weak_ptr<prometheus::Collectable> source);

  // Collects every live collectable once.
  void BeginRound() override;
  // Answers from the last round's snapshot (collects first if there has been none).
  base::StatusOr<std::vector<Sample>> Query(
      const std::string& metric, const std::map<std::string, std::string>& matchers) override;

 private:
  std::vector<std::weak_ptr<prometheus::Collectable>> sources_;
  std::vector<prometheus::MetricFamily> snapshot_;
  bool collected_ = false;
};

// A value as Prometheus prints it (Go's 'g', -1): the shortest decimal that reads back
// to the same double: "85.01", "0.5", "1e+30", "+Inf", "NaN".
std::string FormatValue(double v);

}  // namespace speedmon::alerting
