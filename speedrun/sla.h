// SLA compliance over sliding windows: the last `window_experiments` experiments and the
// last `window_patterns` patterns, in the order they were accepted (committed).
//
// Not thread-safe: Service keeps one SlaWindow under its state mutex; the writer thread
// adds records after each commit, the main thread reads reports and sets availability.
//
// The five requirements (a requirement with no data is null and does
// not fail the overall):
//   experiment_success_rate  successes * 100 / experiments; only "success" counts.
//                            Compliant when >= experiment_success_rate_min.
//   script_compilation       % of window experiments with a measured compile time whose
//                            time is strictly under script_compilation_target_ms;
//                            experiments without one (absent, or <= 0: see MeasuredMs in
//                            records.h) are left out (none -> null).
//                            Compliant when >= target_compliance_min.
//   checkpoint_loading       the same with checkpoint_loading_target_ms.
//   pattern_quality          average quality_score over the patterns window (patterns
//                            count even when there are no experiments).
//                            Compliant when >= pattern_quality_min.
//   system_availability      the healthy process ratio in percent, as last set (NaN or
//                            never set -> null). Compliant when >= system_availability_min.
// Overall is true when every non-null requirement is compliant (so true with no data).
//
// The counts and sums behind the percentages and averages are in SlaReport::counts, and
// exported as gauges, so that Prometheus can add them over several speedmon instances and
// divide: sum(successful) * 100 / sum(experiments) is the fleet's success rate exactly.
//
// Exactness: counts are integers and a percentage is one correctly rounded division of
// integers (95 of 100 is exactly 95.0); quality scores are summed as integer billionths,
// so an average of 0.7, 0.7, 0.7 is exactly the double 0.7 and meets a 0.70 minimum.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "config/config.h"

namespace speedmon::speedrun {

enum class Requirement {
  kExperimentSuccessRate,
  kScriptCompilation,
  kCheckpointLoading,
  kPatternQuality,
  kSystemAvailability,
};
inline constexpr int kRequirementCount = 5;

// "experiment_success_rate", "script_compilation", ... (the JSON keys and the
// `requirement` label values).
const char* RequirementName(Requirement r);

struct RequirementStatus {
  std::optional<double> value;  // nullopt = no data
  double target = 0;            // the minimum the value is compared with
  std::optional<bool> compliant() const {
    if (!value) return std::nullopt;
    return *value >= target;
  }
};

// What the window holds, behind the requirements' values.
struct SlaCounts {
  uint64_t experiments = 0;           // experiments in the window
  uint64_t successes = 0;             // of them, status "success"
  uint64_t compile_measured = 0;      // of them, with a measured compile time
  uint64_t compile_under_target = 0;  // of those, under script_compilation_target_ms
  double compile_ms_sum = 0;          // the sum of those measured times
  uint64_t checkpoint_measured = 0;   // likewise for checkpoint loading
  uint64_t checkpoint_under_target = 0;
  double checkpoint_ms_sum = 0;
  uint64_t patterns = 0;   // patterns in the patterns window
  double quality_sum = 0;  // the sum of their quality scores
};

struct SlaReport {
  std::array<RequirementStatus, kRequirementCount> requirements;
  SlaCounts counts;
  bool overall = true;
  uint64_t window_experiments = 0;
  uint64_t window_patterns = 0;
  // Averages over the window of the experiments that reported the time (for the gauges
  // and the alert rules); nullopt when none did.
  std::optional<double> average_compile_ms;
  std::optional<double> average_checkpoint_ms;

  const RequirementStatus& operator[](Requirement r) const {
    return requirements[static_cast<int>(r)];
  }
};

class SlaWindow {
 public:
  // A capacity of 0 is taken as 1.
  SlaWindow(uint32_t experiments_capacity, uint32_t patterns_capacity, config::SlaConfig sla);

  void AddExperiment(bool success, std::optional<double> compile_ms,
                     std::optional<double> checkpoint_ms);
  void AddPattern(double quality_score);      // REQUIRES: 0 <= quality_score <= 1
  void SetAvailability(double percent);       // NaN = no data
  void SetSla(const config::SlaConfig& sla);  // recounts the window: O(window)

  SlaReport Report() const;
  const config::SlaConfig& sla() const { return sla_; }

 private:
  struct Entry {
    bool success;
    bool compile_reported, compile_under;
    bool checkpoint_reported, checkpoint_under;
    double compile_ms, checkpoint_ms;  // 0 when not reported
  };
  Entry MakeEntry(bool success, std::optional<double> compile_ms,
                  std::optional<double> checkpoint_ms) const;
  void Count(const Entry& e, int sign);
  void Resum();

  size_t experiments_capacity_;
  size_t patterns_capacity_;
  config::SlaConfig sla_;
  std::deque<Entry> experiments_;
  std::deque<int64_t> quality_nanos_;  // quality_score * 1e9, rounded
  uint64_t successes_ = 0;
  uint64_t compile_reported_ = 0, compile_under_ = 0;
  uint64_t checkpoint_reported_ = 0, checkpoint_under_ = 0;
  int64_t quality_nanos_sum_ = 0;
  // Floating sums drift under add-then-subtract; they are recomputed from the window
  // each time it has turned over once (amortised O(1) per experiment).
  double compile_sum_ = 0, checkpoint_sum_ = 0;
  size_t evicted_since_resum_ = 0;
  double availability_ = std::numeric_limits<double>::quiet_NaN();
};

// The GET /api/v1/sla body plus "latency_targets_ms" (the per-experiment
// compile and checkpoint targets the two percentages are counted against).
nlohmann::json SlaJson(const SlaReport& report, const config::SlaConfig& sla);

}  // namespace speedmon::speedrun
