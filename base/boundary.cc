// Exception accounting at boundaries. See boundary.h.
#include "base/boundary.h"

#include <atomic>
#include <chrono>
#include <string>

#include "base/log.h"

namespace speedmon::base {
namespace {

struct Counter {
  std::atomic<uint64_t> count{0};
  std::atomic<int64_t> last_log_ms{-1000000};
};
Counter g_counters[kComponentCount];

}  // namespace

std::string_view ComponentName(Component c) {
  switch (c) {
    case Component::kAdmin:
      return "admin";
    case Component::kProxy:
      return "proxy";
    case Component::kStore:
      return "store";
    case Component::kNotifier:
      return "notifier";
    case Component::kHealth:
      return "health";
    case Component::kAlerting:
      return "alerting";
    case Component::kLifecycle:
      return "lifecycle";
  }
  return "unknown";
}

void RecordException(Component c, std::string_view where, std::string_view what) noexcept {
  Counter& k = g_counters[static_cast<int>(c)];
  uint64_t n = k.count.fetch_add(1, std::memory_order_relaxed) + 1;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = k.last_log_ms.load(std::memory_order_relaxed);
  if (now - last < 1000 || !k.last_log_ms.compare_exchange_strong(last, now)) return;
  try {
    LogError("internal error in " + std::string(ComponentName(c)) + " (" + std::string(where) +
             "): " + std::string(what) + " [" + std::to_string(n) + " so far]");
  } catch (...) {
    // Out of memory while reporting: the count above still tells.
  }
}

uint64_t ExceptionCount(Component c) noexcept {
  return g_counters[static_cast<int>(c)].count.load(std::memory_order_relaxed);
}

}  // namespace speedmon::base
