// Active health checks of every upstream endpoint, on the main loop: GET `path` every
// `interval`, healthy after `healthy_threshold` passes in a row, unhealthy after
// `unhealthy_threshold` failures in a row. The verdict is published to the workers
// through EndpointState::healthy (an atomic they read without locks) and exported as
// pokemon_speedrun_upstream_healthy, _healthy_processes, _total_processes and the rest.
//
// Threads: main loop only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/family.h"
#include "proxy/resolver.h"
#include "proxy/topology.h"

struct uv_loop_s;

namespace speedmon::proxy {

struct EndpointHealth {
  std::string upstream;
  std::string endpoint;
  bool checked = false;  // health checks are configured for it
  bool healthy = true;
  uint64_t checks = 0;
  uint64_t check_failures = 0;
  uint64_t failures = 0;       // healthy -> unhealthy transitions
  double last_check_unix = 0;  // 0: never
  std::string last_result;     // success | timeout | connect | status | resolve
  int last_status = 0;
  double last_startup_seconds = -1;  // -1: none observed yet
  double healthy_since_unix = 0;
};

class HealthCheckerImpl;

// The failure_type values of pokemon_speedrun_process_failures_total, all exported from 0:
// the health checks' own (timeout, connect, status, resolve) and the ones a pool manager
// reports through POST /api/v1/events.
inline constexpr std::string_view kFailureTypes[] = {
    "timeout", "connect", "status", "resolve", "crash", "exit", "oom", "hang", "other"};

class HealthChecker {
 public:
  // `on_change` runs (on the main loop) after any endpoint changes state. Checks go to
  // the first of the endpoint's current addresses in `resolver`'s table (which must
  // outlive this); an endpoint without any fails its check as "resolve".
  HealthChecker(uv_loop_s* loop, Topology* topology, const EndpointResolver* resolver,
                metrics::FamilySet& families, std::function<void()> on_change);
  ~HealthChecker();
  void Start();
  // Closes every handle; the loop finishes them.
  void Stop();
  // A new address table: an endpoint whose name stopped resolving is unhealthy at once
  // (result "resolve"); one without health checks is healthy again when it resolves,
  // one with them after its next passing check.
  void OnAddresses(const AddressTable& table);
  // A reload: each endpoint `previous` also checks (same upstream name and endpoint)
  // continues from its state there (health, checks in a row, counts), so that a reload
  // neither revives an unhealthy endpoint nor fails a healthy one. Before Start().
  void CarryOver(const HealthChecker& previous);
  std::vector<EndpointHealth> Snapshot() const;
  int healthy() const;
  int total() const;
  // An event a pool manager reported (POST /api/v1/events): one failure of a kind in
  // kFailureTypes (false, and nothing counted, for another), and one startup time.
  bool RecordReportedFailure(std::string_view failure_type);
  void ObserveStartup(double seconds);

 private:
  std::unique_ptr<HealthCheckerImpl> impl_;
};

}  // namespace speedmon::proxy
