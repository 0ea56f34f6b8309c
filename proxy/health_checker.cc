// Active health checks on the main loop. See health_checker.h.
#include "proxy/health_checker.h"

#include <uv.h>

#include <algorithm>
#include <chrono>

#include "base/boundary.h"
#include "http/http_codec.h"

namespace speedmon::proxy {

using http::CodecHandler;
using http::HeadAction;
using http::HttpCodec;
using http::MessageHead;

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// One endpoint's checker: a timer between checks, and per check one connection that
// sends a GET and reads just enough to see the status line.
class EndpointChecker final : public CodecHandler {
 public:
  EndpointChecker(HealthCheckerImpl* owner, int upstream, int endpoint);
  void Start();
  void Stop();
  void OnAddresses(bool resolvable);
  void CarryOver(const EndpointChecker& previous);
  int upstream() const { return upstream_; }
  int endpoint() const { return endpoint_; }
  EndpointHealth health;

  HeadAction OnHead(const MessageHead& head) override {
    status_ = head.status;
    got_head_ = true;
    return HeadAction::kAbort;  // the status is all we need
  }
  bool OnBody(std::string_view) override { return true; }
  bool OnMessageComplete() override { return true; }

 private:
  static void OnTick(uv_timer_t* t);
  static void OnTimeout(uv_timer_t* t);
  static void OnConnect(uv_connect_t* req, int status);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  template <class F>
  static void Guarded(EndpointChecker* self, F&& f);
  void Connected(int status);
  void ConnectNext();    // to the endpoint's address next_address_
  void ConnectFailed();  // that address refused: the next one, or the check fails
  void Received(ssize_t n, const uv_buf_t* buf);
  void BeginCheck();
  void EndCheck(const char* result);  // "success", "timeout", "connect", "status", "resolve"
  void Publish(bool changed);         // the flag, the gauge, the counts
  void CloseConn();

  HealthCheckerImpl* owner_;
  int upstream_, endpoint_;
  uv_timer_t tick_;
  uv_timer_t timeout_;
  uv_tcp_t* conn_ = nullptr;  // one per check; freed in its close callback
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  std::string request_;
  std::unique_ptr<HttpCodec> codec_;
  char read_buf_[4096];
  bool in_check_ = false;
  bool got_head_ = false;
  int status_ = 0;
  uint32_t successes_in_row_ = 0, failures_in_row_ = 0;
  double pending_since_unix_ = 0;  // when the endpoint started (re)starting
  bool stopped_ = false;
  bool confirmed_once_ = false;  // passed healthy_threshold at least once
  bool resolved_once_ = false;   // had an address at least once
  bool got_bytes_ = false;
  // A name with several addresses passes when one of them answers: a check starts with
  // the address that answered last and moves on, within the check, past those that
  // refuse the connection (the data plane does the same per request).
  size_t next_address_ = 0;
  size_t connect_failures_ = 0;  // in this check
};

class HealthCheckerImpl {
 public:
  HealthCheckerImpl(uv_loop_t* loop, Topology* topology, const EndpointResolver* resolver,
                    metrics::FamilySet& families, std::function<void()> on_change)
      : loop(loop),
        topology(topology),
        resolver(resolver),
        on_change(std::move(on_change)),
        healthy_family(families.AddGauge("pokemon_speedrun_upstream_healthy",
                                         "1 when the endpoint passes its health checks, else 0.")),
        checks_family(
            families.AddCounter("pokemon_speedrun_health_checks_total",
                                "Health checks by result (success, timeout, connect, status).")),
        healthy_processes(families
                              .AddGauge("pokemon_speedrun_healthy_processes",
                                        "Emulator endpoints currently healthy.")
                              .Add({})),
        total_processes(
            families.AddGauge("pokemon_speedrun_total_processes", "Emulator endpoints configured.")
                .Add({})),
        startup(
            families
                .AddHistogram("pokemon_speedrun_process_startup_seconds",
                              "Time from an endpoint's first check, or its failure, to healthy.")
                .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 2.5, 5, 10, 15, 30,
                                                                 60, 120, 300})),
        failures_family(families.AddCounter(
            "pokemon_speedrun_process_failures_total",
            "Emulator process failures by kind: endpoints going from healthy to unhealthy "
            "(timeout, connect, status, resolve) and failures the pool manager reports (crash, "
            "exit, oom, hang, other).")) {
    for (std::string_view kind : kFailureTypes)
      failures_family.Add({{"failure_type", std::string(kind)}});
  }

  void Recount() {
    int healthy = 0, total = 0;
    for (auto& c : checkers) {
      ++total;
      healthy += c->health.healthy ? 1 : 0;
    }
    healthy_processes.Set(healthy);
    total_processes.Set(total);
  }

  uv_loop_t* loop;
  Topology* topology;
  const EndpointResolver* resolver;
  std::function<void()> on_change;
  metrics::Family<prometheus::Gauge>& healthy_family;
  metrics::Family<prometheus::Counter>& checks_family;
  prometheus::Gauge& healthy_processes;
  prometheus::Gauge& total_processes;
  prometheus::Histogram& startup;
  metrics::Family<prometheus::Counter>& failures_family;
  std::vector<std::unique_ptr<EndpointChecker>> checkers;
};

