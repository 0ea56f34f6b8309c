// The daemon's lifecycle: start, signals, drain, stop. See server.h.
#include "proxy/server.h"

#include <prometheus/gauge.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <limits>
#include <thread>

#include "base/boundary.h"
#include "base/build_info.h"
#include "base/log.h"
#include "proxy/server_impl.h"
#include "sysprobe/from_config.h"

namespace speedmon::proxy {

namespace {
constexpr int kBacklog = 1024;
}  // namespace

ServerImpl::ServerImpl(config::Config cfg) : config(std::move(cfg)) {
  if (config.proxy.workers <= 0) {
    config.proxy.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  uv_loop_init(&loop);
  registry = std::make_shared<prometheus::Registry>();
  speedrun_registry = std::make_shared<prometheus::Registry>();
  reloads = &prometheus::BuildCounter()
                 .Name("pokemon_speedrun_config_reloads_total")
                 .Help("SIGHUP config reloads by result (success, failure).")
                 .Register(*registry);
  reloads->Add({{"result", "success"}});
  reloads->Add({{"result", "failure"}});
  prometheus::BuildGauge()
      .Name("pokemon_speedrun_build_info")
      .Help("Always 1; the labels say which speedmon this is.")
      .Register(*registry)
      .Add({{"version", std::string(base::Version())}, {"revision", std::string(base::Revision())}})
      .Set(1);
}

ServerImpl::~ServerImpl() {
  for (auto& w : workers) {
    w->Stop();
    w->Join();
  }
  uv_loop_close(&loop);
}

std::string ServerImpl::Start() {
  std::string error;
  topology = Topology::Build(config, &error);
  if (!topology) return error;
  const int n = config.proxy.workers;
  // Every listener is bound n times (SO_REUSEPORT): fds[listener][worker].
  std::vector<std::vector<int>> fds(config.listeners.size());
  for (size_t l = 0; l < config.listeners.size(); ++l) {
    error = BindReusePort(config.listeners[l].address, n, kBacklog, &fds[l]);
    if (!error.empty()) {
      for (auto& v : fds) {
        for (int fd : v) close(fd);
      }
      return "listener " + config.listeners[l].name + ": " + error;
    }
  }
  std::vector<metrics::WatchedProcess> watched;
  for (const auto& p : config.processes) {
    metrics::WatchedProcess w;
    w.name = p.name;
    w.watcher = std::make_unique<sysprobe::ProcessWatcher>(sysprobe::SelectorFrom(p));
    if (!w.watcher->valid()) return "[[processes]] " + p.name + ": " + w.watcher->error();
    watched.push_back(std::move(w));
  }
  system = std::make_shared<metrics::SystemCollector>(
      std::make_shared<sysprobe::SystemSampler>(sysprobe::SamplerOptionsFrom(config.sysprobe)),
      std::move(watched));
  system->sampler().Get();  // the first CPU figure needs a baseline: take it now, not in a scrape
  speedrun::ServiceLimits limits;
  limits.max_body_bytes = config.admin.max_body_bytes;
  speedrun =
      std::make_unique<speedrun::Service>(config.speedrun, config.sla, speedrun_registry, limits);
  if (auto err = speedrun->Open()) {
    for (auto& v : fds) {
      for (int fd : v) close(fd);
    }
    return "speedrun store: " + *err;
  }
  auto source = std::make_shared<alerting::CollectablesValueSource>();
  alerting::ServiceOptions alert_options;
  alert_options.external_url = "http://" + config.admin.address.ToString();
  alerts = alerting::Service::Create(config.alerting, source, alert_options, &error);
  if (!alerts) {
    for (auto& v : fds) {
      for (int fd : v) close(fd);
    }
    return "alerting: " + error;
  }
  admin = std::make_unique<AdminServer>(
      &loop, config.admin, config.proxy.max_header_bytes,
      [this](const AdminRequest& req, Responder respond) { HandleAdmin(req, std::move(respond)); });
  error = admin->Listen();
  if (!error.empty()) {
    for (auto& v : fds) {
      for (int fd : v) close(fd);
    }
    admin->Close([] {});
    uv_run(&loop, UV_RUN_NOWAIT);
    return error;
  }
  std::vector<const metrics::WorkerStats*> shards;
  for (int i = 0; i < n; ++i) {
    stats.push_back(std::make_unique<metrics::WorkerStats>(topology->layout()));
    shards.push_back(stats.back().get());
    uint32_t ring = config.proxy.recent_requests == 0
                        ? 0
                        : std::max<uint32_t>(1, config.proxy.recent_requests / n);
    recent.push_back(std::make_unique<RecentRequests>(ring));
  }
  request_stats = std::make_shared<metrics::RequestStatsCollector>(topology->layout(), shards);
  source->Add(request_stats);
  source->Add(system);
  source->Add(registry);
  source->Add(speedrun->collectable());
  for (int i = 0; i < n; ++i) {
    std::vector<int> mine;
    for (auto& v : fds) mine.push_back(v[i]);
    workers.push_back(std::make_unique<Worker>(i, config, topology.get(), stats[i].get(),
                                               recent[i].get(), std::move(mine)));
  }
  for (auto& w : workers) w->Start();
  listeners_up = true;
  health = std::make_unique<HealthChecker>(&loop, topology.get(), *registry, [this] {
    base::Guard(base::Component::kHealth, "health change", [&] { OnHealthChange(); });
  });
  health->Start();
  OnHealthChange();
  uv_timer_init(&loop, &eval_timer_);
  eval_timer_.data = this;
  StartEvaluationTimer();

  uv_signal_init(&loop, &sig_term_);
  uv_signal_init(&loop, &sig_int_);
  uv_signal_init(&loop, &sig_hup_);
  uv_signal_init(&loop, &sig_usr1_);
  sig_term_.data = sig_int_.data = sig_hup_.data = sig_usr1_.data = this;
  uv_signal_start(
      &sig_usr1_,
      [](uv_signal_t* s, int) {
        auto* self = static_cast<ServerImpl*>(s->data);
        base::Guard(base::Component::kLifecycle, "SIGUSR1", [&] {
          for (auto& w : self->workers) w->ReopenAccessLog();
          if (!self->config.proxy.access_log.empty()) {
            base::LogInfo("SIGUSR1: reopening the access log " + self->config.proxy.access_log);
          }
        });
      },
      SIGUSR1);
  auto on_stop = [](uv_signal_t* s, int) {
    auto* self = static_cast<ServerImpl*>(s->data);
    base::Guard(base::Component::kLifecycle, "SIGTERM", [&] { self->BeginDrain(); });
  };
  uv_signal_start(&sig_term_, on_stop, SIGTERM);
  uv_signal_start(&sig_int_, on_stop, SIGINT);
  uv_signal_start(
      &sig_hup_,
      [](uv_signal_t* s, int) {
        auto* self = static_cast<ServerImpl*>(s->data);
        // A reload that throws keeps the running config, as a rejected file does.
        base::Guard(base::Component::kLifecycle, "SIGHUP", [&] { self->Reload(); });
      },
      SIGHUP);
  uv_timer_init(&loop, &drain_timer_);
  drain_timer_.data = this;
  std::string listen_list;
  for (const auto& l : config.listeners) {
    listen_list += " " + l.name + "=" + l.address.ToString();
  }
  base::LogInfo("listening:" + listen_list + "; admin on " + config.admin.address.host + ":" +
                std::to_string(admin->port()) + "; " + std::to_string(n) + " workers");
  return "";
}

void ServerImpl::StartEvaluationTimer() {
  // Restarting an active uv timer replaces its period: the next round is one new
  // interval from now.
  uint64_t every = static_cast<uint64_t>(config.alerting.evaluation_interval.count());
  uv_timer_start(
      &eval_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ServerImpl*>(t->data);
        base::Guard(base::Component::kAlerting, "rule evaluation",
                    [&] { self->alerts->Evaluate(std::chrono::system_clock::now()); });
      },
      every, every);
}

int ServerImpl::Run() {
  uv_run(&loop, UV_RUN_DEFAULT);
  return exit_code_;
}

void ServerImpl::BeginDrain() {
  if (draining) return;
  draining = true;
  listeners_up = false;
  base::LogInfo("draining: no new connections; finishing in-flight requests");
  for (auto& w : workers) w->BeginDrain();
  drain_started_ms_ = uv_now(&loop);
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ServerImpl*>(t->data);
        base::Guard(base::Component::kLifecycle, "drain", [&] { self->OnDrainTick(); });
      },
      20, 20);
}

