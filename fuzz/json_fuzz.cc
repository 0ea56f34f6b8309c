// The one JSON encoder: for any bytes, the output is valid UTF-8 and strict JSON that
// parses back to the same string when the input was valid UTF-8.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>

#include "base/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  std::string out;
  speedmon::base::AppendJsonString(in, &out);
  if (!speedmon::base::IsValidUtf8(out)) std::abort();
  nlohmann::json back = nlohmann::json::parse(out, nullptr, false);
  if (back.is_discarded() || !back.is_string()) std::abort();
  const std::string& s = back.get_ref<const std::string&>();
  if (speedmon::base::IsValidUtf8(in) && s != in) std::abort();
  if (s != speedmon::base::ValidUtf8(in)) std::abort();
  // As a key and inside a document.
  nlohmann::json doc = {{in, in}, {"list", nlohmann::json::array({in, 1.5, nullptr})}};
  std::string text = speedmon::base::ToJson(doc);
  if (nlohmann::json::parse(text, nullptr, false).is_discarded()) std::abort();
  return 0;
}
