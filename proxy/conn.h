// Internal to proxy/: the worker's loop state and its two kinds of connection.
//
// Everything here runs on one worker thread. Ownership: the WorkerImpl owns every
// connection through the intrusive lists below; a connection frees itself only in the
// close callback of its last libuv handle (never in the middle of one of its callbacks);
// code that may close a connection from inside a codec callback only marks it, and the
// read handler acts once the codec has returned.
#pragma once

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "http/http_codec.h"
#include "http/http_message.h"
#include "metrics/request_stats.h"
#include "proxy/recent_requests.h"
#include "proxy/resolver.h"
#include "proxy/topology.h"

namespace speedmon::proxy {

using http::CodecHandler;
using http::Framing;
using http::HeadAction;
using http::HttpCodec;
using http::MessageHead;
using http::RequestIdGenerator;

class WorkerImpl;
class UpstreamConn;

// Above this many bytes queued towards a peer, stop reading from the other side; resume
// below the low mark (Envoy's watermark buffers, in two numbers).
constexpr size_t kHighWatermark = 256 * 1024;
constexpr size_t kLowWatermark = 64 * 1024;
// Response bytes staged for one write are flushed at this size even mid-read.
constexpr size_t kFlushBytes = 64 * 1024;
// Pipelined bytes kept while a request is answered; past it, reading pauses.
constexpr size_t kMaxStash = 64 * 1024;
// A request body up to this size (with Content-Length, without Expect: 100-continue) is
// read whole before an upstream connection is taken, as nginx's proxy_request_buffering
// does: a client that stalls mid-body then holds no upstream connection, so a few hundred
// such clients cannot starve the agent of the pool. Below kHighWatermark, so reading
// never stops while a body is being buffered.
constexpr size_t kBufferedBodyBytes = 64 * 1024;
static_assert(kBufferedBodyBytes < kHighWatermark);

// A write in flight: libuv needs the bytes until the callback, so each write owns them.
// Recycled through the worker's free list, capacity kept. A plain aggregate passed by
// pointer, not a long-lived object; `req` comes first because the write callbacks cast
// the uv_write_t* back (DownstreamConn::OnWrite, UpstreamConn::HandleWrite).
struct WriteReq {
  uv_write_t req;
  std::string data;
  WriteReq* next_free = nullptr;
};

// Why a connection is not reading; reading resumes when no reason is left.
enum ReadStop : uint8_t {
  kStopPipeline = 1,      // a request is complete and waits for its answer
  kStopBackpressure = 2,  // the peer's write queue is above the high watermark
  kStopNotReady = 4,      // the upstream side is not connected yet
};

class DownstreamConn final : public CodecHandler {
 public:
  DownstreamConn(WorkerImpl* w, int listener);
  ~DownstreamConn() override;
  bool Adopt(int fd);  // an accepted socket; false: the caller closes the connection
  void Close();
  // Upstream side events.
  void AttachUpstream(UpstreamConn* up);  // the pool hands this request a connection
  void OnUpstreamConnected();             // the attached connection finished connecting
  void OnUpstreamConnectFailed(const SocketAddress& address);  // never connected to it
  void OnUpstreamHead(const MessageHead& head, bool* skip_body);
  void OnUpstreamBody(std::string_view data);
  void OnUpstreamComplete();
  void OnUpstreamFailed(metrics::UpstreamErrorKind kind);
  void OnUpstreamDrained();           // the upstream's write queue fell below the low mark
  void FlushOutput() { FlushOut(); }  // end of an upstream read: one write for all of it
  void MaybeCloseIdle();              // draining: close if between requests
  void ShortenIdle(uint64_t ms);      // between requests: close after `ms` more of quiet

  // CodecHandler (requests).
  HeadAction OnHead(const MessageHead& head) override;
  bool OnBody(std::string_view data) override;
  bool OnMessageComplete() override;

  // The worker's intrusive list of its client connections (WorkerImpl::conns_).
  void LinkInto(DownstreamConn** head) {
    next_ = *head;
    if (*head != nullptr) (*head)->prev_ = this;
    *head = this;
  }
  void UnlinkFrom(DownstreamConn** head) {
    if (prev_ != nullptr) prev_->next_ = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    if (*head == this) *head = next_;
  }
  DownstreamConn* next_conn() const { return next_; }

