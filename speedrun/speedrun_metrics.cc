// The speedrun metric families; see speedrun_metrics.h. Under Service's state mutex.
#include "speedrun/speedrun_metrics.h"

namespace speedmon::speedrun {
namespace {

using prometheus::Family;
using prometheus::Gauge;

Family<Gauge>& GaugeFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Histogram& MakeHistogram(prometheus::Registry& r, const char* name, const char* help,
                                     const std::vector<double>& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

void AddHistogram(prometheus::Histogram& h, const HistogramTotals& delta) {
  if (delta.Count() == 0) return;
  std::vector<double> increments(delta.counts.begin(), delta.counts.end());
  h.ObserveMultiple(increments, delta.sum);
}

std::optional<double> Seconds(const std::optional<double>& ms) {
  if (!ms) return std::nullopt;
  return *ms / 1000;
}

}  // namespace

SpeedrunMetrics::SpeedrunMetrics(prometheus::Registry& registry)
    : experiments_(prometheus::BuildCounter()
                       .Name("pokemon_speedrun_experiments_total")
                       .Help("Experiments recorded, by status and AI strategy (strategies beyond "
                             "max_strategy_labels are counted as \"other\")")
                       .Register(registry)),
      patterns_(prometheus::BuildCounter()
                    .Name("pokemon_speedrun_pattern_discoveries_total")
                    .Help("Pattern discoveries recorded, by pattern type")
                    .Register(registry)),
      reuses_(prometheus::BuildCounter()
                  .Name("pokemon_speedrun_pattern_reuses_total")
                  .Help("Pattern reuses: the reuse_count of recorded patterns plus one per "
                        "POST /api/v1/patterns/{id}/reuse")
                  .Register(registry)
                  .Add({})),
      duration_(MakeHistogram(registry, "pokemon_speedrun_experiment_duration_seconds",
                              "Experiment duration", DurationBuckets())),
      compile_(MakeHistogram(registry, "pokemon_speedrun_script_compilation_seconds",
                             "Script compilation time of experiments that reported one",
                             LatencyBuckets())),
      checkpoint_(MakeHistogram(registry, "pokemon_speedrun_checkpoint_loading_seconds",
                                "Checkpoint loading time of experiments that reported one",
                                LatencyBuckets())),
      success_rate_family_(GaugeFamily(registry, "pokemon_speedrun_experiment_success_rate",
                                       "Percent of experiments in the SLA window with status "
                                       "success")),
      compile_average_family_(GaugeFamily(registry,
                                          "pokemon_speedrun_script_compilation_average_seconds",
                                          "Average script compilation time over the SLA window")),
      checkpoint_average_family_(
          GaugeFamily(registry, "pokemon_speedrun_checkpoint_loading_average_seconds",
                      "Average checkpoint loading time over the SLA window")),
      quality_average_family_(GaugeFamily(registry, "pokemon_speedrun_pattern_quality_average",
                                          "Average quality score over the patterns window")),
      requirement_family_(GaugeFamily(registry, "pokemon_speedrun_sla_requirement_compliant",
                                      "1 when the SLA requirement is met, 0 when not; absent "
                                      "without data")),
      compliance_(GaugeFamily(registry, "pokemon_speedrun_sla_compliance",
                              "1 when every SLA requirement with data is met, else 0")
                      .Add({})) {
  for (int i = 0; i < kPatternTypeCount; ++i) {
    patterns_.Add({{"pattern_type", PatternTypeName(static_cast<PatternType>(i))}});
  }
  compliance_.Set(1);
}

void SpeedrunMetrics::Add(const Totals& delta) {
  for (const auto& [key, n] : delta.experiments) {
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
}

}  // namespace speedmon::speedrun
