// The TOML config loader: any text gives a Config or an error with a position, never a
// crash or an exception.
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  speedmon::base::StatusOr<speedmon::config::Config> r =
      speedmon::config::LoadFromString(text, "fuzz.toml");
  if (r.ok()) {
    (void)speedmon::config::Summary(*r);
  } else if (!r.status().message().starts_with("fuzz.toml:")) {
    std::abort();  // every error says where it is
  }
  return 0;
}
