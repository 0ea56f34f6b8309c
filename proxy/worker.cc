// The worker thread: its loop, listeners, pools and write buffers. See worker.h/conn.h.
#include "proxy/worker.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "base/boundary.h"
#include "base/json.h"
#include "base/log.h"
#include "proxy/conn.h"

namespace speedmon::proxy {

namespace {
constexpr size_t kReadBufferSize = 64 * 1024;
// Recycled writes: enough for a busy loop, and at most 64 x 128 KiB held back (the 1 MiB
// bench showed a larger cache turning into resident memory).
constexpr int kMaxFreeWrites = 64;
constexpr size_t kMaxRecycledCapacity = 128 * 1024;
constexpr int kAcceptBatch = 64;
constexpr int kFdBackoffMs = 100;
constexpr uint64_t kFdLogIntervalMs = 5000;
// Descriptors kept for everything but proxied connections: admin connections (so that
// /healthz and /metrics answer while the proxy side is flooded), the store, /proc reads,
// health checks, notifiers, the access log.
constexpr int kReservedFds = 64;

// How many client connections the process can hold, all workers: RLIMIT_NOFILE (the soft
// limit is first raised to the hard one, as nginx's worker_rlimit_nofile would) less the
// descriptors open now and the reserve, halved because each client connection may hold an
// upstream connection. Computed once, when the first worker is built.
int ClientConnectionBudget() {
  static const int budget = [] {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::numeric_limits<int>::max();
    if (rl.rlim_cur < rl.rlim_max) {
      rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30)) {
      return std::numeric_limits<int>::max();
    }
    int open_now = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d)) open_now += e->d_name[0] != '.';
      closedir(d);
    }
    long left = static_cast<long>(rl.rlim_cur) - open_now - kReservedFds;
    return static_cast<int>(std::max(1L, left / 2));
  }();
  return budget;
}
}  // namespace

base::Status BindReusePort(const config::Address& address, int count, int backlog,
                           std::vector<int>* fds) {
  base::StatusOr<SocketAddress> resolved = Resolve(address);
  if (!resolved.ok()) return resolved.status();
  sockaddr_storage ss = resolved->addr;
  socklen_t len = resolved->len;
  for (int i = 0; i < count; ++i) {
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, backlog) != 0) {
      base::Status error = base::UnavailableError("cannot listen on " + address.ToString() + ": " +
                                                  std::strerror(errno));
      if (fd >= 0) close(fd);
      for (int f : *fds) close(f);
      fds->clear();
      return error;
    }
    if (i == 0) {
      // Port 0: the rest must share the port the kernel picked for the first.
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    }
    fds->push_back(fd);
  }
  return base::OkStatus();
}

WorkerImpl::WorkerImpl(int id, const config::Config& cfg, Topology* topo, AddressTablePtr addresses,
                       metrics::WorkerStats* st, RecentRequests* rec, std::vector<int> fds)
    : config_(cfg),
      topology_(topo),
      addresses_(std::move(addresses)),
      stats_(st),
      recent_(rec),
      ids_(std::random_device{}() ^ (uint64_t(id) << 32) ^ uint64_t(uv_hrtime())),
      id_(id),
      fds_(std::move(fds)),
      read_buf_(kReadBufferSize) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, OnAsync);
  async_.data = this;
  for (size_t u = 0; u < topo->upstreams().size(); ++u) {
    pools_.emplace_back(topo->upstream(static_cast<int>(u)).endpoints.size());
  }
  rr_next_.assign(topo->upstreams().size(), static_cast<uint32_t>(id));
  // Limits are per process in the config; each worker takes its share (rounded up).
  int workers = std::max(1, cfg.proxy.workers);
  int64_t limit = cfg.proxy.max_connections;
  const int budget = ClientConnectionBudget();
  if (budget < limit) {
    limit = budget;
    static std::atomic<bool> logged{false};  // once per process, not per reload
    if (id == 0 && !logged.exchange(true)) {
      base::LogInfo("max_connections " + std::to_string(cfg.proxy.max_connections) +
                    " is more than RLIMIT_NOFILE allows; accepting pauses at " +
                    std::to_string(budget) +
                    " client connections (raise the limit, e.g. systemd's LimitNOFILE=)");
    }
  }
  max_downstream_ = static_cast<int>(std::max<int64_t>(1, (limit + workers - 1) / workers));
  OpenAccessLog();
  uv_timer_init(&loop_, &access_timer_);
  access_timer_.data = this;
  if (!cfg.proxy.access_log.empty()) {
    uv_timer_start(
        &access_timer_, [](uv_timer_t* t) { static_cast<WorkerImpl*>(t->data)->FlushAccessLog(); },
        1000, 1000);
  }
  uv_timer_init(&loop_, &accept_timer_);
  accept_timer_.data = this;
  for (size_t i = 0; i < fds_.size(); ++i) {
    auto* l = new Listener;
    l->fd = fds_[i];
    l->index = static_cast<int>(i);
    l->w = this;
    uv_poll_init_socket(&loop_, &l->poll, l->fd);
    l->poll.data = l;
    uv_poll_start(&l->poll, UV_READABLE, OnListenerReadable);
    listeners_.push_back(l);
  }
}

