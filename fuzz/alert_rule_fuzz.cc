// POST /api/v1/alert-rules bodies: any bytes give a rule or an error, and an accepted
// rule is written back as valid JSON.
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "alerting/rule.h"
#include "base/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  speedmon::base::StatusOr<speedmon::alerting::Rule> r = speedmon::alerting::RuleFromJson(body);
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  std::string text = speedmon::base::ToJson(speedmon::alerting::RuleToJson(*r));
  if (nlohmann::json::parse(text, nullptr, false).is_discarded()) std::abort();
  return 0;
}