 private:
  // What the connection is doing. Changed only by Enter(), which also keeps the
  // in-flight gauge and sets the deadline that comes with the new state. The order
  // matters: the states from kClosingAfterFlush on are the closing ones.
  enum class State : uint8_t {
    kIdle,               // between requests: nothing of the next one read yet
    kReadingHead,        // part of a request head has arrived
    kReadingBody,        // the head is parsed; a small body is read whole before dispatch
    kSendingBody,        // dispatched; the body still arrives and streams up; no answer yet
    kAwaitingResponse,   // the request is complete; no response head yet
    kStreamingResponse,  // the response streams down; the request is complete
    kStreamingBoth,      // the response started before the request body ended
    kAnswered,           // the answer is complete while the codec is still inside the
                         // request (its rest is read and dropped); Process() moves on
    kClosingAfterFlush,  // the last answer is queued: not reading, waiting for the writes
    kLingering,          // half-closed: reading and dropping what the client still sends
    kClosed,             // handles closing; freed by the last close callback
  };
  // What the connection's one deadline is for: what happens when it passes.
  enum class Deadline : uint8_t {
    kIdle,      // idle_timeout between requests: close (reason "idle")
    kHeader,    // header_timeout from the first byte: 408 (reason "header")
    kRequest,   // the upstream's request_timeout from the head: 408 "request_body" while
                // the body is incomplete, 504 once it is
    kResponse,  // while streaming: upstream silent for request_timeout (upstream timeout)
                // or client not reading for idle_timeout (reason "response_read")
    kFlush,     // the final answer is queued: client not reading for idle_timeout
                // (reason "response_read")
    kLinger,    // 2 s of lingering close
  };

  // A request head was parsed and no answer has ended the exchange yet.
  bool ExchangeOpen() const {
    return state_ >= State::kReadingBody && state_ <= State::kStreamingBoth;
  }
  // The whole request has been read and its answer is not complete.
  bool RequestComplete() const {
    return state_ == State::kAwaitingResponse || state_ == State::kStreamingResponse;
  }
  // The client has (part of) an answer to the current request.
  bool ResponseStarted() const {
    return state_ == State::kStreamingResponse || state_ == State::kStreamingBoth ||
           state_ == State::kAnswered;
  }
  bool Closing() const { return state_ >= State::kClosingAfterFlush; }

  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void OnTimer(uv_timer_t* t);
  static void OnWrite(uv_write_t* req, int status);
  static void OnClosed(uv_handle_t* h);
  static void OnShutdown(uv_shutdown_t* req, int status);
  // The callbacks' bodies; the callbacks run them under base::Guard (an exception closes
  // this connection).
  static void HandleRead(DownstreamConn* self, ssize_t n, const uv_buf_t* buf);
  static void HandleTimer(DownstreamConn* self);
  static void HandleWrite(DownstreamConn* self, WriteReq* wr, int status);
  static void HandleShutdown(DownstreamConn* self, int status);

  void Enter(State next);
  void SetDeadline(Deadline kind, uint64_t ms);
  void StartTimer(uint64_t ms);
  void Process(const char* data, size_t len);
  void ResumeAfterExchange();
  void ResetExchange();
  void BeginMinimalExchange();
  void StartLinger();
  void SetReading(uint8_t reason, bool stopped);
  void Write(WriteReq* wr);
  void SendToUpstream(std::string_view data, bool chunk_frame);
  void FlushUp();   // sends the staged upstream bytes (not while inside the codec)
  WriteReq* Out();  // the response bytes staged for the client
  void FlushOut();
  void StartExchange(const MessageHead& head);
  void Dispatch();
  void LocalReply(int status, const char* kind, bool close);
  void RecordExchange(int status);
  void FinishExchange(int status);
  void Abort(int status_for_stats);
  void CloseAfterFlush();
  void DetachUpstream();

