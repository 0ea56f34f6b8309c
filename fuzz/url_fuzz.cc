// Percent-decoding and query parameters (admin API paths and queries): no crash, and
// decoding inverts encoding.
#include <cstdlib>
#include <string>

#include "base/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto decoded = speedmon::base::PercentDecode(in);
  if (decoded && decoded->size() > in.size()) std::abort();
  (void)speedmon::base::QueryParam(in, "limit");
  (void)speedmon::base::QueryParam(in, "");
  // Encode every byte, decode: the input comes back.
  static const char kHex[] = "0123456789ABCDEF";
  std::string enc;
  for (unsigned char c : in) {
    enc.push_back('%');
    enc.push_back(kHex[c >> 4]);
    enc.push_back(kHex[c & 15]);
  }
  auto back = speedmon::base::PercentDecode(enc);
  if (!back || *back != in) std::abort();
  return 0;
}