void WorkerImpl::OpenAccessLog() {
  const std::string& log = config_.proxy.access_log;
  if (log.empty()) return;
  if (log == "-") {
    access_fd_ = STDOUT_FILENO;
    return;
  }
  access_fd_ = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  access_fd_owned_ = access_fd_ >= 0;
  if (access_fd_ < 0) {
    base::LogError("cannot open access log " + log + ": " + std::strerror(errno));
  }
}

void WorkerImpl::ReopenAccessLog() {
  // SIGUSR1 after logrotate moved the file: what is buffered goes to the old file, the
  // next lines to a new one at the configured path.
  FlushAccessLog();
  if (access_fd_owned_) close(access_fd_);
  access_fd_ = -1;
  access_fd_owned_ = false;
  OpenAccessLog();
}

void WorkerImpl::FlushAccessLog() {
  if (access_fd_ < 0 || access_buf_.empty()) return;
  // Whole lines in one write: O_APPEND keeps lines from several workers apart.
  size_t off = 0;
  while (off < access_buf_.size()) {
    ssize_t n = write(access_fd_, access_buf_.data() + off, access_buf_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full disk drops log lines, never requests
    off += static_cast<size_t>(n);
  }
  access_buf_.clear();
}

void WorkerImpl::AccessLog(const RequestRecord& r, std::string_view client_ip) {
  auto str = [this](std::string_view v) { base::AppendJsonString(v, &access_buf_); };
  const UpstreamState& us = topology_->upstream(r.upstream);
  char num[64];
  std::snprintf(num, sizeof num, "{\"time\":%.6f,\"client\":", r.unix_time);
  access_buf_.append(num);
  str(client_ip);
  access_buf_.append(",\"upstream\":");
  str(us.config.name);
  access_buf_.append(",\"endpoint\":");
  if (r.endpoint >= 0) {
    str(us.endpoints[r.endpoint]->label);
  } else {
    access_buf_.append("null");
  }
  access_buf_.append(",\"route\":");
  str(topology_->route_names()[r.route]);
  access_buf_.append(",\"method\":");
  str(metrics::MethodName(static_cast<metrics::Method>(r.method)));
  access_buf_.append(",\"path\":");
  str(r.path_view());
  std::snprintf(num, sizeof num, ",\"status\":%d,\"duration_ms\":%.3f,", r.status,
                static_cast<double>(r.duration_ns) / 1e6);
  access_buf_.append(num);
  std::snprintf(num, sizeof num, "\"request_bytes\":%llu,\"response_bytes\":%llu,",
                static_cast<unsigned long long>(r.request_bytes),
                static_cast<unsigned long long>(r.response_bytes));
  access_buf_.append(num);
  access_buf_.append("\"request_id\":");
  str(r.id_view());
  access_buf_.append("}\n");
  if (access_buf_.size() >= 32 * 1024) FlushAccessLog();
}

WorkerImpl::~WorkerImpl() {
  FlushAccessLog();
  if (access_fd_owned_) close(access_fd_);
  while (free_writes_ != nullptr) {
    WriteReq* n = free_writes_->next_free;
    delete free_writes_;
    free_writes_ = n;
  }
}

void WorkerImpl::Run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  loop_close_result_ = uv_loop_close(&loop_);
}

void WorkerImpl::OnListenerReadable(uv_poll_t* p, int status, int) {
  auto* l = static_cast<Listener*>(p->data);
  if (status < 0) return;
  base::Guard(base::Component::kProxy, "accept", [&] { l->w->AcceptFrom(l); });
}

