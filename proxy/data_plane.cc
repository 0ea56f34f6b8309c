// The data plane's assembly, generations and lifecycle. See data_plane.h.
#include "proxy/data_plane.h"

#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <map>

#include "base/boundary.h"
#include "base/log.h"
#include "proxy/worker.h"

namespace speedmon::proxy {

namespace {

// The kernel's accept queue per listening socket (each worker has its own).
constexpr int kBacklog = 1024;
// How often draining generations are looked at.
constexpr uint64_t kRetireTickMs = 20;

void CloseAll(const std::vector<std::vector<int>>& fds) {
  for (const auto& v : fds) {
    for (int fd : v) close(fd);
  }
}

}  // namespace

// One config's data plane (see the header). The members are in construction order: the
// workers hold references to the config, topology, shards and rings.
struct Generation {
  config::Config config;
  std::unique_ptr<Topology> topology;
  std::shared_ptr<const metrics::StatsLayout> layout;
  std::vector<std::shared_ptr<metrics::WorkerStats>> stats;
  std::vector<std::unique_ptr<proxy::RecentRequests>> recent;
  std::unique_ptr<EndpointResolver> resolver;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<HealthChecker> health;
  // Its listening sockets, [listener][worker], owned by the workers: valid until the
  // generation drains (a reload shares them with the next one first, by dup()).
  std::vector<std::vector<int>> fds;
  uint64_t drain_started_ms = 0;
  bool stopped = false;
  bool checks_stopped = false;

  // Health checks and name refreshes stop (their handles close on the main loop).
  void StopChecks() {
    if (checks_stopped) return;
    checks_stopped = true;
    health->Stop();
    resolver->Stop();
  }

  int connections() const {
    int n = 0;
    for (const auto& w : workers) n += w->connections();
    return n;
  }
  void Stop() {
    if (stopped) return;
    stopped = true;
    for (auto& w : workers) w->Stop();
    for (auto& w : workers) w->Join();
    StopChecks();
  }
  ~Generation() {
    if (stopped) return;
    for (auto& w : workers) w->Stop();
    for (auto& w : workers) w->Join();
  }
};

namespace {
// Forwards to whichever collector the data plane has now.
class ForwardingCollectable final : public prometheus::Collectable {
 public:
  explicit ForwardingCollectable(const std::shared_ptr<metrics::RequestStatsCollector>* current)
      : current_(current) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return (*current_)->Collect(); }

 private:
  const std::shared_ptr<metrics::RequestStatsCollector>* current_;
};
}  // namespace

DataPlane::DataPlane(uv_loop_s* loop, metrics::FamilySet& families,
                     std::function<void()> on_health_change, std::shared_ptr<Resolver> resolver)
    : loop_(loop),
      families_(families),
      on_health_change_(std::move(on_health_change)),
      resolver_(resolver ? std::move(resolver) : SystemResolver()) {}

std::unique_ptr<Generation> DataPlane::Build(const config::Config& config,
                                             std::vector<std::vector<int>> fds,
                                             const Generation* previous) {
  auto g = std::make_unique<Generation>();
  g->config = config;
  g->config.proxy.workers = workers_;
  g->topology = std::move(Topology::Build(g->config)).value();  // the config was loaded
  g->layout = std::make_shared<const metrics::StatsLayout>(g->topology->layout());
  g->fds = fds;
  Generation* raw = g.get();
  g->resolver = std::make_unique<EndpointResolver>(loop_, g->config.upstreams, resolver_, families_,
                                                   [raw](AddressTablePtr table) {
                                                     for (auto& w : raw->workers)
                                                       w->SetAddresses(table);
                                                     raw->health->OnAddresses(*table);
                                                   });
  if (previous != nullptr) {
    g->resolver->Inherit(*previous->resolver);
  } else {
    g->resolver->ResolveAll();
  }
  const int n = workers_;
  for (int i = 0; i < n; ++i) {
    g->stats.push_back(std::make_shared<metrics::WorkerStats>(*g->layout));
    uint32_t ring = g->config.proxy.recent_requests == 0
                        ? 0
                        : std::max<uint32_t>(1, g->config.proxy.recent_requests / n);
    g->recent.push_back(std::make_unique<proxy::RecentRequests>(ring));
  }
  for (int i = 0; i < n; ++i) {
    std::vector<int> mine;
    for (auto& v : fds) mine.push_back(v[i]);
    g->workers.push_back(std::make_unique<Worker>(i, g->config, g->topology.get(),
                                                  g->resolver->table(), g->stats[i].get(),
                                                  g->recent[i].get(), std::move(mine)));
  }
  g->health = std::make_unique<HealthChecker>(loop_, g->topology.get(), g->resolver.get(),
                                              families_, on_health_change_);
  if (previous != nullptr) g->health->CarryOver(*previous->health);
  return g;
}

