// Validation and JSON form of experiments and patterns; see records.h. Any thread.
#include "speedrun/records.h"

#include <array>
#include <cctype>
#include <cmath>

namespace speedmon::speedrun {
namespace {

using nlohmann::json;

constexpr std::array<const char*, kExperimentStatusCount> kStatusNames = {
    "success", "failure", "timeout", "error", "cancelled"};
constexpr std::array<const char*, kPatternTypeCount> kPatternTypeNames = {
    "movement", "battle", "menu_navigation", "item_usage", "dialogue", "optimization"};

constexpr double kMaxInteger = 9007199254740992.0;  // 2^53: exact in a double
constexpr double kMaxTimestamp = 253402300799.0;    // 9999-12-31T23:59:59Z

template <typename Enum, size_t N>
std::optional<Enum> ParseEnum(std::string_view s, const std::array<const char*, N>& names) {
  for (size_t i = 0; i < N; ++i) {
    std::string_view name = names[i];
    if (name.size() != s.size()) continue;
    bool same = true;
    for (size_t k = 0; k < s.size() && same; ++k) {
      same = std::tolower(static_cast<unsigned char>(s[k])) == name[k];
    }
    if (same) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <size_t N>
std::string OneOf(const std::array<const char*, N>& names) {
  std::string out;
  for (const char* n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// Reads fields of one JSON object, remembering only the first error. Every accessor
// returns nullopt when the field is absent/null or when an error has been recorded.
class FieldReader {
 public:
  FieldReader(const json& obj, std::string_view path, const char* what)
      : obj_(obj), prefix_(path.empty() ? std::string() : std::string(path) + ".") {
    if (!obj.is_object()) {
      error_ = base::InvalidArgumentError(std::string("an ") + what + " must be a JSON object",
                                          std::string(path));
    }
  }

  const base::Status& error() const { return error_; }

  std::optional<std::string> String(const char* name, size_t min_chars, size_t max_chars,
                                    bool required) {
    const json* v = Find(name, required);
    if (!v) return std::nullopt;
    if (!v->is_string()) return Fail(name, "must be a string");
    const std::string& s = v->get_ref<const std::string&>();
    size_t n = Utf8Length(s);
    if (n < min_chars || n > max_chars) {
      return Fail(name, "must be " + std::to_string(min_chars) + " to " +
                            std::to_string(max_chars) + " characters");
    }
    return s;
  }

  // Any finite number >= min (min = -inf for "any"), <= max.
  std::optional<double> Number(const char* name, double min, double max, bool required) {
    const json* v = Find(name, required);
    if (!v) return std::nullopt;
    if (!v->is_number()) return Fail(name, "must be a number");
    double d = v->get<double>();
    if (!std::isfinite(d)) return Fail(name, "must be finite");
    if (d < min) return Fail(name, "must be >= " + Format(min));
    if (d > max) return Fail(name, "must be <= " + Format(max));
    return d;
  }

  std::optional<int64_t> Count(const char* name) {
    const json* v = Find(name, false);
    if (!v) return std::nullopt;
    if (v->is_number_unsigned() || v->is_number_integer()) {
      if (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0) {
        return Fail(name, "must be an integer >= 0");
      }
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(kMaxInteger)) {
        return Fail(name, "must be an integer >= 0");
      }
      return v->get<int64_t>();
    }
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (d >= 0 && d <= kMaxInteger && std::floor(d) == d) return static_cast<int64_t>(d);
    }
    return Fail(name, "must be an integer >= 0");
  }

  template <typename Enum, size_t N>
  std::optional<Enum> Enumerated(const char* name, const std::array<const char*, N>& names) {
    const json* v = Find(name, true);
    if (!v) return std::nullopt;
    std::optional<Enum> e;
    if (v->is_string()) e = ParseEnum<Enum>(v->get_ref<const std::string&>(), names);
    if (!e) return Fail(name, "must be one of " + OneOf(names));
    return e;
  }

  std::optional<double> Timestamp(const char* name) {
    const json* v = Find(name, false);
    if (!v) return std::nullopt;
    std::optional<double> t;
    if (v->is_number()) {
      double d = v->get<double>();
      if (d >= 0 && d <= kMaxTimestamp) t = d;
    } else if (v->is_string()) {
      t = ParseRfc3339(v->get_ref<const std::string&>());
    }
    if (!t) return Fail(name, "must be unix seconds or an RFC 3339 date-time (1970 to 9999)");
    return t;
  }

 private:
  const json* Find(const char* name, bool required) {
    if (!error_.ok()) return nullptr;
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      if (required) Fail(name, "is required");
      return nullptr;
    }
    return &*it;
  }

  std::nullopt_t Fail(const char* name, const std::string& message) {
    if (error_.ok())
      error_ = base::InvalidArgumentError(std::string(name) + " " + message, prefix_ + name);
    return std::nullopt;
  }

  static std::string Format(double d) {
    if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    return json(d).dump();
  }

  const json& obj_;
  std::string prefix_;
  base::Status error_;
};

constexpr double kInf = HUGE_VAL;

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// Reads exactly `n` digits at s[*pos].
bool Digits(std::string_view s, size_t* pos, int n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, std::string_view any_of) {
  if (*pos >= s.size() || any_of.find(s[*pos]) == std::string_view::npos) return false;
  ++*pos;
  return true;
}

}  // namespace

const char* StatusName(ExperimentStatus s) { return kStatusNames[static_cast<int>(s)]; }
const char* PatternTypeName(PatternType t) { return kPatternTypeNames[static_cast<int>(t)]; }
std::optional<ExperimentStatus> ParseStatus(std::string_view s) {
  return ParseEnum<ExperimentStatus>(s, kStatusNames);
}
std::optional<PatternType> ParsePatternType(std::string_view s) {
  return ParseEnum<PatternType>(s, kPatternTypeNames);
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<double> ParseRfc3339(std::string_view s) {
  size_t p = 0;
  int year, month, day, hour, minute, second;
  if (!Digits(s, &p, 4, &year) || !Expect(s, &p, "-") || !Digits(s, &p, 2, &month) ||
      !Expect(s, &p, "-") || !Digits(s, &p, 2, &day) || !Expect(s, &p, "Tt ") ||
      !Digits(s, &p, 2, &hour) || !Expect(s, &p, ":") || !Digits(s, &p, 2, &minute) ||
      !Expect(s, &p, ":") || !Digits(s, &p, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  double fraction = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    double scale = 0.1;
    size_t start = p;
    for (; p < s.size() && s[p] >= '0' && s[p] <= '9'; ++p, scale /= 10) {
      fraction += (s[p] - '0') * scale;
    }
    if (p == start) return std::nullopt;
  }
  int offset_seconds = 0;
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh, om;
    if (!Digits(s, &p, 2, &oh) || !Expect(s, &p, ":") || !Digits(s, &p, 2, &om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (p != s.size()) return std::nullopt;
  // A leap second (":60") is taken as the last second of its minute.
  if (second == 60) second = 59;
  int64_t t =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  double result = static_cast<double>(t) + fraction;
  if (result < 0 || result > kMaxTimestamp + 1) return std::nullopt;
  return result;
}

base::Status ValidateExperiment(const json& item, std::string_view path, double now,
                                Experiment* out) {
  *out = Experiment();
  FieldReader r(item, path, "experiment");
  if (auto v = r.String("experiment_id", 1, kMaxIdChars, true)) out->id = std::move(*v);
  if (auto v = r.Enumerated<ExperimentStatus>("status", kStatusNames)) out->status = *v;
  if (auto v = r.Number("duration_seconds", 0, kInf, true)) out->duration_seconds = *v;
  out->script_length = r.Count("script_length");
  out->script_compilation_ms = r.Number("script_compilation_time_ms", 0, kInf, false);
  out->checkpoint_loading_ms = r.Number("checkpoint_loading_time_ms", 0, kInf, false);
  if (auto v = r.String("ai_strategy", 1, kMaxStrategyChars, false))
    out->ai_strategy = std::move(*v);
  out->pattern_discoveries = r.Count("pattern_discoveries");
  out->timestamp = r.Timestamp("timestamp").value_or(now);
  // An empty error message says "no error" as well as null does, so it is allowed.
  out->error_message = r.String("error_message", 0, kMaxErrorMessageChars, false);
  out->performance_score = r.Number("performance_score", -kInf, kInf, false);
  return r.error();
}

base::Status ValidatePattern(const json& item, std::string_view path, double now, Pattern* out) {
  *out = Pattern();
  FieldReader r(item, path, "pattern");
  if (auto v = r.String("pattern_id", 1, kMaxIdChars, true)) out->id = std::move(*v);
  if (auto v = r.Enumerated<PatternType>("pattern_type", kPatternTypeNames)) out->type = *v;
  if (auto v = r.Number("quality_score", 0, 1, true)) out->quality_score = *v;
  out->discovery_time_seconds = r.Number("discovery_time_seconds", 0, kInf, false);
  out->experiment_id = r.String("experiment_id", 1, kMaxIdChars, false);
  out->ai_worker = r.String("ai_worker", 1, kMaxWorkerChars, false);
  out->reuse_count = r.Count("reuse_count").value_or(0);
  out->timestamp = r.Timestamp("timestamp").value_or(now);
  return r.error();
}

namespace {
template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

json ToJson(const Experiment& e) {
  return json{{"experiment_id", e.id},
              {"status", StatusName(e.status)},
              {"duration_seconds", e.duration_seconds},
              {"script_length", OrNull(e.script_length)},
              {"script_compilation_time_ms", OrNull(e.script_compilation_ms)},
              {"checkpoint_loading_time_ms", OrNull(e.checkpoint_loading_ms)},
              {"ai_strategy", e.ai_strategy},
              {"pattern_discoveries", OrNull(e.pattern_discoveries)},
              {"timestamp", e.timestamp},
              {"error_message", OrNull(e.error_message)},
              {"performance_score", OrNull(e.performance_score)}};
}

json ToJson(const Pattern& p) {
  return json{{"pattern_id", p.id},
              {"pattern_type", PatternTypeName(p.type)},
              {"quality_score", p.quality_score},
              {"discovery_time_seconds", OrNull(p.discovery_time_seconds)},
              {"experiment_id", OrNull(p.experiment_id)},
              {"ai_worker", OrNull(p.ai_worker)},
              {"reuse_count", p.reuse_count},
              {"timestamp", p.timestamp}};
}

}  // namespace speedmon::speedrun
