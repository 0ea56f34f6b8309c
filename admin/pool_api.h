// What a pool manager tells speedmon through the admin API: events about its emulator
// processes (POST /api/v1/events) and processes to watch from now on
// (POST /api/v1/processes). The body parsers (pure; fuzzed by fuzz/pool_api_fuzz.cc)
// and EventLog, which counts events and feeds them to the process metrics.
//
// Threads: main thread (the admin handlers). Parsers are pure functions.
#pragma once

#include <prometheus/counter.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "metrics/family.h"
#include "speedrun/body.h"
#include "sysprobe/process_watcher.h"

namespace speedmon::admin {

// One event (field names as in the JSON body; docs/API.md, "Events"):
//   event           required: "failure", "restart" or "replacement" (any case)
//   event_id        optional, 1..128 characters: an id seen before is a duplicate
//   process         optional, 1..128 characters: the process or endpoint it is about
//   failure_type    required for a failure, else refused: crash, exit, oom, hang, timeout,
//                   connect, status, other (any case)
//   startup_seconds optional for restart and replacement (refused for a failure): how
//                   long the new process took to become ready, 0..86400
//   replaced_by     optional for a replacement: the new process, 1..128 characters
//   timestamp       optional: unix seconds or RFC 3339 (as for experiments); default now
//   message         optional, up to 4096 characters
// Unknown fields are ignored, as for experiments.
struct PoolEvent {
  enum class Kind { kFailure, kRestart, kReplacement };
  Kind kind = Kind::kFailure;
  std::optional<std::string> event_id;
  std::optional<std::string> process;
  std::string failure_type;  // lower case; "" unless kFailure
  std::optional<double> startup_seconds;
  std::optional<std::string> replaced_by;
  double timestamp = 0;
  std::optional<std::string> message;
};
const char* PoolEventKindName(PoolEvent::Kind kind);  // "failure", "restart", "replacement"

// A body of one event (a JSON object), or many (a JSON array, or NDJSON), framed and
// bounded as experiment bodies are (speedrun/body.h). The first problem is the error, with
// the field ("items[2].failure_type" in a batch); nothing of a bad batch is recorded.
struct DecodedEvents {
  bool single = false;
  std::vector<PoolEvent> events;
};
base::StatusOr<DecodedEvents> ParseEvents(std::string_view body, std::string_view content_type,
                                          const speedrun::BodyLimits& limits, double now);

// POST /api/v1/processes: {"name": "...", and one of "pid": N, "pid_file": "...",
// "cmdline_regex": "..."}. name: 1..64 of [A-Za-z0-9_.-] (it becomes the `process`
// label); pid 1..4194304; pid_file an absolute path up to 4096 bytes; cmdline_regex up
// to 256 characters (compiled by the watcher, which reports a bad one). Unknown fields
// are refused: a misspelt selector must not silently watch nothing.
struct ProcessWatch {
  std::string name;
  sysprobe::ProcessSelector selector;  // exactly one of its fields set
};
base::StatusOr<ProcessWatch> ParseProcessWatch(std::string_view body);

// Counts events in pokemon_speedrun_pool_events_total{event} (all three from 0), keeps the
// last kRememberedIds event ids to answer a repeat as a duplicate (in memory: a restart
// forgets them), and hands each new event to `apply` (the daemon: failures and startup
// times to the process metrics).
class EventLog {
 public:
  static constexpr size_t kRememberedIds = 100000;
  EventLog(metrics::FamilySet& families, std::function<void(const PoolEvent&)> apply);
  struct Result {
    uint64_t accepted = 0;
    uint64_t duplicates = 0;
  };
  Result Record(const std::vector<PoolEvent>& events);

 private:
  metrics::Family<prometheus::Counter>& events_;
  std::function<void(const PoolEvent&)> apply_;
  std::unordered_set<std::string> seen_;
  std::deque<std::string> order_;  // oldest first, for forgetting
};

}  // namespace speedmon::admin