base::StatusOr<std::unique_ptr<DataPlane>> DataPlane::Create(const config::Config& config,
                                                             uv_loop_s* loop,
                                                             metrics::FamilySet& families,
                                                             std::function<void()> on_health_change,
                                                             std::shared_ptr<Resolver> resolver) {
  base::StatusOr<std::unique_ptr<Topology>> topology = Topology::Build(config);
  if (!topology.ok()) return topology.status();
  std::unique_ptr<DataPlane> dp(
      new DataPlane(loop, families, std::move(on_health_change), std::move(resolver)));
  dp->workers_ = std::max(1, config.proxy.workers);
  // Every listener is bound n times: fds[listener][worker].
  std::vector<std::vector<int>> fds(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    base::Status bound =
        BindReusePort(config.listeners[l].address, dp->workers_, kBacklog, &fds[l]);
    if (!bound.ok()) {
      CloseAll(fds);
      return bound.WithContext("listener " + config.listeners[l].name);
    }
  }
  dp->current_ = dp->Build(config, std::move(fds), nullptr);
  dp->carry_ = std::make_unique<metrics::WorkerStats>(*dp->current_->layout);
  dp->forward_ = std::make_shared<ForwardingCollectable>(&dp->request_stats_);
  dp->RebuildCollector();
  return dp;
}

DataPlane::~DataPlane() {
  // Worker threads are joined by each generation's destructor. The health checks'
  // handles close on the main loop, so that part of Stop() is the owner's job.
  draining_gens_.clear();
  current_.reset();
}

void DataPlane::RebuildCollector() {
  std::vector<metrics::RequestStatsCollector::Shard> shards;
  for (const auto& s : current_->stats) shards.push_back({s.get(), current_->layout});
  for (const auto& g : draining_gens_) {
    for (const auto& s : g->stats) shards.push_back({s.get(), g->layout});
  }
  shards.push_back({carry_.get(), current_->layout});
  request_stats_ = std::make_shared<metrics::RequestStatsCollector>(shards, *current_->layout);
}

void DataPlane::Start() {
  for (auto& w : current_->workers) w->Start();
  started_ = true;
  current_->health->Start();
  current_->resolver->Start();
  retire_timer_ = new uv_timer_t;
  uv_timer_init(loop_, retire_timer_);
  retire_timer_->data = this;
}

base::Status DataPlane::Reload(const config::Config& config) {
  if (!started_ || draining_ || stopped_) {
    return base::UnavailableError("the data plane is not running");
  }
  if (base::StatusOr<std::unique_ptr<Topology>> t = Topology::Build(config); !t.ok()) {
    return t.status();
  }
  if (config.proxy.workers > 0 && config.proxy.workers != workers_) {
    base::LogWarning("[proxy] workers changes on restart; keeping " + std::to_string(workers_));
  }
  // Sockets first: an address that stays keeps its sockets (and the connections in their
  // accept queues), shared with the new generation; a new address is bound now, so that
  // nothing is drained before everything new listens.
  std::map<std::string, size_t> old_by_address;
  for (size_t l = 0; l < current_->config.listeners.size(); ++l) {
    old_by_address[current_->config.listeners[l].address.ToString()] = l;
  }
  std::vector<std::vector<int>> fds(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    const config::ListenerConfig& lc = config.listeners[l];
    auto old = old_by_address.find(lc.address.ToString());
    if (old != old_by_address.end() && lc.address.port != 0) {
      for (int fd : current_->fds[old->second]) {
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) {
          CloseAll(fds);
          return base::UnavailableError("listener " + lc.name + ": cannot share the socket of " +
                                        lc.address.ToString());
        }
        fds[l].push_back(copy);
      }
      continue;
    }
    base::Status bound = BindReusePort(lc.address, workers_, kBacklog, &fds[l]);
    if (!bound.ok()) {
      CloseAll(fds);
      return bound.WithContext("listener " + lc.name);
    }
  }
  std::unique_ptr<Generation> next = Build(config, std::move(fds), current_.get());
  for (auto& w : next->workers) w->Start();
  next->health->Start();
  next->resolver->Start();
  // The old generation drains: its health checks stop now (the new one checks the same
  // endpoints), its workers stop accepting and finish what they have.
  auto carry = std::make_unique<metrics::WorkerStats>(*next->layout);
  metrics::RequestStatsCollector::Fold(*carry_, *current_->layout, carry.get(), *next->layout);
  carry_ = std::move(carry);
  std::unique_ptr<Generation> old = std::move(current_);
  current_ = std::move(next);
  old->StopChecks();
  for (auto& w : old->workers) w->BeginReloadDrain();
  old->drain_started_ms = uv_now(loop_);
  draining_gens_.push_back(std::move(old));
  RebuildCollector();
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(retire_timer_))) {
    uv_timer_start(
        retire_timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<DataPlane*>(t->data);
          base::Guard(base::Component::kLifecycle, "retire generation",
                      [&] { self->OnRetireTick(); });
        },
        kRetireTickMs, kRetireTickMs);
  }
  return base::OkStatus();
}