void WorkerImpl::AcceptFrom(Listener* l) {
  // A bounded batch per wake-up, so one busy listener cannot starve the loop.
  for (int i = 0; i < kAcceptBatch && !draining_; ++i) {
    if (connections_.load(std::memory_order_relaxed) >= max_downstream_) {
      PauseAccepting(metrics::AcceptPause::kMaxConnections);
      return;
    }
    int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: the connection stays in the kernel's backlog.
        // Pause briefly rather than spin on a readable socket that cannot be accepted.
        uint64_t now = uv_now(&loop_);
        if (last_fd_log_ms_ == 0 || now - last_fd_log_ms_ >= kFdLogIntervalMs) {
          last_fd_log_ms_ = now;
          base::LogWarning("worker " + std::to_string(id_) + ": accept: " + std::strerror(err) +
                           "; pausing accepts for " + std::to_string(kFdBackoffMs) +
                           " ms (open client connections: " +
                           std::to_string(connections_.load(std::memory_order_relaxed)) + ")");
        }
        PauseAccepting(metrics::AcceptPause::kFdLimit);
        uv_timer_start(
            &accept_timer_,
            [](uv_timer_t* t) { static_cast<WorkerImpl*>(t->data)->ResumeAccepting(); },
            kFdBackoffMs, 0);
        return;
      }
      continue;  // ECONNABORTED and the like: that client is gone, try the next one
    }
    auto* ds = new DownstreamConn(this, l->index);
    ds->LinkInto(&conns_);
    connections_.fetch_add(1, std::memory_order_relaxed);
    stats_->ConnectionsAdd(1);
    if (!ds->Adopt(fd)) ds->Close();
  }
}

void WorkerImpl::PauseAccepting(metrics::AcceptPause reason) {
  if (accept_paused_) return;
  accept_paused_ = true;
  stats_->RecordAcceptPause(reason);
  for (Listener* l : listeners_) uv_poll_stop(&l->poll);
}

void WorkerImpl::ResumeAccepting() {
  if (!accept_paused_ || draining_) return;
  accept_paused_ = false;
  for (Listener* l : listeners_) uv_poll_start(&l->poll, UV_READABLE, OnListenerReadable);
}

void WorkerImpl::ConnClosed(DownstreamConn* ds) {
  ds->UnlinkFrom(&conns_);
  delete ds;
  int left = connections_.fetch_sub(1, std::memory_order_relaxed) - 1;
  stats_->ConnectionsAdd(-1);
  // Below the limit again: accept (a descriptor shortage waits for its timer).
  if (accept_paused_ && left < max_downstream_ &&
      !uv_is_active(reinterpret_cast<uv_handle_t*>(&accept_timer_))) {
    ResumeAccepting();
  }
  if (draining_) MaybeFinish();
}

int WorkerImpl::PickEndpoint(int upstream, uint64_t tried) {
  const UpstreamState& us = topology_->upstream(upstream);
  const int n = static_cast<int>(us.endpoints.size());
  const uint32_t start = rr_next_[upstream]++;
  int best = -1;
  for (int i = 0; i < n; ++i) {
    int e = static_cast<int>((start + static_cast<uint32_t>(i)) % static_cast<uint32_t>(n));
    if (!us.endpoints[e]->healthy.load(std::memory_order_relaxed)) continue;
    if (addresses_->at(upstream, e).empty()) continue;  // its name does not resolve now
    if (tried & (uint64_t{1} << (e < 63 ? e : 63))) continue;
    if (us.config.load_balancing == config::LoadBalancing::kRoundRobin) return e;
    if (best < 0 || pools_[upstream][e].active_requests < pools_[upstream][best].active_requests) {
      best = e;
    }
  }
  return best;
}

UpstreamConn* WorkerImpl::Acquire(DownstreamConn* ds, int upstream, int endpoint,
                                  const SocketAddress* avoid) {
  EndpointPool& pool = pools_[upstream][endpoint];
  ++pool.active_requests;
  if (pool.idle != nullptr) {
    UpstreamConn* up = pool.idle;
    up->LeavePool(&pool.idle);
    --pool.idle_count;
    up->Attach(ds);
    return up;
  }
  const auto& ucfg = topology_->upstream(upstream).config;
  int limit = static_cast<int>((ucfg.max_connections + std::max(1, config_.proxy.workers) - 1) /
                               std::max(1, config_.proxy.workers));
  const std::vector<SocketAddress>& addrs = addresses_->at(upstream, endpoint);
  if (pool.open < limit && !addrs.empty()) {
    const SocketAddress* addr = &addrs[pool.next_address++ % addrs.size()];
    if (avoid != nullptr && addrs.size() > 1 && *addr == *avoid) {
      addr = &addrs[pool.next_address++ % addrs.size()];
    }
    auto* up = new UpstreamConn(this, upstream, endpoint, *addr);
    ++pool.open;
    up->Attach(ds);
    up->Connect();
    return up;
  }
  pool.waiters.push_back(ds);
  return nullptr;
}

