// The alert-rule constraints of config.h (CheckAlertRule) and the dotted metric table
// they use. Pure functions; any thread (the admin API checks rules added at run time).
#include <cmath>
#include <string>

#include "config/config.h"

namespace speedmon::config {
namespace {

constexpr size_t kMaxIdChars = 128;
constexpr size_t kMaxNameChars = 256;
constexpr size_t kMaxTextChars = 4096;
constexpr size_t kMaxLabels = 32;

base::Status Invalid(std::string field, std::string message) {
  return base::InvalidArgumentError(std::move(message), std::move(field));
}

bool IsValidId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Labels the rule sets itself; a user label of the same name would make the alert lie.
bool IsReservedLabel(const std::string& name) {
  return name == "alertname" || name == "severity" || name == "rule_id";
}

base::Status CheckLabels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) return Invalid("labels", "at most 32 labels");
  for (const auto& [k, v] : labels) {
    if (!IsValidLabelName(k)) return Invalid("labels", "invalid label name \"" + k + "\"");
    if (IsReservedLabel(k)) {
      return Invalid("labels", "label \"" + k + "\" is set by the rule itself");
    }
    if (v.size() > kMaxTextChars) return Invalid("labels", "label \"" + k + "\" is too long");
  }
  return base::OkStatus();
}

base::Status CheckAnnotations(const std::map<std::string, std::string>& annotations) {
  if (annotations.size() > kMaxLabels) return Invalid("annotations", "at most 32 annotations");
  for (const auto& [k, v] : annotations) {
    if (!IsValidLabelName(k)) {
      return Invalid("annotations", "invalid annotation name \"" + k + "\"");
    }
    if (v.size() > kMaxTextChars) {
      return Invalid("annotations", "annotation \"" + k + "\" is too long");
    }
  }
  return base::OkStatus();
}

}  // namespace

const std::vector<DottedMetric>& DottedMetrics() {
  // The Python collector's SystemMetrics fields (bytes stay bytes), its speedrun snapshot
  // fields and the exporter's process gauge, each where speedmon exports the same number.
  // Counters are summed over their labels (the name means one number), so a rule on
  // speedrun.total_experiments gives one alert, not one per status and strategy.
  static const std::vector<DottedMetric> kTable = {
      {"system.cpu_percent", "pokemon_speedrun_system_cpu_percent", 1, ""},
      {"system.cpu_count", "pokemon_speedrun_system_cpus", 1, ""},
      {"system.memory_percent", "pokemon_speedrun_system_memory_percent", 1, ""},
      {"system.memory_total", "pokemon_speedrun_system_memory_total_bytes", 1, ""},
      {"system.memory_available", "pokemon_speedrun_system_memory_available_bytes", 1, ""},
      {"system.memory_used", "pokemon_speedrun_system_memory_bytes", 1, ""},
      {"system.swap_percent", "pokemon_speedrun_system_swap_percent", 1, ""},
      {"system.disk_percent", "pokemon_speedrun_system_disk_percent", 1, ""},
      {"system.disk_used", "pokemon_speedrun_system_disk_used_bytes", 1, ""},
      {"system.process_count", "pokemon_speedrun_system_processes", 1, ""},
      {"system.uptime_seconds", "pokemon_speedrun_system_uptime_seconds", 1, ""},
      {"speedrun.experiment_success_rate", "pokemon_speedrun_experiment_success_rate", 1, ""},
      {"speedrun.average_script_compilation_ms",
       "pokemon_speedrun_script_compilation_average_seconds", 1000, ""},
      {"speedrun.average_checkpoint_loading_ms",
       "pokemon_speedrun_checkpoint_loading_average_seconds", 1000, ""},
      {"speedrun.average_pattern_quality", "pokemon_speedrun_pattern_quality_average", 1, ""},
      {"speedrun.total_experiments", "pokemon_speedrun_experiments_total", 1, "sum"},
      {"speedrun.total_patterns_discovered", "pokemon_speedrun_pattern_discoveries_total", 1,
       "sum"},
      {"speedrun.total_pattern_reuses", "pokemon_speedrun_pattern_reuses_total", 1, ""},
      {"speedrun.sla_compliance", "pokemon_speedrun_sla_compliance", 1, ""},
      {"prometheus.healthy_processes", "pokemon_speedrun_healthy_processes", 1, ""},
      {"prometheus.total_processes", "pokemon_speedrun_total_processes", 1, ""},
      {"prometheus.process_failures", "pokemon_speedrun_process_failures_total", 1, "sum"},
  };
  return kTable;
}

const DottedMetric* FindDottedMetric(std::string_view dotted) {
  for (const auto& s : DottedMetrics()) {
    if (dotted == s.dotted) return &s;
  }
  return nullptr;
}

base::Status CheckAlertRule(const AlertRuleConfig& rule) {
  if (!IsValidId(rule.id)) {
    return Invalid("id", "id must be 1 to 128 characters of A-Z a-z 0-9 _ . -");
  }
  if (rule.name.empty() || rule.name.size() > kMaxNameChars) {
    return Invalid("name", "name must be 1 to 256 characters");
  }
  if (rule.description.size() > kMaxTextChars) {
    return Invalid("description", "description is longer than 4096 characters");
  }
  if (rule.metric.find('.') != std::string::npos && FindDottedMetric(rule.metric) == nullptr) {
    return Invalid("metric", "unknown dotted metric name \"" + rule.metric +
                                 "\"; use an exported metric name or a dotted name listed in "
                                 "docs/API.md (e.g. system.cpu_percent)");
  }
  if (!IsValidAggregation(rule.aggregation)) {
    return Invalid("aggregation", "aggregation must be one of max, min, sum, avg, count");
  }
  if (!std::isfinite(rule.threshold)) {
    return Invalid("threshold", "threshold must be a finite number");
  }
  if (base::Status problem = CheckLabels(rule.labels); !problem.ok()) return problem;
  return CheckAnnotations(rule.annotations);
}

}  // namespace speedmon::config
