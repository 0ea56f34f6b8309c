// The speedrun metric families on a prometheus-cpp registry, fed from committed totals
// deltas and SLA reports.
//
// Threads: Service calls every method under its state mutex - the writer thread after a
// batch commits, the main thread from Open() and SetHealthyProcessRatio(). A scrape
// (the FamilySet's text on the main thread) or Registry::Collect (the alert engine) may
// run at any time; the families' own locks make that safe, and Service takes its state
// mutex around both so that they see each committed batch whole.
//
// Families (README.md, "Metrics"):
//   pokemon_speedrun_experiments_total{status,strategy}        counter
//   pokemon_speedrun_pattern_discoveries_total{pattern_type}    counter (all six types from 0)
//   pokemon_speedrun_pattern_reuses_total                       counter
//   pokemon_speedrun_experiment_duration_seconds                histogram
//   pokemon_speedrun_script_compilation_seconds                 histogram
//   pokemon_speedrun_checkpoint_loading_seconds                 histogram
//   pokemon_speedrun_experiment_success_rate                    gauge, percent over the window
//   pokemon_speedrun_script_compilation_average_seconds         gauge, over the window
//   pokemon_speedrun_checkpoint_loading_average_seconds         gauge, over the window
//   pokemon_speedrun_pattern_quality_average                    gauge, over the window
//   pokemon_speedrun_sla_requirement_compliant{requirement}     gauge 1/0
//   pokemon_speedrun_sla_compliance                             gauge 1/0, always exported
// and, always exported (0 with an empty window), the counts and sums the window gauges
// are computed from, for sum(a) / sum(b) over several instances (see sla.h, SlaCounts):
//   pokemon_speedrun_sla_window_experiments                     gauge
//   pokemon_speedrun_sla_window_experiments_successful          gauge
//   pokemon_speedrun_sla_window_compilations_measured           gauge
//   pokemon_speedrun_sla_window_compilations_under_target       gauge
//   pokemon_speedrun_sla_window_script_compilation_seconds      gauge, sum of the measured
//   pokemon_speedrun_sla_window_checkpoint_loads_measured       gauge
//   pokemon_speedrun_sla_window_checkpoint_loads_under_target   gauge
//   pokemon_speedrun_sla_window_checkpoint_loading_seconds      gauge, sum of the measured
//   pokemon_speedrun_sla_window_patterns                        gauge
//   pokemon_speedrun_sla_window_pattern_quality                 gauge, sum of the scores
// experiments_total has all five statuses at 0 for strategy "other" from the start and
// for every strategy from its first experiment.
// A gauge whose value has no data (empty window, nothing reported, availability never
// set) is not exported at all rather than exported as 0 or NaN, so an alert rule sees
// "absent" instead of a false value; it appears with the first data.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "metrics/family.h"
#include "speedrun/sla.h"
#include "speedrun/totals.h"

namespace speedmon::speedrun {

// The strategy label of experiments beyond [speedrun].max_strategy_labels.
inline constexpr char kOtherStrategy[] = "other";

class SpeedrunMetrics {
 public:
  // Registers the families. Throws (prometheus-cpp) only when a family of the same name
  // but another type already exists: a wiring mistake found at start-up.
  explicit SpeedrunMetrics(metrics::FamilySet& families);

  // Adds committed totals (a batch delta, or everything restored at Open).
  void Add(const Totals& delta);
  // Sets the window gauges and compliance from a fresh report.
  void Update(const SlaReport& report);

 private:
  // All five statuses of `strategy` at 0 (a no-op for those that exist).
  void AddStatuses(const std::string& strategy);
  // Sets the gauge of `labels` in `family`, creating it on first data and removing it
  // when the value goes back to "no data".
  static void SetOptional(metrics::Family<prometheus::Gauge>& family,
                          const prometheus::Labels& labels, prometheus::Gauge** slot,
                          const std::optional<double>& value);

  metrics::Family<prometheus::Counter>& experiments_;
  metrics::Family<prometheus::Counter>& patterns_;
  prometheus::Counter& reuses_;
  prometheus::Histogram& duration_;
  prometheus::Histogram& compile_;
  prometheus::Histogram& checkpoint_;
  metrics::Family<prometheus::Gauge>& success_rate_family_;
  metrics::Family<prometheus::Gauge>& compile_average_family_;
  metrics::Family<prometheus::Gauge>& checkpoint_average_family_;
  metrics::Family<prometheus::Gauge>& quality_average_family_;
  metrics::Family<prometheus::Gauge>& requirement_family_;
  prometheus::Gauge& compliance_;
  std::array<prometheus::Gauge*, 10> window_counts_{};  // in SlaCounts' order
  prometheus::Gauge* success_rate_ = nullptr;
  prometheus::Gauge* compile_average_ = nullptr;
  prometheus::Gauge* checkpoint_average_ = nullptr;
  prometheus::Gauge* quality_average_ = nullptr;
  std::array<prometheus::Gauge*, kRequirementCount> requirement_{};
};

}  // namespace speedmon::speedrun