  WorkerImpl* w_;
  DownstreamConn* prev_ = nullptr;  // WorkerImpl::conns_
  DownstreamConn* next_ = nullptr;
  int upstream_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_shutdown_t shutdown_req_;
  int open_handles_ = 0;
  HttpCodec codec_;
  char client_ip_[64] = {};
  State state_ = State::kIdle;
  std::string stash_;  // bytes after a paused (pipelined) request
  uint8_t read_stops_ = 0;
  bool reading_ = false;           // libuv is reading (read_stops_ and the state say whether to)
  bool in_codec_ = false;          // inside codec_.Execute: closing and ending wait for Process()
  bool peer_eof_ = false;          // the client half-closed
  bool waiting_for_pool_ = false;  // queued in a pool for a free upstream connection
  WriteReq* out_ = nullptr;        // response bytes staged during one upstream read
  int pending_writes_ = 0;
  // The deadline (loop time, ms) and what it is for. State changes only overwrite these;
  // the timer runs at most once at a time and re-arms itself when it finds the deadline
  // moved later (see SetDeadline).
  uint64_t deadline_ms_ = 0;
  uint64_t timer_due_ms_ = 0;  // when the running timer fires
  Deadline deadline_ = Deadline::kIdle;
  uint64_t last_activity_ms_ = 0;  // last byte from the client or written to it
  uint64_t last_upstream_ms_ = 0;  // last response byte from the upstream

  // The exchange in progress (one at a time; pipelined requests wait in stash_).
  uint64_t start_ns_ = 0;
  metrics::Method method_ = metrics::Method::kOther;
  int route_ = 0;
  bool head_request_ = false;
  int client_minor_ = 1;
  bool keep_alive_after_ = true;  // the connection stays open after this answer
  char request_id_[129] = {};
  size_t request_id_len_ = 0;
  std::string target_;      // kept for the recent-requests record
  std::string pending_up_;  // bytes for the upstream before it is connected
  Framing req_framing_ = Framing::kNone;
  uint64_t req_body_bytes_ = 0;
  UpstreamConn* up_ = nullptr;
  int endpoint_ = -1;
  uint64_t tried_ = 0;             // endpoints tried for this request (bit per endpoint)
  uint32_t address_failures_ = 0;  // addresses of endpoint_ that refused this request
  Framing resp_framing_ = Framing::kNone;
  uint64_t resp_body_bytes_ = 0;
  int status_ = 0;
};

// A reload's drain leaves an idle keep-alive connection this long to send its next
// request (answered with Connection: close) before closing it.
inline constexpr uint64_t kReloadIdleGraceMs = 1000;

class UpstreamConn final : public CodecHandler {
 public:
  // `address`: one of the endpoint's addresses, kept for the connection's life.
  UpstreamConn(WorkerImpl* w, int upstream, int endpoint, const SocketAddress& address);
  ~UpstreamConn() override;
  void Connect();
  void Attach(DownstreamConn* ds);  // takes on a request (WorkerImpl::Acquire, Release)
  void Close();
  void Write(WriteReq* wr);  // REQUIRES: connected
  void SetReading(uint8_t reason, bool stopped);
  bool connected() const { return connected_; }
  size_t write_queue_size() const { return tcp_.write_queue_size; }
  int upstream() const { return upstream_; }
  int endpoint() const { return endpoint_; }
  const SocketAddress& address() const { return address_; }
  bool reused() const { return reused_; }
  // The response was read whole and the connection may carry another request.
  bool reusable() const { return complete_ && keep_alive_ && !closing_; }
  bool ReadStoppedFor(uint8_t reason) const { return (read_stops_ & reason) != 0; }
  void SetHeadRequest(bool head) { head_request_ = head; }
  // The attached request no longer counts against this endpoint (WorkerImpl::Release).
  void DropRequest();
  // Going back to the pool after a complete response: a fresh codec, no request yet.
  void PrepareForReuse();

  // The pool's intrusive list of idle connections, kept by WorkerImpl. EnterPool also
  // starts the lazy idle timer (HandleTimer).
  void EnterPool(UpstreamConn** idle_head);
  void LeavePool(UpstreamConn** idle_head);
  bool in_pool() const { return in_pool_; }
  UpstreamConn* next_idle() const { return next_; }

  // CodecHandler (responses).
  HeadAction OnHead(const MessageHead& head) override;
  bool OnBody(std::string_view data) override;
  bool OnMessageComplete() override;

 private:
  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnTimer(uv_timer_t* t);
  static void OnClosed(uv_handle_t* h);
  // The callbacks' bodies, run under base::Guard (an exception fails this connection).
  static void HandleConnect(UpstreamConn* self, int status);
  static void HandleRead(UpstreamConn* self, ssize_t n, const uv_buf_t* buf);
  static void HandleWrite(UpstreamConn* self, uv_write_t* req, int status);
  static void HandleTimer(UpstreamConn* self);

