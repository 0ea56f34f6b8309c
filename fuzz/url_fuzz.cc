// The URL parsers: percent-decoding and query parameters (admin API paths and queries),
// and config::ParseHttpUrl (the alerting targets' http:// and https:// URLs, which the
// notifier hands to libcurl). No crash; decoding inverts encoding; a parsed URL written
// back parses to the same parts.
#include <cstdlib>
#include <string>

#include "base/url.h"
#include "config/config.h"

namespace {

void CheckHttpUrl(std::string_view in) {
  speedmon::base::StatusOr<speedmon::config::HttpUrl> url = speedmon::config::ParseHttpUrl(in);
  if (!url.ok()) {
    if (url.status().message().empty() || url.status().field() != "url") std::abort();
    return;
  }
  if (url->tls != in.starts_with("https://")) std::abort();
  if (url->path.empty() || url->path[0] != '/') std::abort();
  for (char c : url->path) {
    if (c < 0x21 || c > 0x7e) std::abort();  // it goes on a request line as is
  }
  speedmon::base::StatusOr<speedmon::config::HttpUrl> again =
      speedmon::config::ParseHttpUrl(url->ToString());
  if (!again.ok() || again->tls != url->tls || again->address.host != url->address.host ||
      again->address.port != url->address.port || again->path != url->path) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckHttpUrl(in);
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
