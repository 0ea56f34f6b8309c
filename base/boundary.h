// The rule at every boundary: no exception crosses a libuv callback or a thread's top
// frame. Code below a boundary uses non-throwing forms where a library offers them
// (nlohmann's parse without exceptions, std::from_chars, base::ToJson); what can still
// throw (allocation, a library's internal error) is caught at the boundary by Guard,
// which counts it per component (exported as pokemon_speedrun_internal_errors_total),
// logs it at most once a second per component, and runs the caller's recovery: answer
// that one request with a 500, close that one connection, drop that one batch.
#pragma once

#include <cstdint>
#include <exception>
#include <string_view>

namespace speedmon::base {

enum class Component : uint8_t {
  kAdmin,      // admin API handlers and the admin server's callbacks
  kProxy,      // a worker's connection callbacks
  kStore,      // the store writer thread
  kNotifier,   // a notifier thread
  kHealth,     // health checks
  kAlerting,   // rule evaluation
  kLifecycle,  // signals, reload, drain
};
inline constexpr int kComponentCount = 7;

std::string_view ComponentName(Component c);

// Counts one exception that reached a boundary and logs it (rate-limited). Never throws.
void RecordException(Component c, std::string_view where, std::string_view what) noexcept;

// Exceptions counted so far for `c`.
uint64_t ExceptionCount(Component c) noexcept;

// Runs f(). When it throws, records the exception and runs recover() (which must not
// throw; an exception from it is recorded too and dropped). Returns false after a throw.
template <class F, class R>
bool Guard(Component c, std::string_view where, F&& f, R&& recover) noexcept {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    RecordException(c, where, e.what());
  } catch (...) {
    RecordException(c, where, "unknown exception");
  }
  try {
    recover();
  } catch (...) {
    RecordException(c, where, "exception while recovering");
  }
  return false;
}

template <class F>
bool Guard(Component c, std::string_view where, F&& f) noexcept {
  return Guard(c, where, static_cast<F&&>(f), [] {});
}

}  // namespace speedmon::base
