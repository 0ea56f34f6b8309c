// The daemon's wiring and lifecycle: start, signals, reload, drain, stop. See daemon.h.
#include "app/daemon.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_type.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <limits>
#include <thread>

#include "admin/api.h"
#include "admin/pool_api.h"
#include "admin/server.h"
#include "admin/timeseries.h"
#include "alerting/service.h"
#include "base/boundary.h"
#include "base/build_info.h"
#include "base/log.h"
#include "metrics/exposition.h"
#include "metrics/family.h"
#include "metrics/system_collector.h"
#include "proxy/data_plane.h"
#include "speedrun/service.h"
#include "sysprobe/from_config.h"

namespace speedmon::app {

class DaemonImpl {
 public:
  explicit DaemonImpl(config::Config config);
  ~DaemonImpl();
  base::Status Start();
  int Run();

 private:
  base::Status StartComponents();
  void StartSignals();
  // Undoes a Start() that failed half way: closes what was opened, runs the loop dry.
  void AbortStart();
  void BeginDrain();
  void OnDrainTick();
  void FinishShutdown();
  void Reload();
  void OnHealthChange();
  // (Re)starts eval_timer_ at config_.alerting.evaluation_interval.
  void StartEvaluationTimer();
  // Appends every family /metrics shows but the request statistics' (metrics::WriteScrape
  // writes those from the shards itself, ahead of these, and OpenMetrics' "# EOF" after).
  void AppendMetrics(metrics::Format format, metrics::TextBuffer* out) const;

  // The running config. The parts SIGHUP may change ([log], [alerting], [sla], the admin
  // token) are only read on the main thread; every component keeps its own copy of what
  // it was built from, so a reload never writes under another thread.
  config::Config config_;
  uv_loop_t loop_;
  // Main-thread metrics (health, reloads), read by the alert engine through the registry
  // and written into a scrape through the set.
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  metrics::FamilySet families_{*registry_};
  metrics::Family<prometheus::Counter>* reloads_ = nullptr;  // {result}
  std::shared_ptr<metrics::SystemCollector> system_;
  std::unique_ptr<speedrun::Service> speedrun_;
  std::unique_ptr<alerting::Service> alerts_;
  std::unique_ptr<proxy::DataPlane> data_plane_;
  std::unique_ptr<admin::EventLog> events_;
  std::unique_ptr<admin::TimeseriesSampler> timeseries_;  // the status page's charts
  std::unique_ptr<admin::Api> api_;
  std::unique_ptr<admin::Server> admin_;

