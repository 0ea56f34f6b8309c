// Internal to proxy/: the daemon's parts, shared by server.cc (lifecycle) and
// admin_api.cc (the admin handlers). Main thread unless a member says otherwise.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "alerting/service.h"
#include "config/config.h"
#include "metrics/request_stats.h"
#include "metrics/system_collector.h"
#include "proxy/admin_server.h"
#include "proxy/health_checker.h"
#include "proxy/recent_requests.h"
#include "proxy/topology.h"
#include "proxy/worker.h"
#include "speedrun/service.h"

namespace speedmon::proxy {

class ServerImpl {
 public:
  explicit ServerImpl(config::Config config);
  ~ServerImpl();
  std::string Start();
  int Run();

  // Admin API (admin_api.cc).
  void HandleAdmin(const AdminRequest& req, Responder respond);
  // False (and answers 401) when a write lacks the configured bearer token.
  bool Authorized(const AdminRequest& req, const Responder& respond) const;
  std::vector<prometheus::MetricFamily> CollectAll() const;

  config::Config config;
  uv_loop_t loop;
  std::unique_ptr<Topology> topology;
  std::vector<std::unique_ptr<metrics::WorkerStats>> stats;
  std::vector<std::unique_ptr<RecentRequests>> recent;
  std::shared_ptr<metrics::RequestStatsCollector> request_stats;
  std::shared_ptr<metrics::SystemCollector> system;
  std::shared_ptr<prometheus::Registry> registry;           // main-thread metrics (health checks)
  std::shared_ptr<prometheus::Registry> speedrun_registry;  // collected via speedrun
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<HealthChecker> health;
  std::unique_ptr<speedrun::Service> speedrun;
  std::unique_ptr<alerting::Service> alerts;
  bool listeners_up = false;
  bool draining = false;
  prometheus::Family<prometheus::Counter>* reloads = nullptr;  // {result}

 private:
  void BeginDrain();
  void OnDrainTick();
  void FinishShutdown();
  void Reload();
  void OnHealthChange();
  // (Re)starts eval_timer_ at config.alerting.evaluation_interval.
  void StartEvaluationTimer();

  uv_signal_t sig_term_, sig_int_, sig_hup_, sig_usr1_;
  uv_timer_t drain_timer_;
  uv_timer_t eval_timer_;
  uint64_t drain_started_ms_ = 0;
  std::vector<EndpointHealth> logged_health_;  // what OnHealthChange last logged
  bool stopped_workers_ = false;
  int exit_code_ = 0;
};

}  // namespace speedmon::proxy
