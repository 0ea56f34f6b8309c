// POST /api/v1/alert-rules bodies and the rules file (alerting/rule_store.h): any bytes
// give a rule (or a set of rule changes) or an error, and what is accepted is written back
// as JSON that reads back to the same thing.
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "alerting/rule.h"
#include "alerting/rule_store.h"
#include "base/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  speedmon::base::StatusOr<speedmon::alerting::RuleChanges> changes =
      speedmon::alerting::ParseRuleChanges(body);
  if (changes.ok()) {
    std::string written = speedmon::alerting::RuleChangesJson(*changes);
    speedmon::base::StatusOr<speedmon::alerting::RuleChanges> back =
        speedmon::alerting::ParseRuleChanges(written);
    if (!back.ok() || back->added.size() != changes->added.size() ||
        back->deleted != changes->deleted) {
      std::abort();
    }
  } else if (changes.status().message().empty()) {
    std::abort();
  }
  speedmon::base::StatusOr<speedmon::alerting::Rule> r = speedmon::alerting::RuleFromJson(body);
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  std::string text = speedmon::base::ToJson(speedmon::alerting::RuleToJson(*r));
  if (nlohmann::json::parse(text, nullptr, false).is_discarded()) std::abort();
  return 0;
}
