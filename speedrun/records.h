// The records the agent's runner posts (its ExperimentResult and PatternDiscovery),
// their validation from JSON, and their JSON form for GET answers.
//
// Pure functions; the admin (main) thread validates, the store's writer thread reads the
// validated structs. A validated record is immutable from then on.
//
// Validation rules (README.md, "Post an experiment"), checked field by field in the order below;
// the first bad field is reported as InvalidArgumentError(message, "<prefix>field"):
//   - Fields this version does not know are ignored, so a runner that sends more (a newer
//     runner, a dataclass' asdict()) is not refused. A misspelt optional field is therefore
//     silently absent; misspelt required fields are still caught.
//   - JSON null counts as absent (Python's None for Optional fields); for a required
//     field it is "is required".
//   - Enums accept any case and are stored lower case. Strings count Unicode characters.
//   - "Integer" accepts JSON integers and integral floats (3.0), 0..2^53.
//   - Timestamps: unix seconds (number) or RFC 3339 ("2024-05-01T12:00:00.5Z",
//     "...+02:00"; 'T', 't' or ' ' between date and time); 1970..9999; default now.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "speedrun/body.h"

namespace speedmon::speedrun {

enum class ExperimentStatus { kSuccess, kFailure, kTimeout, kError, kCancelled };
inline constexpr int kExperimentStatusCount = 5;

enum class PatternType {
  kMovement,
  kBattle,
  kMenuNavigation,
  kItemUsage,
  kDialogue,
  kOptimization
};
inline constexpr int kPatternTypeCount = 6;

const char* StatusName(ExperimentStatus s);                       // "success", ...
const char* PatternTypeName(PatternType t);                       // "menu_navigation", ...
std::optional<ExperimentStatus> ParseStatus(std::string_view s);  // any case
std::optional<PatternType> ParsePatternType(std::string_view s);  // any case

inline constexpr size_t kMaxIdChars = 128;
inline constexpr size_t kMaxStrategyChars = 64;
inline constexpr size_t kMaxErrorMessageChars = 4096;
inline constexpr size_t kMaxWorkerChars = 128;

struct Experiment {
  std::string id;                                        // experiment_id: 1..128 chars, required
  ExperimentStatus status = ExperimentStatus::kSuccess;  // required
  double duration_seconds = 0;                           // required, >= 0
  std::optional<int64_t> script_length;                  // integer >= 0
  std::optional<double> script_compilation_ms;           // >= 0; see MeasuredMs
  std::optional<double> checkpoint_loading_ms;           // >= 0; see MeasuredMs
  std::string ai_strategy = "unknown";                   // 1..64 chars
  std::optional<int64_t> pattern_discoveries;            // integer >= 0
  double timestamp = 0;                                  // unix seconds; default: when validated
  std::optional<std::string> error_message;              // 0..4096 chars
  std::optional<double> performance_score;               // any finite number
};

struct Pattern {
  std::string id;                                // pattern_id: 1..128 chars, required
  PatternType type = PatternType::kMovement;     // pattern_type, required
  double quality_score = 0;                      // required, 0..1
  std::optional<double> discovery_time_seconds;  // >= 0
  std::optional<std::string> experiment_id;      // 1..128 chars
  std::optional<std::string> ai_worker;          // 1..128 chars
  int64_t reuse_count = 0;                       // integer >= 0
  double timestamp = 0;                          // as for experiments
};

// A compile or checkpoint time as the aggregates see it: absent, 0 or negative means
// "not measured" (a runner's dataclass defaults these to 0.0), so such a time is left out
// of the histograms, the window averages and the SLA percentages. The record itself keeps
// what was posted (GET /api/v1/experiments shows 0.0).
inline std::optional<double> MeasuredMs(const std::optional<double>& ms) {
  if (!ms || !(*ms > 0)) return std::nullopt;
  return ms;
}

// Validate one item. `path` is the item's path ("" for a single body, "items[3]" in a
// batch); `now` is the default timestamp. Returns the first error, or OK and fills *out.
base::Status ValidateExperiment(const nlohmann::json& item, std::string_view path, double now,
                                Experiment* out);
base::Status ValidatePattern(const nlohmann::json& item, std::string_view path, double now,
                             Pattern* out);

// Parses an RFC 3339 date-time into unix seconds; nullopt when malformed or out of range.
std::optional<double> ParseRfc3339(std::string_view s);

// Unicode characters in valid UTF-8 (bytes that do not continue a sequence).
size_t Utf8Length(std::string_view s);

// The JSON form (GET /api/v1/experiments): every field, absent optionals as null,
// timestamp as unix seconds.
nlohmann::json ToJson(const Experiment& e);
nlohmann::json ToJson(const Pattern& p);

}  // namespace speedmon::speedrun
