// The TOML config loader: any text gives a Config or an error with a position, never a
// crash or an exception.
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  speedmon::config::LoadResult r = speedmon::config::LoadFromString(text, "fuzz.toml");
  if (r.ok() == r.error.has_value()) std::abort();
  if (r.ok()) {
    (void)speedmon::config::Summary(*r.config);
  } else if (r.error->ToString().empty()) {
    std::abort();
  }
  return 0;
}