  void Fail(metrics::UpstreamErrorKind kind);
  void Finished();

  WorkerImpl* w_;
  UpstreamConn* prev_ = nullptr;  // the pool's idle list, while in_pool_
  UpstreamConn* next_ = nullptr;
  bool in_pool_ = false;
  int upstream_;
  int endpoint_;
  SocketAddress address_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_connect_t connect_req_;
  int open_handles_ = 0;
  HttpCodec codec_;
  DownstreamConn* ds_ = nullptr;
  bool connected_ = false;
  bool closing_ = false;
  bool reused_ = false;
  bool interim_ = false;    // the message being parsed is a 1xx
  bool got_bytes_ = false;  // any response byte for the current request
  bool complete_ = false;   // the final response of the current request is done
  bool keep_alive_ = true;
  bool head_request_ = false;
  uint8_t read_stops_ = 0;
  bool reading_ = false;
  uint64_t pooled_ms_ = 0;  // when it last went idle into the pool (loop time)
};

class WorkerImpl {
 public:
  WorkerImpl(int id, const config::Config& config, Topology* topology, AddressTablePtr addresses,
             metrics::WorkerStats* stats, RecentRequests* recent, std::vector<int> fds);
  ~WorkerImpl();
  void Run();  // on the worker thread; returns when every handle is closed

  // From any thread (Worker). Each wakes the loop, and does nothing once the worker has
  // finished (its async handle is closed).
  void PostDrain();  // stop accepting, finish in-flight requests; not after PostStop
  // A drain for a reload: as PostDrain, but no connection is closed between requests at
  // once: each is closed after a response carrying Connection: close (its next request's)
  // or after kReloadIdleGraceMs of quiet, so that a client in a request loop never finds
  // its connection closed under a request it is sending.
  void PostReloadDrain();
  void PostStop();  // close everything now
  void PostLogReopen();
  // Endpoint addresses from now on: new connections use them; idle pooled connections
  // to an address no longer listed close; connections in use finish their request.
  void PostAddresses(AddressTablePtr addresses);
  int connections() const { return connections_.load(std::memory_order_relaxed); }
  // uv_loop_close's result. REQUIRES: Run returned (the thread was joined).
  int loop_close_result() const { return loop_close_result_; }

  // The rest is for the connections, on the worker thread.
  const config::ProxyConfig& proxy_config() const { return config_.proxy; }
  const Topology& topology() const { return *topology_; }
  metrics::WorkerStats& stats() { return *stats_; }
  uv_loop_t* loop() { return &loop_; }
  uint64_t now_ms() const { return uv_now(&loop_); }  // the loop's cached time
  bool draining() const { return draining_; }
  // Draining for a reload (BeginDrain(true)): connections finish with Connection: close.
  bool reload_draining() const { return reload_draining_; }
  void NextRequestId(char out[32]) { ids_.Next(out); }
  char* read_buffer() { return read_buf_.data(); }
  size_t read_buffer_size() const { return read_buf_.size(); }

  // Pool.
  // A healthy endpoint with at least one address, not in `tried`; -1: none left.
  int PickEndpoint(int upstream, uint64_t tried);
  // Gets a connection for the request: an idle one (attached now), a new one
  // (connecting, to the endpoint's next address in turn, never `avoid` when it has
  // another), or null with the request queued as a waiter (at the pool's limit).
  UpstreamConn* Acquire(DownstreamConn* ds, int upstream, int endpoint,
                        const SocketAddress* avoid = nullptr);
  // How many addresses the endpoint's name has now.
  size_t AddressCount(int upstream, int endpoint) const {
    return addresses_->at(upstream, endpoint).size();
  }
  // The request is done with `up` (DownstreamConn::DetachUpstream decides `reusable`):
  // back to the pool, or to the first waiting request, or closed. A no-op for a
  // connection that is closing already.
  void Release(UpstreamConn* up, bool reusable);
  void RemoveWaiter(DownstreamConn* ds);
  // A request no longer counts against the endpoint (least-requests balancing).
  void EndRequest(int upstream, int endpoint) { --pools_[upstream][endpoint].active_requests; }
  void ConnClosing(UpstreamConn* up);  // its pool slot is free from now on
  void ConnClosed(DownstreamConn* ds);