void WorkerImpl::Release(UpstreamConn* up, bool reusable) {
  up->DropRequest();
  if (!reusable || !addresses_->Contains(up->upstream(), up->endpoint(), up->address().addr,
                                         up->address().len)) {
    up->Close();
    return;
  }
  EndpointPool& pool = pools_[up->upstream()][up->endpoint()];
  up->PrepareForReuse();
  while (!pool.waiters.empty()) {
    DownstreamConn* ds = pool.waiters.front();
    pool.waiters.pop_front();
    ++pool.active_requests;
    up->Attach(ds);
    ds->AttachUpstream(up);
    return;
  }
  up->EnterPool(&pool.idle);  // starts its lazy idle timer
  ++pool.idle_count;
}

void WorkerImpl::RemoveWaiter(DownstreamConn* ds) {
  for (auto& per_upstream : pools_) {
    for (auto& pool : per_upstream) {
      for (auto it = pool.waiters.begin(); it != pool.waiters.end(); ++it) {
        if (*it == ds) {
          pool.waiters.erase(it);
          --pool.active_requests;
          return;
        }
      }
    }
  }
}

void WorkerImpl::ConnClosing(UpstreamConn* up) {
  EndpointPool& pool = pools_[up->upstream()][up->endpoint()];
  if (up->in_pool()) {
    up->LeavePool(&pool.idle);
    --pool.idle_count;
  }
  --pool.open;
  // A slot is free: the first waiting request gets a fresh connection.
  if (!pool.waiters.empty() && !draining_) {
    DownstreamConn* ds = pool.waiters.front();
    pool.waiters.pop_front();
    --pool.active_requests;  // Acquire counts it again
    UpstreamConn* fresh = Acquire(ds, up->upstream(), up->endpoint());
    if (fresh != nullptr) ds->AttachUpstream(fresh);
  }
  if (draining_) MaybeFinish();
}

bool WorkerImpl::SubmitWrite(uv_stream_t* stream, WriteReq* wr, uv_write_cb cb) {
  uv_buf_t b = uv_buf_init(wr->data.data(), static_cast<unsigned>(wr->data.size()));
  int n = uv_try_write(stream, &b, 1);
  if (n == static_cast<int>(b.len)) {
    FreeWrite(wr);
    return false;
  }
  if (n > 0) b = uv_buf_init(b.base + n, b.len - static_cast<unsigned>(n));
  // EAGAIN (or an error, which uv_write reports through cb): queue the rest.
  if (uv_write(&wr->req, stream, &b, 1, cb) != 0) {
    FreeWrite(wr);
    return false;
  }
  return true;
}

WriteReq* WorkerImpl::NewWrite() {
  if (free_writes_ == nullptr) return new WriteReq;
  WriteReq* wr = free_writes_;
  free_writes_ = wr->next_free;
  --free_write_count_;
  wr->data.clear();
  return wr;
}

void WorkerImpl::FreeWrite(WriteReq* wr) {
  // Keep a bounded number, and none with a huge buffer (a 10 MB write stays rare).
  if (free_write_count_ >= kMaxFreeWrites || wr->data.capacity() > kMaxRecycledCapacity) {
    delete wr;
    return;
  }
  wr->next_free = free_writes_;
  free_writes_ = wr;
  ++free_write_count_;
}

void WorkerImpl::OnAsync(uv_async_t* a) {
  WorkerImpl* w = static_cast<WorkerImpl*>(a->data);
  int cmd = w->command_.load(std::memory_order_acquire);
  base::Guard(base::Component::kLifecycle, "worker command", [&] {
    if (w->reopen_log_.exchange(false, std::memory_order_acq_rel)) w->ReopenAccessLog();
    AddressTablePtr addresses;
    {
      std::lock_guard<std::mutex> lock(w->async_mu_);
      addresses = std::move(w->posted_addresses_);
    }
    if (addresses) w->SetAddresses(std::move(addresses));
    if (cmd == 2) {
      w->StopNow();
    } else if (cmd == 1) {
      w->BeginDrain();
    } else if (cmd == 3) {
      w->BeginDrain(/*reload=*/true);
    }
  });
}

void WorkerImpl::CloseListeners() {
  for (Listener* l : listeners_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), [](uv_handle_t* h) {
      auto* l = static_cast<Listener*>(h->data);
      close(l->fd);
      delete l;
    });
  }
  listeners_.clear();
  uv_timer_stop(&accept_timer_);
}

