// A proxy worker: one thread, one libuv loop, every listener (its own SO_REUSEPORT
// socket), its own upstream connection pools and its own stats shard. A request lives on
// one worker from accept to last byte; nothing on that path takes a lock.
//
// Threads: constructed and started on the main thread; BeginDrain/Stop may be called
// from any thread; everything else runs on the worker's own thread.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "config/config.h"
#include "metrics/request_stats.h"
#include "proxy/recent_requests.h"
#include "proxy/resolver.h"
#include "proxy/topology.h"

namespace speedmon::proxy {

class WorkerImpl;

class Worker {
 public:
  // `listen_fds`: one bound, non-blocking socket per config listener (this worker's own
  // SO_REUSEPORT copy), owned by the worker from now on.
  // `addresses`: the endpoints' addresses to start with (SetAddresses sends newer ones).
  Worker(int id, const config::Config& config, Topology* topology, AddressTablePtr addresses,
         metrics::WorkerStats* stats, RecentRequests* recent, std::vector<int> listen_fds);
  ~Worker();  // REQUIRES: Join() returned

  void Start();
  // Stop accepting; finish in-flight requests; close idle connections. The thread ends
  // when the last connection has closed. Thread-safe.
  void BeginDrain();
  // The same for a reload: idle keep-alive connections get a moment (1 s) to send their
  // next request, which is answered with Connection: close. Thread-safe.
  void BeginReloadDrain();
  // Close everything now (after the drain timeout). Thread-safe.
  void Stop();
  // Reopen the access log at its configured path (after rotation). Thread-safe.
  void ReopenAccessLog();
  // New endpoint addresses (a name resolved differently). Thread-safe.
  void SetAddresses(AddressTablePtr addresses);
  void Join();

  // Live downstream connections (for /api/v1/upstreams and tests). Thread-safe.
  int connections() const;
  // uv_loop_close's result once the thread ended: 0 when every handle was closed.
  int loop_close_result() const;

 private:
  std::unique_ptr<WorkerImpl> impl_;
  std::thread thread_;
};

// Creates `count` sockets bound to `address` with SO_REUSEPORT (so every worker accepts
// on its own queue), listening with `backlog`. With port 0 the first bind picks the port
// and the rest share it. On failure closes what it opened and returns kUnavailable
// ("cannot listen on host:port: Address already in use", or Resolve's error).
base::Status BindReusePort(const config::Address& address, int count, int backlog,
                           std::vector<int>* fds);

}  // namespace speedmon::proxy