  uv_signal_t sig_term_, sig_int_, sig_hup_, sig_usr1_;
  uv_timer_t drain_timer_;
  uv_timer_t eval_timer_;
  bool draining_ = false;
  uint64_t drain_started_ms_ = 0;
  std::vector<proxy::EndpointHealth> logged_health_;  // what OnHealthChange last logged
  int exit_code_ = 0;
};

DaemonImpl::DaemonImpl(config::Config cfg) : config_(std::move(cfg)) {
  if (config_.proxy.workers <= 0) {
    config_.proxy.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  uv_loop_init(&loop_);
  reloads_ = &families_.AddCounter("pokemon_speedrun_config_reloads_total",
                                   "SIGHUP config reloads by result (success, failure).");
  reloads_->Add({{"result", "success"}});
  reloads_->Add({{"result", "failure"}});
  families_
      .AddGauge("pokemon_speedrun_build_info", "Always 1; the labels say which speedmon this is.")
      .Add({{"version", std::string(base::Version())}, {"revision", std::string(base::Revision())}})
      .Set(1);
}

DaemonImpl::~DaemonImpl() {
  data_plane_.reset();  // joins the workers if they still run
  uv_loop_close(&loop_);
}

base::Status DaemonImpl::Start() {
  base::Status status = StartComponents();
  if (!status.ok()) {
    AbortStart();
    return status;
  }
  StartSignals();
  std::string admin_at =
      "admin on " + config_.admin.address.host + ":" + std::to_string(admin_->port());
  if (config_.monitor_only()) {
    base::LogInfo(
        "monitor-only: the config has no [[listeners]], so nothing is proxied; "
        "experiment ingest, host and process metrics, health checks and alerts run; " +
        admin_at);
    return base::OkStatus();
  }
  std::string listen_list;
  for (const auto& l : config_.listeners) {
    listen_list += " " + l.name + "=" + l.address.ToString();
  }
  base::LogInfo("listening:" + listen_list + "; " + admin_at + "; " +
                std::to_string(data_plane_->workers()) + " workers");
  return base::OkStatus();
}

namespace {
base::StatusOr<std::vector<metrics::WatchedProcess>> WatchersFor(
    const std::vector<config::ProcessConfig>& processes) {
  std::vector<metrics::WatchedProcess> watched;
  for (const auto& p : processes) {
    metrics::WatchedProcess w;
    w.name = p.name;
    w.selector = sysprobe::SelectorText(sysprobe::SelectorFrom(p));
    base::StatusOr<sysprobe::ProcessWatcher> watcher =
        sysprobe::ProcessWatcher::Create(sysprobe::SelectorFrom(p));
    if (!watcher.ok()) return watcher.status().WithContext("[[processes]] " + p.name);
    w.watcher = std::make_unique<sysprobe::ProcessWatcher>(std::move(watcher).value());
    watched.push_back(std::move(w));
  }
  return watched;
}
}  // namespace

base::Status DaemonImpl::StartComponents() {
  base::StatusOr<std::vector<metrics::WatchedProcess>> watchers = WatchersFor(config_.processes);
  if (!watchers.ok()) return watchers.status();
  std::vector<metrics::WatchedProcess> watched = std::move(watchers).value();
  system_ = std::make_shared<metrics::SystemCollector>(
      std::make_shared<sysprobe::SystemSampler>(sysprobe::SamplerOptionsFrom(config_.sysprobe)),
      std::move(watched));
  system_->sampler().Get();  // the first CPU figure needs a baseline: take it now

  speedrun::ServiceLimits limits;
  limits.max_body_bytes = config_.admin.max_body_bytes;
  speedrun_ = std::make_unique<speedrun::Service>(config_.speedrun, config_.sla,
                                                  std::make_shared<prometheus::Registry>(), limits);
  if (base::Status s = speedrun_->Open(); !s.ok()) return s.WithContext("speedrun store");

  auto source = std::make_shared<alerting::CollectablesValueSource>();
  alerting::ServiceOptions alert_options;
  alert_options.external_url = "http://" + config_.admin.address.ToString();
  // Rule changes made through the API live next to the store (see alerting/rule_store.h).
  if (!config_.speedrun.store_path.empty()) {
    alert_options.rules_path = config_.speedrun.store_path + ".alert-rules.json";
  }
  base::StatusOr<std::unique_ptr<alerting::Service>> alerts =
      alerting::Service::Create(config_.alerting, source, alert_options);
  if (!alerts.ok()) return alerts.status().WithContext("alerting");
  alerts_ = std::move(alerts).value();

  // The admin address first: a worker that was created holds its listening sockets until
  // its loop has run, so the data plane comes last of what can fail.
  admin_ =
      std::make_unique<admin::Server>(&loop_, config_.admin, config_.proxy.max_header_bytes,
                                      [this](const admin::Request& req, admin::Responder respond) {
                                        api_->Handle(req, std::move(respond));
                                      });
  base::Status listening = admin_->Listen();
  if (!listening.ok()) return listening;
  base::StatusOr<std::unique_ptr<proxy::DataPlane>> dp =
      proxy::DataPlane::Create(config_, &loop_, families_, [this] {
        base::Guard(base::Component::kHealth, "health change", [&] { OnHealthChange(); });
      });
  if (!dp.ok()) return dp.status();
  data_plane_ = std::move(dp).value();

  events_ = std::make_unique<admin::EventLog>(families_, [this](const admin::PoolEvent& e) {
    proxy::HealthChecker& health = data_plane_->health();
    if (e.kind == admin::PoolEvent::Kind::kFailure) health.RecordReportedFailure(e.failure_type);
    if (e.startup_seconds) health.ObserveStartup(*e.startup_seconds);
  });
  timeseries_ = std::make_unique<admin::TimeseriesSampler>(
      &loop_, config_.admin.timeseries_interval, data_plane_.get(), system_.get(), speedrun_.get());

  admin::ApiParts parts;
  parts.config = &config_.admin;
  parts.events = events_.get();
  parts.data_plane = data_plane_.get();
  parts.system = system_.get();
  parts.speedrun = speedrun_.get();
  parts.alerts = alerts_.get();
  parts.timeseries = &timeseries_->ring();
  parts.append_metrics = [this](metrics::Format format, metrics::TextBuffer* out) {
    AppendMetrics(format, out);
  };
  parts.serving = [this] { return !draining_; };
  api_ = std::make_unique<admin::Api>(std::move(parts));

  source->Add(data_plane_->request_collectable());
  source->Add(system_);
  source->Add(registry_);
  source->Add(speedrun_->collectable());
  data_plane_->Start();
  OnHealthChange();
  return base::OkStatus();
}

void DaemonImpl::AbortStart() {
  if (data_plane_) data_plane_->Stop();
  if (admin_) admin_->Close([] {});
  if (speedrun_) speedrun_->Close();
  uv_run(&loop_, UV_RUN_DEFAULT);  // finishes the closes; nothing else is armed yet
  data_plane_.reset();
}

void DaemonImpl::StartSignals() {
  uv_timer_init(&loop_, &eval_timer_);
  eval_timer_.data = this;
  StartEvaluationTimer();
  timeseries_->Start();
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;

  uv_signal_init(&loop_, &sig_term_);
  uv_signal_init(&loop_, &sig_int_);
  uv_signal_init(&loop_, &sig_hup_);
  uv_signal_init(&loop_, &sig_usr1_);
  sig_term_.data = sig_int_.data = sig_hup_.data = sig_usr1_.data = this;
  uv_signal_start(
      &sig_usr1_,
      [](uv_signal_t* s, int) {
        auto* self = static_cast<DaemonImpl*>(s->data);
        base::Guard(base::Component::kLifecycle, "SIGUSR1", [&] {
          self->data_plane_->ReopenAccessLogs();
          if (!self->config_.proxy.access_log.empty()) {
            base::LogInfo("SIGUSR1: reopening the access log " + self->config_.proxy.access_log);
          }
        });
      },
      SIGUSR1);
  auto on_stop = [](uv_signal_t* s, int) {
    auto* self = static_cast<DaemonImpl*>(s->data);
    base::Guard(base::Component::kLifecycle, "SIGTERM", [&] { self->BeginDrain(); });
  };
  uv_signal_start(&sig_term_, on_stop, SIGTERM);
  uv_signal_start(&sig_int_, on_stop, SIGINT);
  uv_signal_start(
      &sig_hup_,
      [](uv_signal_t* s, int) {
        auto* self = static_cast<DaemonImpl*>(s->data);
        // A reload that throws keeps the running config, as a rejected file does.
        base::Guard(base::Component::kLifecycle, "SIGHUP", [&] { self->Reload(); });
      },
      SIGHUP);
}

void DaemonImpl::StartEvaluationTimer() {
  // Restarting an active uv timer replaces its period: the next round is one new
  // interval from now.
  uint64_t every = static_cast<uint64_t>(config_.alerting.evaluation_interval.count());
  uv_timer_start(
      &eval_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<DaemonImpl*>(t->data);
        base::Guard(base::Component::kAlerting, "rule evaluation",
                    [&] { self->alerts_->Evaluate(std::chrono::system_clock::now()); });
      },
      every, every);
}

int DaemonImpl::Run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

void DaemonImpl::BeginDrain() {
  if (draining_) return;
  draining_ = true;
  base::LogInfo("draining: no new connections; finishing in-flight requests");
  data_plane_->BeginDrain();
  drain_started_ms_ = uv_now(&loop_);
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<DaemonImpl*>(t->data);
        base::Guard(base::Component::kLifecycle, "drain", [&] { self->OnDrainTick(); });
      },
      20, 20);
}

