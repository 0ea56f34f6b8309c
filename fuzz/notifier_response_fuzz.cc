// The notifier's HTTP response parser (what an Alertmanager or a webhook answers), on any
// bytes, with and without the server having closed.
#include <cstdlib>
#include <string>

#include "alerting/http_client.h"

using speedmon::alerting::HttpResponse;
using speedmon::alerting::ParseHttpResponse;
using speedmon::alerting::ResponseParse;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string buf(reinterpret_cast<const char*>(data), size);
  HttpResponse open, closed;
  ResponseParse a = ParseHttpResponse(buf, false, &open);
  ResponseParse b = ParseHttpResponse(buf, true, &closed);
  if (b == ResponseParse::kNeedMore) std::abort();  // at EOF there is no more to wait for
  if (a == ResponseParse::kDone &&
      (b != ResponseParse::kDone || open.status != closed.status || open.body != closed.body)) {
    std::abort();
  }
  if (a == ResponseParse::kDone && open.body.size() > buf.size()) std::abort();
  return 0;
}
