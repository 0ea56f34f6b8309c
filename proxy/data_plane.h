// The data plane as one object: the topology (upstreams, resolved endpoints, routes), one
// Worker thread per core with its listening sockets, stats shard and recent-requests
// ring, and the active health checks on the main loop. app/ creates it from the config and
// drives its lifecycle; admin/ reads it for /ready, /api/v1/upstreams, /api/v1/requests
// and /api/v1/processes.
//
// Lifecycle: Create (resolve, bind; nothing runs) -> Start -> [BeginDrain] -> Stop.
// Threads: every method is for the main thread; the workers run on their own threads and
// share only the topology (read-only but for endpoint health flags) and their shards.
// The DataPlane keeps its own copy of the config: what it was built from never changes
// under the workers.
#pragma once

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "metrics/request_stats.h"
#include "proxy/health_checker.h"
#include "proxy/recent_requests.h"
#include "proxy/topology.h"

struct uv_loop_s;

namespace speedmon::proxy {

class Worker;

class DataPlane {
 public:
  // Resolves every endpoint and binds every listener once per worker (SO_REUSEPORT).
  // `loop` is the main loop (health checks); health metrics register on `registry`;
  // `on_health_change` runs on the main loop after any endpoint changes state.
  // Errors: kUnavailable for a name that does not resolve or an address that cannot be
  // bound. Nothing is left open on error.
  static base::StatusOr<std::unique_ptr<DataPlane>> Create(const config::Config& config,
                                                           uv_loop_s* loop,
                                                           prometheus::Registry& registry,
                                                           std::function<void()> on_health_change);
  // REQUIRES: Stop() was called and the main loop ran since (the health checks' handles
  // close on it). Without Stop() it still joins the workers, but leaks those handles.
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // Starts the workers and the health checks.
  void Start();
  // Stops accepting; in-flight requests finish; idle keep-alive connections close.
  void BeginDrain();
  // Closes every connection now, joins the workers and closes the health checks'
  // handles (the main loop finishes closing them). Also valid without Start(). Idempotent.
  void Stop();
  // Reopens every worker's access log at its configured path (after rotation).
  void ReopenAccessLogs();

  // Started, not draining, not stopped: new connections are accepted.
  bool accepting() const { return started_ && !draining_ && !stopped_; }
  // Live downstream connections over all workers.
  int connections() const;
  int workers() const { return static_cast<int>(workers_.size()); }

  const Topology& topology() const { return *topology_; }
  // The listeners as configured (the addresses agents connect to), in config order.
  const std::vector<config::ListenerConfig>& listeners() const { return config_.listeners; }
  const HealthChecker& health() const { return *health_; }
  HealthChecker& health() { return *health_; }
  // The request-stats shards merged (the /metrics families and /api/v1/upstreams).
  const std::shared_ptr<metrics::RequestStatsCollector>& request_stats() const {
    return request_stats_;
  }
  // Up to `limit` of the most recent requests over all workers, newest first.
  std::vector<RequestRecord> RecentRequests(size_t limit) const;

 private:
  DataPlane(const config::Config& config, std::unique_ptr<Topology> topology);

  const config::Config config_;
  std::unique_ptr<Topology> topology_;
  std::vector<std::unique_ptr<metrics::WorkerStats>> stats_;
  std::vector<std::unique_ptr<proxy::RecentRequests>> recent_;
  std::shared_ptr<metrics::RequestStatsCollector> request_stats_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<HealthChecker> health_;
  bool started_ = false;
  bool draining_ = false;
  bool stopped_ = false;
};

}  // namespace speedmon::proxy