void DaemonImpl::OnDrainTick() {
  bool all_done = data_plane_->connections() == 0;
  uint64_t waited = uv_now(&loop_) - drain_started_ms_;
  if (!all_done && waited < static_cast<uint64_t>(config_.proxy.drain_timeout.count())) return;
  if (!all_done) base::LogWarning("drain timeout: closing the remaining connections");
  FinishShutdown();
}

void DaemonImpl::FinishShutdown() {
  uv_timer_stop(&drain_timer_);
  data_plane_->Stop();
  timeseries_->Close();
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&drain_timer_), reinterpret_cast<uv_handle_t*>(&eval_timer_),
        reinterpret_cast<uv_handle_t*>(&sig_term_), reinterpret_cast<uv_handle_t*>(&sig_int_),
        reinterpret_cast<uv_handle_t*>(&sig_hup_), reinterpret_cast<uv_handle_t*>(&sig_usr1_)}) {
    uv_close(h, nullptr);
  }
  // Already stopping: a second SIGTERM/SIGINT must not kill the last flush.
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  speedrun_->Close();    // commits everything accepted and hands out its answers
  admin_->Close([] {});  // delivers those answers, then closes
  alerts_->WaitIdle(std::chrono::seconds(2));  // let queued notifications go out
  base::LogInfo("stopped");
}

