// Experiment and pattern ingest: body decoding (JSON object, array, NDJSON) and the
// record validators on any bytes, and every accepted record written back as JSON.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>

#include "base/json.h"
#include "speedrun/body.h"
#include "speedrun/records.h"

using namespace speedmon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kTypes[] = {"application/json", "application/x-ndjson", "",
                                 "application/x-www-form-urlencoded", "text/plain"};
  std::string_view content_type = kTypes[data[0] % 5];
  const bool experiments = (data[0] & 0x80) == 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  speedrun::BodyLimits limits;
  limits.max_items = 64;
  speedrun::DecodedBody decoded;
  if (!speedrun::DecodeBody(body, content_type, limits, &decoded).ok()) return 0;
  for (size_t i = 0; i < decoded.items.size(); ++i) {
    std::string path = decoded.single ? "" : decoded.ItemPath(i);
    std::string text;
    if (experiments) {
      speedrun::Experiment e;
      if (!speedrun::ValidateExperiment(decoded.items[i], path, 1.7e9, &e).ok()) continue;
      text = base::ToJson(speedrun::ToJson(e));
    } else {
      speedrun::Pattern p;
      if (!speedrun::ValidatePattern(decoded.items[i], path, 1.7e9, &p).ok()) continue;
      text = base::ToJson(speedrun::ToJson(p));
    }
    if (!base::IsValidUtf8(text) || nlohmann::json::parse(text, nullptr, false).is_discarded()) {
      std::abort();
    }
  }
  return 0;
}