void DataPlane::OnRetireTick() {
  // Two ticks per generation: Stop() (its health checks' handles close on this loop),
  // then, once the loop has run those closes, its counts are folded into carry_ and it
  // goes.
  bool changed = false;
  for (auto it = draining_gens_.begin(); it != draining_gens_.end();) {
    Generation& g = **it;
    if (g.stopped) {
      for (auto& s : g.stats) {
        metrics::RequestStatsCollector::Fold(*s, *g.layout, carry_.get(), *current_->layout);
      }
      KeepRetiredRequests(g);
      it = draining_gens_.erase(it);
      changed = true;
      continue;
    }
    const uint64_t waited = uv_now(loop_) - g.drain_started_ms;
    const bool idle = g.connections() == 0;
    if (idle || waited >= static_cast<uint64_t>(g.config.proxy.drain_timeout.count())) {
      if (!idle) base::LogWarning("reload: drain timeout; closing the old connections left");
      g.Stop();
    }
    ++it;
  }
  if (changed) RebuildCollector();
  if (draining_gens_.empty()) uv_timer_stop(retire_timer_);
}

void DataPlane::BeginDrain() {
  draining_ = true;
  for (auto& w : current_->workers) w->BeginDrain();
}

void DataPlane::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto* g : {current_.get()}) {
    for (auto& w : g->workers) w->Stop();
  }
  for (auto& g : draining_gens_) {
    if (!g->stopped) {
      for (auto& w : g->workers) w->Stop();
    }
  }
  auto join = [this](Generation& g) {
    if (g.stopped) return;
    g.stopped = true;
    for (auto& w : g.workers) {
      w->Join();
      if (started_ && w->loop_close_result() != 0) {
        base::LogWarning("a worker loop closed with handles left open");
      }
    }
    g.StopChecks();
  };
  join(*current_);
  for (auto& g : draining_gens_) join(*g);
  if (retire_timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(retire_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    retire_timer_ = nullptr;
  }
}

void DataPlane::ReopenAccessLogs() {
  for (auto& w : current_->workers) w->ReopenAccessLog();
  for (auto& g : draining_gens_) {
    for (auto& w : g->workers) w->ReopenAccessLog();
  }
}

int DataPlane::connections() const {
  int n = current_->connections();
  for (const auto& g : draining_gens_) n += g->connections();
  return n;
}

int DataPlane::workers() const { return workers_; }

int DataPlane::generations() const { return 1 + static_cast<int>(draining_gens_.size()); }

const Topology& DataPlane::topology() const { return *current_->topology; }

const std::vector<config::ListenerConfig>& DataPlane::listeners() const {
  return current_->config.listeners;
}

const HealthChecker& DataPlane::health() const { return *current_->health; }
HealthChecker& DataPlane::health() { return *current_->health; }

const EndpointResolver& DataPlane::resolver() const { return *current_->resolver; }

namespace {

// Appends `g`'s rings to `out`, named with its own topology (a record holds indices).
void AppendNamed(const Generation& g, std::vector<DataPlane::RecentRequest>* out) {
  std::vector<RequestRecord> records;
  for (const auto& r : g.recent) r->Snapshot(&records);
  const Topology& t = *g.topology;
  for (const RequestRecord& r : records) {
    const UpstreamState& us = t.upstream(r.upstream);
    out->push_back({r, us.config.name, r.endpoint >= 0 ? us.endpoints[r.endpoint]->label : "",
                    t.route_names()[r.route]});
  }
}

void NewestFirst(std::vector<DataPlane::RecentRequest>* all, size_t limit) {
  std::sort(all->begin(), all->end(),
            [](const DataPlane::RecentRequest& a, const DataPlane::RecentRequest& b) {
              return a.record.unix_time > b.record.unix_time;
            });
  if (all->size() > limit) all->resize(limit);
}

}  // namespace

void DataPlane::KeepRetiredRequests(const Generation& g) {
  AppendNamed(g, &retired_requests_);
  NewestFirst(&retired_requests_, current_->config.proxy.recent_requests);
}

std::vector<DataPlane::RecentRequest> DataPlane::RecentRequests(size_t limit) const {
  std::vector<RecentRequest> all = retired_requests_;
  AppendNamed(*current_, &all);
  for (const auto& g : draining_gens_) AppendNamed(*g, &all);
  NewestFirst(&all, limit);
  return all;
}

}  // namespace speedmon::proxy