void DaemonImpl::OnHealthChange() {
  bool any_checked = false;
  const proxy::HealthChecker& health = data_plane_->health();
  std::vector<proxy::EndpointHealth> now = health.Snapshot();
  for (size_t i = 0; i < now.size(); ++i) {
    const proxy::EndpointHealth& h = now[i];
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
  speedrun_->SetHealthyProcessRatio(any_checked
                                        ? 100.0 * health.healthy() / std::max(1, health.total())
                                        : std::numeric_limits<double>::quiet_NaN());
}

void DaemonImpl::Reload() {
  // Everything but the admin address, [proxy] workers and the store: a file that does
  // not load, or a listener that cannot be bound, is logged and counted and changes
  // nothing. The data plane goes first, being the part that can still fail.
  if (config_.source.empty() || config_.source == "<default>") {
    base::LogInfo("SIGHUP: running with the embedded default config; nothing to reload");
    return;
  }
  base::StatusOr<config::Config> r = config::LoadFromFile(config_.source);
  if (!r.ok()) {
    reloads_->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: config rejected, keeping the running one: " + r.status().message());
    return;
  }
  // The admin token changes at once (a rotated auth_token_file is read here), the
  // address only on restart: a file without a token is checked against the running one.
  const config::AdminConfig& admin = r->admin;
  if (admin.auth_token.empty() && !config_.admin.address.IsLoopback() &&
      !admin.allow_unauthenticated_writes) {
    reloads_->Add({{"result", "failure"}}).Increment();
    base::LogWarning(
        "SIGHUP: config rejected, keeping the running one: [admin].auth_token is "
        "empty and the admin address " +
        config_.admin.address.ToString() + " is not loopback");
    return;
  }
  base::StatusOr<std::vector<metrics::WatchedProcess>> watchers = WatchersFor(r->processes);
  if (!watchers.ok()) {
    reloads_->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: config rejected, keeping the running one: " +
                     watchers.status().message());
    return;
  }
  if (draining_) {
    base::LogInfo("SIGHUP: draining; the proxy keeps its config");
  } else if (base::Status dp = data_plane_->Reload(*r); !dp.ok()) {
    reloads_->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: config rejected, keeping the running one: " + dp.message());
    return;
  }
  system_->SetProcesses(std::move(watchers).value());
  // Load ran alerting's own checks (config::CheckAlertRule, ParseHttpUrl), so this
  // refuses nothing a loaded file holds; it stays a guard, not a second validation.
  base::Status reloaded = alerts_->Reload(r->alerting, std::chrono::system_clock::now());
  if (!reloaded.ok()) {
    reloads_->Add({{"result", "failure"}}).Increment();
    base::LogWarning("SIGHUP: alerting config rejected, keeping the running one: " +
                     reloaded.message());
    return;
  }
  speedrun_->SetSlaConfig(r->sla);
  bool new_interval = r->alerting.evaluation_interval != config_.alerting.evaluation_interval;
  config_.alerting = r->alerting;
  config_.sla = r->sla;
  config_.log = r->log;
  config_.admin.auth_token = admin.auth_token;  // admin::Api reads it on this thread
  config_.admin.auth_token_file = admin.auth_token_file;
  config_.listeners = r->listeners;
  config_.upstreams = r->upstreams;
  config_.routes = r->routes;
  config_.processes = r->processes;
  const int workers = config_.proxy.workers;
  config_.proxy = r->proxy;
  config_.proxy.workers = workers;
  logged_health_.clear();  // endpoint indices are the new config's
  base::SetLogOptions(config_.log.format, config_.log.level);
  if (new_interval) StartEvaluationTimer();
  reloads_->Add({{"result", "success"}}).Increment();
  std::string listen_list;
  for (const auto& l : config_.listeners) {
    listen_list += " " + l.name + "=" + l.address.ToString();
  }
  base::LogInfo("SIGHUP: reloaded " + config_.source + ": listening:" + listen_list + "; " +
                std::to_string(config_.upstreams.size()) + " upstreams, " +
                std::to_string(config_.routes.size()) + " routes, " +
                std::to_string(config_.processes.size()) +
                " processes; the admin address, [proxy] workers and [speedrun] change on "
                "restart");
}