EndpointChecker::EndpointChecker(HealthCheckerImpl* owner, int upstream, int endpoint)
    : owner_(owner), upstream_(upstream), endpoint_(endpoint) {
  const UpstreamState& us = owner->topology->upstream(upstream);
  health.upstream = us.config.name;
  health.endpoint = us.endpoints[endpoint]->label;
  health.checked = us.config.health_check.enabled;
  health.healthy = true;
  request_ = "GET " + us.config.health_check.path + " HTTP/1.1\r\nHost: " + health.endpoint +
             "\r\nUser-Agent: speedmon-health-check\r\nConnection: close\r\n\r\n";
  uv_timer_init(owner->loop, &tick_);
  uv_timer_init(owner->loop, &timeout_);
  tick_.data = timeout_.data = this;
  owner->healthy_family.Add({{"upstream", health.upstream}, {"endpoint", health.endpoint}}).Set(1);
}

void EndpointChecker::Start() {
  if (!health.checked) return;
  pending_since_unix_ = UnixNow();
  uv_timer_start(&tick_, OnTick, 0, 0);  // the first check right away
}

void EndpointChecker::Stop() {
  stopped_ = true;
  CloseConn();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timeout_), nullptr);
}

void EndpointChecker::OnTick(uv_timer_t* t) {
  auto* self = static_cast<EndpointChecker*>(t->data);
  Guarded(self, [&] { self->BeginCheck(); });
}

void EndpointChecker::BeginCheck() {
  if (stopped_ || in_check_) return;
  in_check_ = true;
  got_head_ = false;
  got_bytes_ = false;
  status_ = 0;
  const UpstreamState& us = owner_->topology->upstream(upstream_);
  codec_ = std::make_unique<HttpCodec>(HttpCodec::Type::kResponse, this, 16384);
  uv_timer_start(&timeout_, OnTimeout, us.config.health_check.timeout.count(), 0);
  connect_failures_ = 0;
  ConnectNext();
}

void EndpointChecker::ConnectNext() {
  AddressTablePtr table = owner_->resolver->table();
  const std::vector<SocketAddress>& addrs = table->at(upstream_, endpoint_);
  if (addrs.empty()) {
    EndCheck("resolve");
    return;
  }
  CloseConn();  // the socket of an address that refused
  conn_ = new uv_tcp_t;
  uv_tcp_init(owner_->loop, conn_);
  conn_->data = this;
  const SocketAddress& a = addrs[next_address_ % addrs.size()];
  int rc =
      uv_tcp_connect(&connect_req_, conn_, reinterpret_cast<const sockaddr*>(&a.addr), OnConnect);
  if (rc != 0) ConnectFailed();
}

void EndpointChecker::ConnectFailed() {
  ++next_address_;  // the next check starts past it too
  if (++connect_failures_ < owner_->resolver->table()->at(upstream_, endpoint_).size()) {
    ConnectNext();
    return;
  }
  EndCheck("connect");
}

void EndpointChecker::OnConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<EndpointChecker*>(req->handle->data);
  if (status == UV_ECANCELED || self == nullptr || !self->in_check_) return;
  Guarded(self, [&] { self->Connected(status); });
}

void EndpointChecker::Connected(int status) {
  EndpointChecker* self = this;
  if (status < 0) {
    self->ConnectFailed();
    return;
  }
  uv_buf_t b = uv_buf_init(self->request_.data(), static_cast<unsigned>(self->request_.size()));
  uv_write(&self->write_req_, reinterpret_cast<uv_stream_t*>(self->conn_), &b, 1, OnWrite);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(self->conn_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<EndpointChecker*>(h->data);
        buf->base = c->read_buf_;
        buf->len = sizeof c->read_buf_;
      },
      OnRead);
}