void ServerImpl::OnDrainTick() {
  bool all_done = true;
  for (auto& w : workers) all_done = all_done && w->connections() == 0;
  uint64_t waited = uv_now(&loop) - drain_started_ms_;
  if (!all_done && waited < static_cast<uint64_t>(config.proxy.drain_timeout.count())) return;
  if (!all_done) base::LogWarning("drain timeout: closing the remaining connections");
  FinishShutdown();
}

void ServerImpl::FinishShutdown() {
  uv_timer_stop(&drain_timer_);
  for (auto& w : workers) w->Stop();
  for (auto& w : workers) {
    w->Join();
    if (w->loop_close_result() != 0)
      base::LogWarning("a worker loop closed with handles left open");
  }
  workers.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&eval_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_term_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_int_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_hup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_usr1_), nullptr);
  // Already stopping: a second SIGTERM/SIGINT must not kill the last flush.
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  health->Stop();
  speedrun->Close();    // commits everything accepted and hands out its answers
  admin->Close([] {});  // delivers those answers, then closes
  alerts->WaitIdle(std::chrono::seconds(2));  // let queued notifications go out
  base::LogInfo("stopped");
}

void ServerImpl::OnHealthChange() {
  bool any_checked = false;
  std::vector<EndpointHealth> now = health->Snapshot();
  for (size_t i = 0; i < now.size(); ++i) {
    const EndpointHealth& h = now[i];
    if (!h.checked) continue;
    any_checked = true;
    // Only the endpoints whose state changed since the last call (one flapping endpoint
    // among a hundred is one line).
    bool changed = i >= logged_health_.size() || !logged_health_[i].checked ||
                   logged_health_[i].healthy != h.healthy;
    if (changed) {
      base::Log(h.healthy ? base::LogLevel::kInfo : base::LogLevel::kWarning,
                "endpoint " + h.upstream + "/" + h.endpoint +
                    (h.healthy ? " is healthy" : " is unhealthy (" + h.last_result + ")"));
    }
  }
  logged_health_ = std::move(now);
  // The SLA's system availability: the healthy share of checked endpoints.
  speedrun->SetHealthyProcessRatio(any_checked
                                       ? 100.0 * health->healthy() / std::max(1, health->total())
                                       : std::numeric_limits<double>::quiet_NaN());
}