void WorkerImpl::BeginDrain(bool reload) {
  if (draining_) return;
  draining_ = true;
  CloseListeners();
  if (!reload) {
    CloseIdleConnections();
    return;
  }
  // A reload: every connection is closed after a response that says so (the next
  // request is answered with Connection: close); one that stays idle is closed after
  // kReloadIdleGraceMs, as by a short idle_timeout.
  reload_draining_ = true;
  for (DownstreamConn* ds = conns_; ds != nullptr; ds = ds->next_conn()) {
    ds->ShortenIdle(kReloadIdleGraceMs);
  }
  MaybeFinish();
}

void WorkerImpl::CloseIdleConnections() {
  for (DownstreamConn* ds = conns_; ds != nullptr;) {
    DownstreamConn* next = ds->next_conn();
    ds->MaybeCloseIdle();
    ds = next;
  }
  MaybeFinish();
}

void WorkerImpl::StopNow() {
  draining_ = true;
  CloseListeners();
  for (DownstreamConn* ds = conns_; ds != nullptr;) {
    DownstreamConn* next = ds->next_conn();
    ds->Close();
    ds = next;
  }
  MaybeFinish();
}

void WorkerImpl::MaybeFinish() {
  if (conns_ != nullptr || finishing_) return;
  finishing_ = true;
  for (auto& per_upstream : pools_) {
    for (auto& pool : per_upstream) {
      while (pool.idle != nullptr) pool.idle->Close();  // Close unlinks it
    }
  }
  FlushAccessLog();
  uv_close(reinterpret_cast<uv_handle_t*>(&access_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&accept_timer_), nullptr);
  std::lock_guard<std::mutex> lock(async_mu_);
  async_closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void WorkerImpl::PostDrain() {
  std::lock_guard<std::mutex> lock(async_mu_);
  if (async_closed_) return;
  int expected = 0;  // a stop posted before stays a stop
  command_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel);
  uv_async_send(&async_);
}

void WorkerImpl::PostReloadDrain() {
  std::lock_guard<std::mutex> lock(async_mu_);
  if (async_closed_) return;
  int expected = 0;
  command_.compare_exchange_strong(expected, 3, std::memory_order_acq_rel);
  uv_async_send(&async_);
}

void WorkerImpl::PostStop() {
  std::lock_guard<std::mutex> lock(async_mu_);
  if (async_closed_) return;
  command_.store(2, std::memory_order_release);
  uv_async_send(&async_);
}

void WorkerImpl::SetAddresses(AddressTablePtr addresses) {
  addresses_ = std::move(addresses);
  // Idle connections to an address no longer listed close now; busy ones at Release.
  for (size_t u = 0; u < pools_.size(); ++u) {
    for (size_t e = 0; e < pools_[u].size(); ++e) {
      std::vector<UpstreamConn*> stale;
      for (UpstreamConn* up = pools_[u][e].idle; up != nullptr; up = up->next_idle()) {
        if (!addresses_->Contains(static_cast<int>(u), static_cast<int>(e), up->address().addr,
                                  up->address().len)) {
          stale.push_back(up);
        }
      }
      for (UpstreamConn* up : stale) up->Close();  // Close unlinks it
    }
  }
}

void WorkerImpl::PostAddresses(AddressTablePtr addresses) {
  std::lock_guard<std::mutex> lock(async_mu_);
  if (async_closed_) return;
  posted_addresses_ = std::move(addresses);
  uv_async_send(&async_);
}

void WorkerImpl::PostLogReopen() {
  std::lock_guard<std::mutex> lock(async_mu_);
  if (async_closed_) return;
  reopen_log_.store(true, std::memory_order_release);
  uv_async_send(&async_);
}

Worker::Worker(int id, const config::Config& config, Topology* topology, AddressTablePtr addresses,
               metrics::WorkerStats* stats, RecentRequests* recent, std::vector<int> listen_fds)
    : impl_(std::make_unique<WorkerImpl>(id, config, topology, std::move(addresses), stats, recent,
                                         std::move(listen_fds))) {}

Worker::~Worker() = default;

void Worker::Start() {
  // Connection callbacks recover from their own exceptions; this is the last resort.
  thread_ = std::thread(
      [this] { base::Guard(base::Component::kProxy, "worker thread", [&] { impl_->Run(); }); });
}

void Worker::BeginDrain() { impl_->PostDrain(); }

void Worker::BeginReloadDrain() { impl_->PostReloadDrain(); }

void Worker::ReopenAccessLog() { impl_->PostLogReopen(); }

void Worker::SetAddresses(AddressTablePtr addresses) { impl_->PostAddresses(std::move(addresses)); }

void Worker::Stop() { impl_->PostStop(); }

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

int Worker::connections() const { return impl_->connections(); }

int Worker::loop_close_result() const { return impl_->loop_close_result(); }

}  // namespace speedmon::proxy