void EndpointChecker::OnWrite(uv_write_t*, int) {}

void EndpointChecker::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<EndpointChecker*>(s->data);
  if (self == nullptr || !self->in_check_) return;
  Guarded(self, [&] { self->Received(n, buf); });
}

void EndpointChecker::Received(ssize_t n, const uv_buf_t* buf) {
  EndpointChecker* self = this;
  if (n > 0) {
    self->got_bytes_ = true;
    HttpCodec::Status st = self->codec_->Execute(buf->base, static_cast<size_t>(n)).status;
    if (st == HttpCodec::Status::kError || st == HttpCodec::Status::kHeadTooLarge) {
      self->EndCheck("status");  // it answered, but not with HTTP we can read
      return;
    }
  }
  if (self->got_head_) {
    const auto& expected =
        self->owner_->topology->upstream(self->upstream_).config.health_check.expected_statuses;
    bool ok = expected.empty()
                  ? (self->status_ >= 200 && self->status_ < 300)
                  : std::find(expected.begin(), expected.end(), self->status_) != expected.end();
    self->EndCheck(ok ? "success" : "status");
    return;
  }
  if (n < 0) self->EndCheck(self->got_bytes_ ? "status" : "connect");  // closed early
}

void EndpointChecker::OnTimeout(uv_timer_t* t) {
  auto* self = static_cast<EndpointChecker*>(t->data);
  Guarded(self, [&] {
    if (self->in_check_) self->EndCheck("timeout");
  });
}

template <class F>
void EndpointChecker::Guarded(EndpointChecker* self, F&& f) {
  // An exception abandons the check in progress (the endpoint's health stays as it was;
  // the next tick checks again), never the process.
  base::Guard(base::Component::kHealth, "health check", f, [self] {
    self->in_check_ = false;
    uv_timer_stop(&self->timeout_);
    self->CloseConn();
  });
}