void ServerImpl::Reload() {
  // The proxy's shape (listeners, upstreams, routes) is fixed at start: stats slots and
  // sockets are resolved once. SIGHUP validates the file; a bad one is logged and counted.
  if (config.source.empty() || config.source == "<default>") {
    base::LogInfo("SIGHUP: running with the embedded default config; nothing to reload");
    return;
  }
  config::LoadResult r = config::LoadFromFile(config.source);
  if (!r.ok()) {
    reloads->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: config rejected, keeping the running one: " + r.error->ToString());
    return;
  }
  // Load ran alerting's own checks (config::CheckAlertRule, ParseHttpUrl), so this
  // refuses nothing a loaded file holds; it stays a guard, not a second validation.
  std::string error;
  if (!alerts->Reload(r.config->alerting, std::chrono::system_clock::now(), &error)) {
    reloads->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: alerting config rejected, keeping the running one: " + error);
    return;
  }
  speedrun->SetSlaConfig(r.config->sla);
  bool new_interval = r.config->alerting.evaluation_interval != config.alerting.evaluation_interval;
  config.alerting = r.config->alerting;
  config.sla = r.config->sla;
  config.log = r.config->log;
  base::SetLogOptions(config.log.format, config.log.level);
  if (new_interval) StartEvaluationTimer();
  reloads->Add({{"result", "success"}}).Increment();
  base::LogInfo("SIGHUP: reloaded [log], [alerting] and [sla] from " + config.source +
                "; listeners, upstreams and routes change on restart");
}

Server::Server(config::Config config) : impl_(std::make_unique<ServerImpl>(std::move(config))) {}
Server::~Server() = default;
std::string Server::Start() { return impl_->Start(); }
int Server::Run() { return impl_->Run(); }

}  // namespace speedmon::proxy
