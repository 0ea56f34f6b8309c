// SLA windows and compliance; see sla.h. Used under Service's state mutex.
#include "speedrun/sla.h"

#include <cmath>

#include "speedrun/records.h"

namespace speedmon::speedrun {
namespace {

constexpr std::array<const char*, kRequirementCount> kRequirementNames = {
    "experiment_success_rate", "script_compilation", "checkpoint_loading", "pattern_quality",
    "system_availability"};

// part * 100 / whole as one correctly rounded division; nullopt when whole is 0.
std::optional<double> Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return std::nullopt;
  return static_cast<double>(part * 100) / static_cast<double>(whole);
}

std::optional<double> Average(double sum, uint64_t n) {
  if (n == 0) return std::nullopt;
  return sum / static_cast<double>(n);
}

nlohmann::json OrNull(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json OrNull(const std::optional<bool>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

const char* RequirementName(Requirement r) { return kRequirementNames[static_cast<int>(r)]; }

SlaWindow::SlaWindow(uint32_t experiments_capacity, uint32_t patterns_capacity,
                     config::SlaConfig sla)
    : experiments_capacity_(experiments_capacity ? experiments_capacity : 1),
      patterns_capacity_(patterns_capacity ? patterns_capacity : 1),
      sla_(sla) {}

SlaWindow::Entry SlaWindow::MakeEntry(bool success, std::optional<double> compile_ms,
                                      std::optional<double> checkpoint_ms) const {
  Entry e{};
  e.success = success;
  compile_ms = MeasuredMs(compile_ms);
  checkpoint_ms = MeasuredMs(checkpoint_ms);
  if (compile_ms) {
    e.compile_reported = true;
    e.compile_under = *compile_ms < sla_.script_compilation_target_ms;
    e.compile_ms = *compile_ms;
  }
  if (checkpoint_ms) {
    e.checkpoint_reported = true;
    e.checkpoint_under = *checkpoint_ms < sla_.checkpoint_loading_target_ms;
    e.checkpoint_ms = *checkpoint_ms;
  }
  return e;
}

void SlaWindow::Count(const Entry& e, int sign) {
  successes_ += sign * e.success;
  compile_reported_ += sign * e.compile_reported;
  compile_under_ += sign * e.compile_under;
  checkpoint_reported_ += sign * e.checkpoint_reported;
  checkpoint_under_ += sign * e.checkpoint_under;
  compile_sum_ += sign * e.compile_ms;
  checkpoint_sum_ += sign * e.checkpoint_ms;
}

void SlaWindow::Resum() {
  compile_sum_ = 0;
  checkpoint_sum_ = 0;
  for (const Entry& e : experiments_) {
    compile_sum_ += e.compile_ms;
    checkpoint_sum_ += e.checkpoint_ms;
  }
  evicted_since_resum_ = 0;
}

void SlaWindow::AddExperiment(bool success, std::optional<double> compile_ms,
                              std::optional<double> checkpoint_ms) {
  if (experiments_.size() == experiments_capacity_) {
    Count(experiments_.front(), -1);
    experiments_.pop_front();
    ++evicted_since_resum_;
  }
  experiments_.push_back(MakeEntry(success, compile_ms, checkpoint_ms));
  Count(experiments_.back(), +1);
  if (evicted_since_resum_ >= experiments_capacity_) Resum();
}

void SlaWindow::AddPattern(double quality_score) {
  if (quality_nanos_.size() == patterns_capacity_) {
    quality_nanos_sum_ -= quality_nanos_.front();
    quality_nanos_.pop_front();
  }
  quality_nanos_.push_back(std::llround(quality_score * 1e9));
  quality_nanos_sum_ += quality_nanos_.back();
}

void SlaWindow::SetAvailability(double percent) { availability_ = percent; }

void SlaWindow::SetSla(const config::SlaConfig& sla) {
  sla_ = sla;
  successes_ = compile_reported_ = compile_under_ = checkpoint_reported_ = checkpoint_under_ = 0;
  for (Entry& e : experiments_) {
    e = MakeEntry(e.success, e.compile_reported ? std::optional(e.compile_ms) : std::nullopt,
                  e.checkpoint_reported ? std::optional(e.checkpoint_ms) : std::nullopt);
    Count(e, +1);
  }
  Resum();
}

SlaReport SlaWindow::Report() const {
  SlaReport r;
  auto set = [&](Requirement req, std::optional<double> value, double target) {
    r.requirements[static_cast<int>(req)] = RequirementStatus{value, target};
  };
  set(Requirement::kExperimentSuccessRate, Percent(successes_, experiments_.size()),
      sla_.experiment_success_rate_min);
  set(Requirement::kScriptCompilation, Percent(compile_under_, compile_reported_),
      sla_.target_compliance_min);
  set(Requirement::kCheckpointLoading, Percent(checkpoint_under_, checkpoint_reported_),
      sla_.target_compliance_min);
  std::optional<double> quality;
  if (!quality_nanos_.empty()) {
    // Both operands are exact integers below 2^53, so this is the correctly rounded mean.
    quality = static_cast<double>(quality_nanos_sum_) /
              (static_cast<double>(quality_nanos_.size()) * 1e9);
  }
  set(Requirement::kPatternQuality, quality, sla_.pattern_quality_min);
  set(Requirement::kSystemAvailability,
      std::isnan(availability_) ? std::nullopt : std::optional(availability_),
      sla_.system_availability_min);
  for (const RequirementStatus& s : r.requirements) {
    if (s.compliant() == false) r.overall = false;
  }
  r.window_experiments = experiments_.size();
  r.window_patterns = quality_nanos_.size();
  r.counts.experiments = experiments_.size();
  r.counts.successes = successes_;
  r.counts.compile_measured = compile_reported_;
  r.counts.compile_under_target = compile_under_;
  r.counts.compile_ms_sum = compile_sum_;
  r.counts.checkpoint_measured = checkpoint_reported_;
  r.counts.checkpoint_under_target = checkpoint_under_;
  r.counts.checkpoint_ms_sum = checkpoint_sum_;
  r.counts.patterns = quality_nanos_.size();
  r.counts.quality_sum = static_cast<double>(quality_nanos_sum_) / 1e9;
  r.average_compile_ms = Average(compile_sum_, compile_reported_);
  r.average_checkpoint_ms = Average(checkpoint_sum_, checkpoint_reported_);
  return r;
}

nlohmann::json SlaJson(const SlaReport& report, const config::SlaConfig& sla) {
  nlohmann::json individual = nlohmann::json::object();
  nlohmann::json values = nlohmann::json::object();
  nlohmann::json targets = nlohmann::json::object();
  for (int i = 0; i < kRequirementCount; ++i) {
    const char* name = kRequirementNames[i];
    individual[name] = OrNull(report.requirements[i].compliant());
    values[name] = OrNull(report.requirements[i].value);
    targets[name] = report.requirements[i].target;
  }
  return nlohmann::json{
      {"overall_sla_compliant", report.overall},
      {"individual_compliance", std::move(individual)},
      {"values", std::move(values)},
      {"targets", std::move(targets)},
      {"latency_targets_ms",
       {{"script_compilation", sla.script_compilation_target_ms},
        {"checkpoint_loading", sla.checkpoint_loading_target_ms}}},
      {"window",
       {{"experiments", report.window_experiments}, {"patterns", report.window_patterns}}}};
}

}  // namespace speedmon::speedrun
