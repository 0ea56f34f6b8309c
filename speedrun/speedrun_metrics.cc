// The speedrun metric families; see speedrun_metrics.h. Under Service's state mutex.
#include "speedrun/speedrun_metrics.h"

namespace speedmon::speedrun {
namespace {

using metrics::Family;
using prometheus::Gauge;

prometheus::Histogram& MakeHistogram(metrics::FamilySet& families, const char* name,
                                     const char* help, const std::vector<double>& buckets) {
  return families.AddHistogram(name, help).Add({}, buckets);
}

void AddHistogram(prometheus::Histogram& h, const HistogramTotals& delta) {
  if (delta.Count() == 0) return;
  std::vector<double> increments(delta.counts.begin(), delta.counts.end());
  h.ObserveMultiple(increments, delta.sum);
}

// The SLA window's counts and sums (SlaCounts), in the order Update sets them.
struct WindowGauge {
  const char* name;
  const char* help;
};
constexpr std::array<WindowGauge, 10> kWindowGauges = {{
    {"pokemon_speedrun_sla_window_experiments", "Experiments in the SLA window"},
    {"pokemon_speedrun_sla_window_experiments_successful",
     "Experiments in the SLA window with status success"},
    {"pokemon_speedrun_sla_window_compilations_measured",
     "Experiments in the SLA window with a measured (> 0) script compilation time"},
    {"pokemon_speedrun_sla_window_compilations_under_target",
     "Measured script compilations in the SLA window under the SLA target"},
    {"pokemon_speedrun_sla_window_script_compilation_seconds",
     "Sum of the measured script compilation times in the SLA window"},
    {"pokemon_speedrun_sla_window_checkpoint_loads_measured",
     "Experiments in the SLA window with a measured (> 0) checkpoint loading time"},
    {"pokemon_speedrun_sla_window_checkpoint_loads_under_target",
     "Measured checkpoint loads in the SLA window under the SLA target"},
    {"pokemon_speedrun_sla_window_checkpoint_loading_seconds",
     "Sum of the measured checkpoint loading times in the SLA window"},
    {"pokemon_speedrun_sla_window_patterns", "Patterns in the patterns window"},
    {"pokemon_speedrun_sla_window_pattern_quality",
     "Sum of the quality scores of the patterns in the patterns window"},
}};

std::optional<double> Seconds(const std::optional<double>& ms) {
  if (!ms) return std::nullopt;
  return *ms / 1000;
}

}  // namespace

SpeedrunMetrics::SpeedrunMetrics(metrics::FamilySet& families)
    : experiments_(families.AddCounter("pokemon_speedrun_experiments_total",
                                       "Experiments recorded, by status and AI strategy "
                                       "(strategies beyond max_strategy_labels are counted as "
                                       "\"other\")")),
      patterns_(families.AddCounter("pokemon_speedrun_pattern_discoveries_total",
                                    "Pattern discoveries recorded, by pattern type")),
      reuses_(families
                  .AddCounter("pokemon_speedrun_pattern_reuses_total",
                              "Pattern reuses: the reuse_count of recorded patterns plus one per "
                              "POST /api/v1/patterns/{id}/reuse")
                  .Add({})),
      duration_(MakeHistogram(families, "pokemon_speedrun_experiment_duration_seconds",
                              "Experiment duration", DurationBuckets())),
      compile_(MakeHistogram(families, "pokemon_speedrun_script_compilation_seconds",
                             "Script compilation time of experiments that reported one",
                             LatencyBuckets())),
      checkpoint_(MakeHistogram(families, "pokemon_speedrun_checkpoint_loading_seconds",
                                "Checkpoint loading time of experiments that reported one",
                                LatencyBuckets())),
      success_rate_family_(families.AddGauge("pokemon_speedrun_experiment_success_rate",
                                             "Percent of experiments in the SLA window with status "
                                             "success")),
      compile_average_family_(
          families.AddGauge("pokemon_speedrun_script_compilation_average_seconds",
                            "Average script compilation time over the SLA window")),
      checkpoint_average_family_(
          families.AddGauge("pokemon_speedrun_checkpoint_loading_average_seconds",
                            "Average checkpoint loading time over the SLA window")),
      quality_average_family_(families.AddGauge("pokemon_speedrun_pattern_quality_average",
                                                "Average quality score over the patterns window")),
      requirement_family_(families.AddGauge("pokemon_speedrun_sla_requirement_compliant",
                                            "1 when the SLA requirement is met, 0 when not; absent "
                                            "without data")),
      compliance_(families
                      .AddGauge("pokemon_speedrun_sla_compliance",
                                "1 when every SLA requirement with data is met, else 0")
                      .Add({})) {
  for (int i = 0; i < kPatternTypeCount; ++i) {
    patterns_.Add({{"pattern_type", PatternTypeName(static_cast<PatternType>(i))}});
  }
  compliance_.Set(1);
  for (size_t i = 0; i < kWindowGauges.size(); ++i) {
    window_counts_[i] = &families.AddGauge(kWindowGauges[i].name, kWindowGauges[i].help).Add({});
  }
  AddStatuses(kOtherStrategy);
}

void SpeedrunMetrics::AddStatuses(const std::string& strategy) {
  for (int s = 0; s < kExperimentStatusCount; ++s) {
    experiments_.Add(
        {{"status", StatusName(static_cast<ExperimentStatus>(s))}, {"strategy", strategy}});
  }
}

void SpeedrunMetrics::Add(const Totals& delta) {
  for (const auto& [key, n] : delta.experiments) {
    AddStatuses(key.second);
    experiments_.Add({{"status", key.first}, {"strategy", key.second}})
        .Increment(static_cast<double>(n));
  }
  for (const auto& [type, n] : delta.patterns) {
    patterns_.Add({{"pattern_type", type}}).Increment(static_cast<double>(n));
  }
  reuses_.Increment(static_cast<double>(delta.reuses));
  AddHistogram(duration_, delta.duration);
  AddHistogram(compile_, delta.compile);
  AddHistogram(checkpoint_, delta.checkpoint);
}

void SpeedrunMetrics::SetOptional(Family<Gauge>& family, const prometheus::Labels& labels,
                                  Gauge** slot, const std::optional<double>& value) {
  if (!value) {
    if (*slot) family.Remove(*slot);
    *slot = nullptr;
    return;
  }
  if (!*slot) *slot = &family.Add(labels);
  (*slot)->Set(*value);
}

void SpeedrunMetrics::Update(const SlaReport& report) {
  SetOptional(success_rate_family_, {}, &success_rate_,
              report[Requirement::kExperimentSuccessRate].value);
  SetOptional(compile_average_family_, {}, &compile_average_, Seconds(report.average_compile_ms));
  SetOptional(checkpoint_average_family_, {}, &checkpoint_average_,
              Seconds(report.average_checkpoint_ms));
  SetOptional(quality_average_family_, {}, &quality_average_,
              report[Requirement::kPatternQuality].value);
  for (int i = 0; i < kRequirementCount; ++i) {
    std::optional<bool> ok = report.requirements[i].compliant();
    SetOptional(requirement_family_,
                {{"requirement", RequirementName(static_cast<Requirement>(i))}}, &requirement_[i],
                ok ? std::optional<double>(*ok ? 1 : 0) : std::nullopt);
  }
  compliance_.Set(report.overall ? 1 : 0);
  const SlaCounts& c = report.counts;
  const std::array<double, 10> values = {static_cast<double>(c.experiments),
                                         static_cast<double>(c.successes),
                                         static_cast<double>(c.compile_measured),
                                         static_cast<double>(c.compile_under_target),
                                         c.compile_ms_sum / 1000,
                                         static_cast<double>(c.checkpoint_measured),
                                         static_cast<double>(c.checkpoint_under_target),
                                         c.checkpoint_ms_sum / 1000,
                                         static_cast<double>(c.patterns),
                                         c.quality_sum};
  for (size_t i = 0; i < values.size(); ++i) window_counts_[i]->Set(values[i]);
}

}  // namespace speedmon::speedrun