  WriteReq* NewWrite();
  void FreeWrite(WriteReq* wr);
  // Writes what it can at once (uv_try_write: no write request, no epoll_ctl) and
  // queues the rest with `cb`. True when a request was queued (cb will run); false when
  // all went out now or the write failed at once (wr is freed either way then).
  bool SubmitWrite(uv_stream_t* stream, WriteReq* wr, uv_write_cb cb);

  // A finished request: the recent-requests ring, and one JSON line in the access log
  // buffer when [proxy].access_log is set.
  bool wants_request_records() const { return recent_->capacity() != 0 || access_log_on(); }
  void KeepRequestRecord(const RequestRecord& r, std::string_view client_ip) {
    recent_->Add(r);
    if (access_log_on()) AccessLog(r, client_ip);
  }

 private:
  // Per-endpoint connection pool: the worker's own bookkeeping, a plain aggregate kept
  // by value in pools_ and touched only by WorkerImpl's methods.
  struct EndpointPool {
    UpstreamConn* idle = nullptr;  // intrusive list of idle, connected connections
    int idle_count = 0;
    int open = 0;                         // idle + busy + connecting
    int active_requests = 0;              // for least-requests balancing
    uint32_t next_address = 0;            // round robin over the endpoint's addresses
    std::deque<DownstreamConn*> waiters;  // requests waiting for a free connection
  };
  // Accepting: each listening socket is polled by the worker (not uv_listen), so that
  // accepting can pause at max_connections or when the process runs out of descriptors,
  // and resume when a connection closes or after a short back-off. A plain aggregate,
  // private to the worker: the poll handle's data points at it.
  struct Listener {
    uv_poll_t poll;
    int fd = -1;
    int index = 0;
    WorkerImpl* w = nullptr;
  };
  static void OnListenerReadable(uv_poll_t* p, int status, int events);
  void AcceptFrom(Listener* l);
  void PauseAccepting(metrics::AcceptPause reason);
  void ResumeAccepting();
  static void OnAsync(uv_async_t* a);
  void BeginDrain(bool reload = false);
  void CloseIdleConnections();  // then finishes when none is left
  void StopNow();
  void CloseListeners();
  void MaybeFinish();
  bool access_log_on() const { return access_fd_ >= 0; }
  void AccessLog(const RequestRecord& r, std::string_view client_ip);
  void ReopenAccessLog();  // SIGUSR1 (after logrotate)
  void SetAddresses(AddressTablePtr addresses);
  void FlushAccessLog();
  void OpenAccessLog();

  const config::Config& config_;
  Topology* topology_;
  AddressTablePtr addresses_;  // the latest the main thread sent
  metrics::WorkerStats* stats_;
  RecentRequests* recent_;
  uv_loop_t loop_;
  RequestIdGenerator ids_;
  std::vector<std::vector<EndpointPool>> pools_;  // [upstream][endpoint]
  std::vector<uint32_t> rr_next_;                 // round robin cursor per upstream
  int max_downstream_ = 10000;
  bool draining_ = false;
  bool reload_draining_ = false;
  int loop_close_result_ = -1;

  int id_;
  std::vector<int> fds_;
  std::vector<Listener*> listeners_;
  uv_timer_t accept_timer_;  // resumes accepting after a descriptor shortage
  bool accept_paused_ = false;
  uint64_t last_fd_log_ms_ = 0;
  DownstreamConn* conns_ = nullptr;
  WriteReq* free_writes_ = nullptr;
  int free_write_count_ = 0;
  std::vector<char> read_buf_;
  bool finishing_ = false;
  int access_fd_ = -1;
  bool access_fd_owned_ = false;
  std::string access_buf_;
  uv_timer_t access_timer_;

  // Shared with other threads (Post*, connections()).
  std::atomic<int> connections_{0};
  uv_async_t async_;
  std::atomic<int> command_{0};  // 1 drain, 2 stop, 3 drain for a reload
  std::atomic<bool> reopen_log_{false};
  std::mutex async_mu_;  // async_send must not race the handle's close; guards the next:
  AddressTablePtr posted_addresses_;
  bool async_closed_ = false;
};

}  // namespace speedmon::proxy
