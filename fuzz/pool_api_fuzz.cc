// Pool manager bodies: POST /api/v1/events (object, array, NDJSON) and
// POST /api/v1/processes on any bytes give events / a watch or an error with a message.
#include <cstdlib>
#include <string>

#include "admin/pool_api.h"

using namespace speedmon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kTypes[] = {"application/json", "application/x-ndjson", "", "text/plain"};
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80) {
    base::StatusOr<admin::ProcessWatch> w = admin::ParseProcessWatch(body);
    if (!w.ok() && w.status().message().empty()) std::abort();
    if (w.ok() && (w->name.empty() || (!w->selector.pid && w->selector.pid_file.empty() &&
                                       w->selector.cmdline_regex.empty()))) {
      std::abort();
    }
    return 0;
  }
  speedrun::BodyLimits limits;
  limits.max_items = 64;
  base::StatusOr<admin::DecodedEvents> events =
      admin::ParseEvents(body, kTypes[data[0] % 4], limits, 1.7e9);
  if (!events.ok()) {
    if (events.status().message().empty()) std::abort();
    return 0;
  }
  for (const admin::PoolEvent& e : events->events) {
    bool failure = e.kind == admin::PoolEvent::Kind::kFailure;
    if (failure == e.failure_type.empty()) std::abort();
    if (failure && e.startup_seconds) std::abort();
  }
  return 0;
}