void DaemonImpl::AppendMetrics(metrics::Format format, metrics::TextBuffer* out) const {
  // Custom collectables as prometheus::MetricFamily; the registries' families (speedrun's,
  // then the main thread's) straight as text: see metrics/family.h.
  metrics::AppendFamilies(system_->Collect(), format, out);
  metrics::AppendFamilies(alerts_->collectable()->Collect(), format, out);
  speedrun_->AppendMetricsText(format, out);
  families_.AppendText(format, out);
  // A counter per component, written as AppendFamilies would a MetricFamily of them (the
  // name ends in _total, so the samples are named alike in both formats).
  constexpr std::string_view kErrors = "pokemon_speedrun_internal_errors_total";
  metrics::AppendFamilyHeader(
      kErrors,
      "Exceptions caught at a boundary (callback or thread top frame), by component; each "
      "answered one request, closed one connection or dropped one batch.",
      prometheus::MetricType::Counter, format, out);
  for (int c = 0; c < base::kComponentCount; ++c) {
    auto component = static_cast<base::Component>(c);
    out->Append(kErrors);
    out->Append("{component=\"");
    metrics::AppendEscaped(base::ComponentName(component), true, out);
    out->Append("\"} ");
    char* p = out->Reserve(metrics::kMaxNumberChars + 1);
    p = metrics::WriteCount(base::ExceptionCount(component), p);
    *p++ = '\n';
    out->Commit(p);
  }
}

Daemon::Daemon(config::Config config) : impl_(std::make_unique<DaemonImpl>(std::move(config))) {}
Daemon::~Daemon() = default;
base::Status Daemon::Start() { return impl_->Start(); }
int Daemon::Run() { return impl_->Run(); }

}  // namespace speedmon::app