void EndpointChecker::CloseConn() {
  if (conn_ == nullptr) return;
  conn_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(conn_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  conn_ = nullptr;
}

void EndpointChecker::EndCheck(const char* result) {
  in_check_ = false;
  uv_timer_stop(&timeout_);
  CloseConn();
  const auto& hc = owner_->topology->upstream(upstream_).config.health_check;
  const bool ok = std::string_view(result) == "success";
  ++health.checks;
  health.last_check_unix = UnixNow();
  health.last_result = result;
  health.last_status = status_;
  owner_->checks_family
      .Add({{"upstream", health.upstream}, {"endpoint", health.endpoint}, {"result", result}})
      .Increment();
  bool changed = false;
  if (ok) {
    failures_in_row_ = 0;
    ++successes_in_row_;
    if (pending_since_unix_ > 0 && successes_in_row_ >= hc.healthy_threshold) {
      // First confirmation since start, or back after a failure: one startup observed.
      double took = health.last_check_unix - pending_since_unix_;
      health.last_startup_seconds = took;
      owner_->startup.Observe(took);
      pending_since_unix_ = 0;
      confirmed_once_ = true;
      if (!health.healthy) {
        health.healthy = true;
        health.healthy_since_unix = health.last_check_unix;
        changed = true;
      }
    }
  } else {
    ++health.check_failures;
    successes_in_row_ = 0;
    ++failures_in_row_;
    if (health.healthy && failures_in_row_ >= hc.unhealthy_threshold) {
      health.healthy = false;
      // A failure is an emulator that was up going down; one still booting when speedmon
      // started (never confirmed up) is not one.
      if (confirmed_once_) {
        ++health.failures;
        owner_->failures_family.Add({{"failure_type", result}}).Increment();
      }
      // Startup runs from the failure, unless it was never confirmed up since its first
      // check: then from that first check.
      if (pending_since_unix_ == 0) pending_since_unix_ = health.last_check_unix;
      changed = true;
    } else if (!health.healthy && pending_since_unix_ == 0) {
      pending_since_unix_ = health.last_check_unix;
    }
  }
  Publish(changed);
  if (!stopped_) uv_timer_start(&tick_, OnTick, hc.interval.count(), 0);
}

void EndpointChecker::Publish(bool changed) {
  EndpointState& ep = *owner_->topology->upstream(upstream_).endpoints[endpoint_];
  ep.healthy.store(health.healthy, std::memory_order_relaxed);
  owner_->healthy_family.Add({{"upstream", health.upstream}, {"endpoint", health.endpoint}})
      .Set(health.healthy ? 1 : 0);
  if (changed) {
    owner_->Recount();
    if (owner_->on_change) owner_->on_change();
  }
}

void EndpointChecker::CarryOver(const EndpointChecker& previous) {
  health = previous.health;
  health.checked = owner_->topology->upstream(upstream_).config.health_check.enabled;
  successes_in_row_ = previous.successes_in_row_;
  failures_in_row_ = previous.failures_in_row_;
  pending_since_unix_ = previous.pending_since_unix_;
  confirmed_once_ = previous.confirmed_once_;
  resolved_once_ = previous.resolved_once_;
  if (!health.checked && !health.healthy && health.last_result != "resolve") {
    health.healthy = true;  // its checks were turned off: taken as healthy again
  }
  Publish(false);
}

void EndpointChecker::OnAddresses(bool resolvable) {
  // A failure is an endpoint that was up going down (as in EndCheck): one without checks
  // counts as up once it resolved.
  const bool was_up = health.checked ? confirmed_once_ : resolved_once_;
  if (resolvable) resolved_once_ = true;
  if (!resolvable && health.healthy) {
    health.healthy = false;
    health.last_result = "resolve";
    if (was_up) {
      ++health.failures;
      owner_->failures_family.Add({{"failure_type", "resolve"}}).Increment();
    }
    if (pending_since_unix_ == 0) pending_since_unix_ = UnixNow();
    successes_in_row_ = 0;
    Publish(true);
  } else if (resolvable && !health.healthy && !health.checked) {
    health.healthy = true;
    health.last_result = "";
    health.healthy_since_unix = UnixNow();
    pending_since_unix_ = 0;
    Publish(true);
  }
}

HealthChecker::HealthChecker(uv_loop_s* loop, Topology* topology, const EndpointResolver* resolver,
                             metrics::FamilySet& families, std::function<void()> on_change)
    : impl_(std::make_unique<HealthCheckerImpl>(loop, topology, resolver, families,
                                                std::move(on_change))) {
  for (size_t u = 0; u < topology->upstreams().size(); ++u) {
    for (size_t e = 0; e < topology->upstream(static_cast<int>(u)).endpoints.size(); ++e) {
      impl_->checkers.push_back(
          std::make_unique<EndpointChecker>(impl_.get(), static_cast<int>(u), static_cast<int>(e)));
    }
  }
  impl_->Recount();
  // The start's table: quietly (the owner learns the state from Snapshot()).
  std::function<void()> on_change_later = std::move(impl_->on_change);
  impl_->on_change = nullptr;
  OnAddresses(*resolver->table());
  impl_->on_change = std::move(on_change_later);
}

HealthChecker::~HealthChecker() = default;

void HealthChecker::CarryOver(const HealthChecker& previous) {
  for (auto& c : impl_->checkers) {
    for (const auto& p : previous.impl_->checkers) {
      if (p->health.upstream == c->health.upstream && p->health.endpoint == c->health.endpoint) {
        c->CarryOver(*p);
        break;
      }
    }
  }
  std::function<void()> on_change_later = std::move(impl_->on_change);
  impl_->on_change = nullptr;
  OnAddresses(*impl_->resolver->table());
  impl_->on_change = std::move(on_change_later);
  impl_->Recount();
}

void HealthChecker::OnAddresses(const AddressTable& table) {
  for (auto& c : impl_->checkers) {
    c->OnAddresses(!table.at(c->upstream(), c->endpoint()).empty());
  }
}

void HealthChecker::Start() {
  for (auto& c : impl_->checkers) c->Start();
}

void HealthChecker::Stop() {
  for (auto& c : impl_->checkers) c->Stop();
}

std::vector<EndpointHealth> HealthChecker::Snapshot() const {
  std::vector<EndpointHealth> out;
  for (const auto& c : impl_->checkers) out.push_back(c->health);
  return out;
}

int HealthChecker::healthy() const {
  int n = 0;
  for (const auto& c : impl_->checkers) n += c->health.healthy ? 1 : 0;
  return n;
}

int HealthChecker::total() const { return static_cast<int>(impl_->checkers.size()); }

bool HealthChecker::RecordReportedFailure(std::string_view failure_type) {
  for (std::string_view kind : kFailureTypes) {
    if (kind == failure_type) {
      impl_->failures_family.Add({{"failure_type", std::string(kind)}}).Increment();
      return true;
    }
  }
  return false;
}

void HealthChecker::ObserveStartup(double seconds) { impl_->startup.Observe(seconds); }

}  // namespace speedmon::proxy
