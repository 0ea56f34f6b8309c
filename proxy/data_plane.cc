// The data plane's assembly and lifecycle. See data_plane.h.
#include "proxy/data_plane.h"

#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "proxy/worker.h"

namespace speedmon::proxy {

namespace {

// The kernel's accept queue per listening socket (each worker has its own).
constexpr int kBacklog = 1024;

void CloseAll(const std::vector<std::vector<int>>& fds) {
  for (const auto& v : fds) {
    for (int fd : v) close(fd);
  }
}

}  // namespace

DataPlane::DataPlane(const config::Config& config, std::unique_ptr<Topology> topology)
    : config_(config), topology_(std::move(topology)) {}

base::StatusOr<std::unique_ptr<DataPlane>> DataPlane::Create(const config::Config& config,
                                                             uv_loop_s* loop,
                                                             prometheus::Registry& registry,
                                                             std::function<void()> on_health_change,
                                                             std::shared_ptr<Resolver> resolver) {
  base::StatusOr<std::unique_ptr<Topology>> topology = Topology::Build(config);
  if (!topology.ok()) return topology.status();
  std::unique_ptr<DataPlane> dp(new DataPlane(config, std::move(topology).value()));
  const int n = std::max(1, config.proxy.workers);
  // Every listener is bound n times: fds[listener][worker].
  std::vector<std::vector<int>> fds(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    base::Status bound = BindReusePort(config.listeners[l].address, n, kBacklog, &fds[l]);
    if (!bound.ok()) {
      CloseAll(fds);
      return bound.WithContext("listener " + config.listeners[l].name);
    }
  }
  DataPlane* raw = dp.get();
  dp->resolver_ = std::make_unique<EndpointResolver>(
      loop, dp->config_.upstreams, resolver ? std::move(resolver) : SystemResolver(), registry,
      [raw](AddressTablePtr table) {
        for (auto& w : raw->workers_) w->SetAddresses(table);
        raw->health_->OnAddresses(*table);
      });
  dp->resolver_->ResolveAll();
  std::vector<const metrics::WorkerStats*> shards;
  for (int i = 0; i < n; ++i) {
    dp->stats_.push_back(std::make_unique<metrics::WorkerStats>(dp->topology_->layout()));
    shards.push_back(dp->stats_.back().get());
    uint32_t ring = config.proxy.recent_requests == 0
                        ? 0
                        : std::max<uint32_t>(1, config.proxy.recent_requests / n);
    dp->recent_.push_back(std::make_unique<proxy::RecentRequests>(ring));
  }
  dp->request_stats_ =
      std::make_shared<metrics::RequestStatsCollector>(dp->topology_->layout(), shards);
  for (int i = 0; i < n; ++i) {
    std::vector<int> mine;
    for (auto& v : fds) mine.push_back(v[i]);
    dp->workers_.push_back(std::make_unique<Worker>(i, dp->config_, dp->topology_.get(),
                                                    dp->resolver_->table(), dp->stats_[i].get(),
                                                    dp->recent_[i].get(), std::move(mine)));
  }
  dp->health_ = std::make_unique<HealthChecker>(loop, dp->topology_.get(), dp->resolver_.get(),
                                                registry, std::move(on_health_change));
  return dp;
}

DataPlane::~DataPlane() {
  // Worker threads must be joined before their objects go. The health checks' handles
  // close on the main loop, so that part of Stop() is the owner's job (see the header).
  if (stopped_) return;
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
}

void DataPlane::Start() {
  for (auto& w : workers_) w->Start();
  started_ = true;
  health_->Start();
  resolver_->Start();
}

void DataPlane::BeginDrain() {
  draining_ = true;
  for (auto& w : workers_) w->BeginDrain();
}

void DataPlane::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) {
    w->Join();
    if (started_ && w->loop_close_result() != 0) {
      base::LogWarning("a worker loop closed with handles left open");
    }
  }
  health_->Stop();
  resolver_->Stop();
}

void DataPlane::ReopenAccessLogs() {
  for (auto& w : workers_) w->ReopenAccessLog();
}

int DataPlane::connections() const {
  int n = 0;
  for (const auto& w : workers_) n += w->connections();
  return n;
}

std::vector<RequestRecord> DataPlane::RecentRequests(size_t limit) const {
  std::vector<RequestRecord> all;
  for (const auto& r : recent_) r->Snapshot(&all);
  std::sort(all.begin(), all.end(), [](const RequestRecord& a, const RequestRecord& b) {
    return a.unix_time > b.unix_time;
  });
  if (all.size() > limit) all.resize(limit);
  return all;
}

}  // namespace speedmon::proxy
