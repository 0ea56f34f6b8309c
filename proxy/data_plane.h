// The data plane as one object: the topology (upstreams, endpoints, routes), the
// endpoint resolver (host names resolved again every `dns_refresh`), one Worker thread
// per core with its listening sockets, stats shard and recent-requests ring, and the
// active health checks on the main loop. app/ creates it from the config and drives its
// lifecycle; admin/ reads it for /ready, /api/v1/upstreams, /api/v1/requests and
// /api/v1/processes.
//
// Lifecycle: Create (resolve, bind; nothing runs) -> Start -> [Reload...] -> [BeginDrain]
// -> Stop.
// Generations: everything above but the metrics registry is one generation, built from
// one config and never changed after (but for endpoint addresses and health). Reload
// builds the next generation beside the running one (listening sockets of addresses that
// stay are shared with it, new ones are bound first), starts it, then drains the old one:
// it stops accepting, finishes its requests in flight, closes its keep-alive connections
// after their current request, and is stopped once idle (or after drain_timeout).
// Endpoint addresses that change reach the workers as a new immutable AddressTable
// (Worker::SetAddresses): requests in flight keep their connection and its address.
// Threads: every method is for the main thread; the workers run on their own threads and
// share only their generation's topology (read-only but for endpoint health flags) and
// their shards.
#pragma once

#include <prometheus/collectable.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "metrics/family.h"
#include "metrics/request_stats.h"
#include "proxy/health_checker.h"
#include "proxy/recent_requests.h"
#include "proxy/resolver.h"
#include "proxy/topology.h"

struct uv_loop_s;
struct uv_timer_s;

namespace speedmon::proxy {

struct Generation;

class DataPlane {
 public:
  // Resolves every endpoint (blocking, once: see EndpointResolver::ResolveAll) and binds
  // every listener once per worker (SO_REUSEPORT). `loop` is the main loop (health
  // checks, name refreshes, retiring generations); health and name metrics register on
  // `families`; `on_health_change` runs on the main loop after any endpoint changes
  // state; `resolver` resolves endpoint names (null: SystemResolver()).
  // Errors: kUnavailable for a listener address that cannot be resolved or bound (an
  // endpoint name that does not resolve is an unhealthy endpoint, not an error).
  // Nothing is left open on error.
  static base::StatusOr<std::unique_ptr<DataPlane>> Create(
      const config::Config& config, uv_loop_s* loop, metrics::FamilySet& families,
      std::function<void()> on_health_change, std::shared_ptr<Resolver> resolver = nullptr);
  // REQUIRES: Stop() was called and the main loop ran since (the health checks' handles
  // close on it). Without Stop() it still joins the workers, but leaks those handles.
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // Starts the workers and the health checks.
  void Start();
  // Listeners, upstreams, endpoints and routes (and the rest of [proxy] but `workers`)
  // from `config`, as a new generation (see the top). Errors: kUnavailable when a new
  // listener address cannot be resolved or bound; the running generation is untouched.
  // REQUIRES: started, not draining.
  base::Status Reload(const config::Config& config);
  // Stops accepting; in-flight requests finish; idle keep-alive connections close.
  void BeginDrain();
  // Closes every connection now, joins the workers and closes the health checks'
  // handles (the main loop finishes closing them). Also valid without Start(). Idempotent.
  void Stop();
  // Reopens every worker's access log at its configured path (after rotation).
  void ReopenAccessLogs();

  // Started, not draining, not stopped: new connections are accepted.
  bool accepting() const { return started_ && !draining_ && !stopped_; }
  // Live downstream connections over all workers of every generation.
  int connections() const;
  int workers() const;
  // Generations running or draining (1 but for a moment after a reload).
  int generations() const;

  // The running generation's.
  const Topology& topology() const;
  // The listeners as configured (the addresses agents connect to), in config order.
  const std::vector<config::ListenerConfig>& listeners() const;
  const HealthChecker& health() const;
  HealthChecker& health();  // the running generation's (POST /api/v1/events)
  const EndpointResolver& resolver() const;
  // The request-stats shards of every generation merged under the running one's
  // layout (the /metrics families and /api/v1/upstreams). Replaced at each reload.
  const std::shared_ptr<metrics::RequestStatsCollector>& request_stats() const {
    return request_stats_;
  }
  // What request_stats() collects, through whichever collector is current (for holders
  // that keep a Collectable, such as the alert evaluator).
  std::shared_ptr<prometheus::Collectable> request_collectable() const { return forward_; }
  // One request of GET /api/v1/requests, with the names it had when it was served (a
  // reload may since have renamed or removed its upstream).
  struct RecentRequest {
    RequestRecord record;
    std::string upstream;
    std::string endpoint;  // empty: it never reached one
    std::string route;
  };
  // Up to `limit` of the most recent requests, newest first: the running generation's,
  // those still draining, and, up to [proxy] recent_requests of them, the retired ones'.
  std::vector<RecentRequest> RecentRequests(size_t limit) const;

 private:
  DataPlane(uv_loop_s* loop, metrics::FamilySet& families, std::function<void()> on_health_change,
            std::shared_ptr<Resolver> resolver);
  // Keeps `g`'s recent requests, named, before it goes.
  void KeepRetiredRequests(const Generation& g);
  // A generation from `config` with its listening sockets `fds` ([listener][worker]);
  // endpoint addresses and health continue from `previous` when not null.
  std::unique_ptr<Generation> Build(const config::Config& config, std::vector<std::vector<int>> fds,
                                    const Generation* previous);
  void RebuildCollector();
  void OnRetireTick();

  uv_loop_s* loop_;
  metrics::FamilySet& families_;
  std::function<void()> on_health_change_;
  std::shared_ptr<Resolver> resolver_;
  int workers_ = 1;
  std::unique_ptr<Generation> current_;
  std::vector<std::unique_ptr<Generation>> draining_gens_;
  std::vector<RecentRequest> retired_requests_;  // newest first, at most recent_requests
  // The counts of generations gone, folded into one shard of the running layout, so
  // that they stay in every counter (written and read on the main thread only).
  std::unique_ptr<metrics::WorkerStats> carry_;
  std::shared_ptr<metrics::RequestStatsCollector> request_stats_;
  std::shared_ptr<prometheus::Collectable> forward_;
  uv_timer_s* retire_timer_ = nullptr;
  bool started_ = false;
  bool draining_ = false;
  bool stopped_ = false;
};

}  // namespace speedmon::proxy
