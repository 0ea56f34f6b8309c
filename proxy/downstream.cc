// The client side of a proxied exchange: parse requests, pick an endpoint, stream the
// request up and the response down, answer errors, keep the connection or close it.
// Worker thread only. See conn.h for ownership and the deferred-close rule.
#include <unistd.h>

#include <cstring>

#include "base/boundary.h"
#include "proxy/conn.h"

namespace speedmon::proxy {

using http::AppendChunkHeader;
using http::AppendDownstreamResponseHead;
using http::AppendErrorResponse;
using http::AppendOptionsResponse;
using http::AppendUpstreamRequestHead;
using http::ForwardInfo;
using http::IsValidRequestId;
using http::MaxForwards;
using http::OriginForm;

using metrics::DownstreamTimeout;
using metrics::UpstreamErrorKind;

namespace {

DownstreamConn* FromHandle(const uv_handle_t* h) { return static_cast<DownstreamConn*>(h->data); }

// The error kind of speedmon's answer to a request the codec refused.
const char* RefusedKind(int status) {
  switch (status) {
    case 414:
      return "uri_too_long";
    case 431:
      return "headers_too_large";
    case 501:
      return "not_implemented";
    case 505:
      return "version_not_supported";
    default:
      return "bad_request";
  }
}

double UnixNow() {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

}  // namespace

DownstreamConn::DownstreamConn(WorkerImpl* w, int listener)
    : w_(w),
      listener_(listener),
      upstream_(w->topology->ListenerUpstream(listener)),
      codec_(HttpCodec::Type::kRequest, this, w->config.proxy.max_header_bytes) {
  uv_tcp_init(&w->loop, &tcp_);
  uv_timer_init(&w->loop, &timer_);
  tcp_.data = this;
  timer_.data = this;
  open_handles_ = 2;
}

DownstreamConn::~DownstreamConn() = default;

bool DownstreamConn::Adopt(int fd) {
  if (uv_tcp_open(&tcp_, fd) != 0) {
    close(fd);
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), client_ip_, sizeof client_ip_);
    } else {
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), client_ip_, sizeof client_ip_);
    }
  }
  phase_ = Phase::kIdle;
  ArmTimer(w_->config.proxy.idle_timeout.count());
  SetReading(0, false);
  return true;
}

void DownstreamConn::SetReading(uint8_t reason, bool stopped) {
  if (stopped) {
    read_stops_ |= reason;
  } else {
    read_stops_ &= static_cast<uint8_t>(~reason);
  }
  bool want = (read_stops_ == 0 && !close_after_flush_ && !closed_) || lingering_;
  if (want && !reading_) {
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

void DownstreamConn::ArmTimer(uint64_t ms) {
  last_activity_ms_ = uv_now(&w_->loop);
  uv_timer_start(&timer_, OnTimer, ms, 0);
}

void DownstreamConn::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  WorkerImpl* w = FromHandle(h)->w_;
  buf->base = w->read_buffer();
  buf->len = w->read_buffer_size();
}

void DownstreamConn::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  DownstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(s));
  base::Guard(
      base::Component::kProxy, "client read", [&] { HandleRead(self, n, buf); },
      [&] { self->Close(); });
}

void DownstreamConn::HandleRead(DownstreamConn* self, ssize_t n, const uv_buf_t* buf) {
  if (n > 0) {
    if (self->lingering_ || self->closed_) return;  // discarding after a final answer
    self->last_activity_ms_ = uv_now(&self->w_->loop);
    if (self->codec_paused_) {
      // A pipelined request behind the one in flight: it waits its turn.
      self->stash_.append(buf->base, static_cast<size_t>(n));
      if (self->stash_.size() > kMaxStash) self->SetReading(kStopPipeline, true);
      return;
    }
    self->Process(buf->base, static_cast<size_t>(n));
    return;
  }
  if (n == 0) return;  // EAGAIN
  self->peer_eof_ = true;
  if (self->lingering_ || self->closed_) {
    self->Close();
    return;
  }
  if (self->codec_paused_ && self->active_) {
    // The client half-closed after a complete request: answer it, then close.
    self->keep_alive_after_ = false;
    self->SetReading(kStopPipeline, true);
    return;
  }
  if (self->active_) {
    // The client left before its answer was complete (nginx's 499).
    self->Abort(self->response_started_ ? self->status_ : 499);
    return;
  }
  self->Close();
}

void DownstreamConn::Process(const char* data, size_t len) {
  while (true) {
    if (!active_ && !codec_.InMessage() && phase_ == Phase::kIdle) {
      start_ns_ = uv_hrtime();
      phase_ = Phase::kHead;
      ArmTimer(w_->config.proxy.header_timeout.count());
    }
    in_codec_ = true;
    HttpCodec::Result r = codec_.Execute(data, len);
    in_codec_ = false;
    if (closed_ || close_after_flush_) return;
    FlushUp();  // the head and the body bytes of this read go up in one write
    switch (r.status) {
      case HttpCodec::Status::kOk:
        return;
      case HttpCodec::Status::kPaused:
        data += r.consumed;
        len -= r.consumed;
        if (response_done_) {
          // Answered already (a local reply): go straight on to the next request.
          if (!keep_alive_after_) {
            CloseAfterFlush();
            return;
          }
          ResetExchange();
          codec_.Resume();
          if (len == 0) return;
          continue;
        }
        // The request is complete and waits for its answer. Reading goes on (no
        // epoll_ctl per request): whatever arrives meanwhile waits in the stash.
        codec_paused_ = true;
        stash_.assign(data, len);
        if (stash_.size() > kMaxStash) SetReading(kStopPipeline, true);
        return;
      case HttpCodec::Status::kHeadTooLarge:
      case HttpCodec::Status::kError:
        if (response_started_) {
          Abort(status_);
        } else {
          if (!active_) BeginMinimalExchange();
          LocalReply(codec_.error_status(), RefusedKind(codec_.error_status()), true);
        }
        return;
      case HttpCodec::Status::kAborted:
        if (response_done_) CloseAfterFlush();
        return;
    }
  }
}

void DownstreamConn::BeginMinimalExchange() {
  // An answer to a request that never got as far as a head: counted under the
  // listener's upstream, route "other", method "other".
  active_ = true;
  method_ = metrics::Method::kOther;
  route_ = static_cast<int>(w_->topology->route_names().size()) - 1;
  target_.clear();
  char id[32];
  w_->ids.Next(id);
  std::memcpy(request_id_, id, 32);
  request_id_len_ = 32;
}

HeadAction DownstreamConn::OnHead(const MessageHead& head) {
  if (closed_ || close_after_flush_) return HeadAction::kAbort;
  StartExchange(head);
  // Answered at once and the connection must end: stop parsing what follows.
  if (response_done_ && !keep_alive_after_) return HeadAction::kAbort;
  return HeadAction::kContinue;
}

void DownstreamConn::StartExchange(const MessageHead& head) {
  active_ = true;
  method_ = metrics::MethodFromString(head.method);
  std::string_view authority;
  std::string_view path = OriginForm(head.url, &authority);
  route_ = w_->topology->RouteIndex(path);
  head_request_ = method_ == metrics::Method::kHead;
  client_minor_ = head.version_major == 1 ? head.version_minor : 1;
  client_keep_alive_ = head.keep_alive;
  keep_alive_after_ = client_keep_alive_ && !w_->draining;
  target_.assign(path.substr(0, sizeof(RequestRecord::path)));
  std::string_view id = head.Find("x-request-id");
  if (IsValidRequestId(id)) {
    std::memcpy(request_id_, id.data(), id.size());
    request_id_len_ = id.size();
  } else {
    char gen[32];
    w_->ids.Next(gen);
    std::memcpy(request_id_, gen, 32);
    request_id_len_ = 32;
  }
  w_->stats->InFlightAdd(upstream_, 1);
  in_flight_counted_ = true;
  if (head.upgrade) {
    LocalReply(501, "upgrade_not_supported", true);
    return;
  }
  if (MaxForwards(head) == 0) {
    // TRACE or OPTIONS that must go no further: speedmon is the final recipient (RFC 9110
    // 7.6.2). It answers OPTIONS with 200 and does not implement TRACE.
    LocalReply(head.method == "OPTIONS" ? 200 : 501, "not_implemented", false);
    return;
  }
  const UpstreamState& us = w_->topology->upstream(upstream_);
  ForwardInfo info{client_ip_, std::string_view(request_id_, request_id_len_),
                   us.endpoints[0]->label};
  pending_up_.clear();
  req_framing_ = AppendUpstreamRequestHead(head, info, &pending_up_);
  phase_ = Phase::kWaitResponse;
  ArmTimer(us.config.request_timeout.count());
  if (req_framing_ == Framing::kContentLength && head.content_length <= kBufferedBodyBytes &&
      head.Find("expect").empty()) {
    buffering_body_ = true;  // dispatched by OnMessageComplete
    return;
  }
  Dispatch();
}

void DownstreamConn::Dispatch() {
  int e = w_->PickEndpoint(upstream_, tried_);
  if (e < 0) {
    LocalReply(503, tried_ == 0 ? "no_healthy_endpoint" : "connect_failed",
               req_framing_ != Framing::kNone && !request_complete_);
    return;
  }
  tried_ |= uint64_t{1} << (e < 63 ? e : 63);
  endpoint_ = e;
  UpstreamConn* up = w_->Acquire(this, upstream_, e);
  if (up == nullptr) {
    waiting_for_pool = true;
    return;
  }
  up_ = up;
  up->SetHeadRequest(head_request_);
  if (up->connected()) OnUpstreamConnected(up);
}

void DownstreamConn::OnUpstreamConnected(UpstreamConn* up) {
  up_ = up;
  waiting_for_pool = false;
  up->SetHeadRequest(head_request_);
  FlushUp();
  if (up_ != nullptr && up_->write_queue_size() < kHighWatermark &&
      pending_up_.size() < kHighWatermark) {
    SetReading(kStopBackpressure, false);
  }
}

void DownstreamConn::OnUpstreamConnectFailed(UpstreamConn*) {
  up_ = nullptr;
  if (!active_ || response_done_) return;
  Dispatch();  // never sent: safe to try another endpoint
}

bool DownstreamConn::OnBody(std::string_view data) {
  if (!active_ || response_done_) return true;  // discarding after a local reply
  req_body_bytes_ += data.size();
  SendToUpstream(data, req_framing_ == Framing::kChunked);
  return true;
}

bool DownstreamConn::OnMessageComplete() {
  request_complete_ = true;
  if (buffering_body_) {
    buffering_body_ = false;
    if (active_ && !response_done_) Dispatch();
    return true;
  }
  if (active_ && !response_done_ && req_framing_ == Framing::kChunked) {
    SendToUpstream("0\r\n\r\n", false);
  }
  return true;  // pause: a pipelined request waits for this answer
}

void DownstreamConn::SendToUpstream(std::string_view data, bool chunk_frame) {
  // Staged, and sent by FlushUp once the codec has returned: one write per read.
  if (chunk_frame) AppendChunkHeader(data.size(), &pending_up_);
  pending_up_.append(data);
  if (chunk_frame) pending_up_.append("\r\n");
  if (!in_codec_) FlushUp();
  if (pending_up_.size() > kHighWatermark) SetReading(kStopBackpressure, true);
}

void DownstreamConn::FlushUp() {
  if (in_codec_ || pending_up_.empty() || up_ == nullptr || !up_->connected()) return;
  WriteReq* wr = w_->NewWrite();
  wr->data.swap(pending_up_);
  pending_up_.clear();
  up_->Write(wr);
  if (up_ != nullptr && up_->write_queue_size() > kHighWatermark) {
    SetReading(kStopBackpressure, true);
  }
}

void DownstreamConn::OnUpstreamDrained() { SetReading(kStopBackpressure, false); }

void DownstreamConn::OnUpstreamHead(const MessageHead& head, bool* skip_body) {
  if (head.status < 200) {
    // Interim answers (100 Continue) pass through to HTTP/1.1 clients.
    *skip_body = true;
    if (client_minor_ >= 1) {
      AppendDownstreamResponseHead(head, false, client_minor_, true,
                                   std::string_view(request_id_, request_id_len_), &Out()->data);
    }
    return;
  }
  response_started_ = true;
  status_ = head.status;
  phase_ = Phase::kStreaming;
  last_upstream_ms_ = uv_now(&w_->loop);
  ArmTimer(std::min(w_->config.proxy.idle_timeout.count(),
                    w_->topology->upstream(upstream_).config.request_timeout.count()));
  resp_framing_ =
      AppendDownstreamResponseHead(head, head_request_, client_minor_, keep_alive_after_,
                                   std::string_view(request_id_, request_id_len_), &Out()->data);
  if (resp_framing_ == Framing::kUntilClose) keep_alive_after_ = false;
  *skip_body = head_request_;
}

void DownstreamConn::OnUpstreamBody(std::string_view data) {
  resp_body_bytes_ += data.size();
  last_upstream_ms_ = uv_now(&w_->loop);
  std::string& out = Out()->data;
  bool chunk = resp_framing_ == Framing::kChunked;
  if (chunk) AppendChunkHeader(data.size(), &out);
  out.append(data);
  if (chunk) out.append("\r\n");
  if (out.size() >= kFlushBytes) FlushOut();
}

WriteReq* DownstreamConn::Out() {
  if (out_ == nullptr) out_ = w_->NewWrite();
  return out_;
}

void DownstreamConn::FlushOut() {
  if (out_ == nullptr) return;
  WriteReq* wr = out_;
  out_ = nullptr;
  Write(wr);
  if (up_ != nullptr && tcp_.write_queue_size > kHighWatermark) {
    up_->SetReading(kStopBackpressure, true);
  }
}

void DownstreamConn::OnUpstreamComplete() {
  up_ = nullptr;
  if (resp_framing_ == Framing::kChunked) Out()->data.append("0\r\n\r\n");
  FlushOut();
  FinishExchange(status_);
}

void DownstreamConn::OnUpstreamFailed(UpstreamErrorKind kind) {
  up_ = nullptr;
  if (!active_ || response_done_) return;
  if (response_started_) {
    Abort(status_);  // the client already has a head: all we can do is cut the body
    return;
  }
  switch (kind) {
    case UpstreamErrorKind::kTimeout:
      LocalReply(504, "upstream_timeout", !request_complete_);
      break;
    case UpstreamErrorKind::kBadResponse:
      LocalReply(502, "bad_upstream_response", !request_complete_);
      break;
    default:
      LocalReply(502, "upstream_reset", !request_complete_);
      break;
  }
}

void DownstreamConn::LocalReply(int status, const char* kind, bool close) {
  if (up_ != nullptr) {
    up_->Detach();
    up_ = nullptr;
  }
  if (waiting_for_pool) w_->RemoveWaiter(this);
  if (close || w_->draining) keep_alive_after_ = false;
  std::string_view id(request_id_, request_id_len_);
  if (status == 200) {
    AppendOptionsResponse(id, !keep_alive_after_, &Out()->data);
  } else {
    AppendErrorResponse(status, kind, w_->topology->upstream(upstream_).config.name, id,
                        !keep_alive_after_, &Out()->data);
  }
  status_ = status;
  response_started_ = true;
  FlushOut();
  FinishExchange(status);
}

void DownstreamConn::FinishExchange(int status) {
  if (!active_ || response_done_) return;
  response_done_ = true;
  uint64_t now = uv_hrtime();
  uint64_t duration = now - start_ns_;
  if (w_->config.proxy.record_requests) {
    w_->stats->RecordRequest(upstream_, route_, method_, status, duration, req_body_bytes_,
                             resp_body_bytes_);
    if (w_->recent->capacity() != 0 || w_->access_log_on()) {
      RequestRecord rec;
      rec.unix_time = UnixNow();
      rec.duration_ns = duration;
      rec.request_bytes = req_body_bytes_;
      rec.response_bytes = resp_body_bytes_;
      rec.upstream = upstream_;
      rec.endpoint = endpoint_;
      rec.route = route_;
      rec.status = status;
      rec.method = static_cast<uint8_t>(method_);
      rec.SetPath(target_);
      rec.SetRequestId(std::string_view(request_id_, request_id_len_));
      w_->recent->Add(rec);
      if (w_->access_log_on()) w_->AccessLog(rec, client_ip_);
    }
  }
  if (in_flight_counted_) {
    w_->stats->InFlightAdd(upstream_, -1);
    in_flight_counted_ = false;
  }
  MaybeEndExchange();
}

void DownstreamConn::MaybeEndExchange() {
  if (!response_done_ || in_codec_ || closed_) return;  // Process() picks it up
  if (!request_complete_ || !keep_alive_after_) {
    // The answer went out before the request ended (or the connection must end):
    // whatever the client still sends cannot be framed any more.
    CloseAfterFlush();
    return;
  }
  ResumeAfterExchange();
}

void DownstreamConn::ResetExchange() {
  active_ = false;
  phase_ = Phase::kIdle;
  request_complete_ = response_done_ = response_started_ = buffering_body_ = false;
  req_body_bytes_ = resp_body_bytes_ = 0;
  status_ = 0;
  tried_ = 0;
  endpoint_ = -1;
  up_ = nullptr;
  req_framing_ = resp_framing_ = Framing::kNone;
  ArmTimer(w_->config.proxy.idle_timeout.count());
}

void DownstreamConn::ResumeAfterExchange() {
  ResetExchange();
  codec_.Resume();
  codec_paused_ = false;
  if (w_->draining) {
    CloseAfterFlush();
    return;
  }
  std::string pending;
  pending.swap(stash_);
  SetReading(kStopPipeline, false);
  if (!pending.empty()) Process(pending.data(), pending.size());
  if (stash_.empty() && stash_.capacity() < pending.capacity()) {
    pending.clear();  // keep the larger buffer for the next pipelined batch, empty
    stash_.swap(pending);
  }
}

void DownstreamConn::Abort(int status_for_stats) {
  if (up_ != nullptr) {
    up_->Detach();
    up_ = nullptr;
  }
  if (waiting_for_pool) w_->RemoveWaiter(this);
  keep_alive_after_ = false;
  bool was_active = active_ && !response_done_;
  if (was_active) {
    in_codec_ = true;  // record only; the connection closes right below
    FinishExchange(status_for_stats);
    in_codec_ = false;
  }
  Close();
}

void DownstreamConn::MaybeCloseIdle() {
  if (!active_ && !codec_.InMessage()) CloseAfterFlush();
}

void DownstreamConn::Write(WriteReq* wr) {
  if (closed_) {
    w_->FreeWrite(wr);
    return;
  }
  if (w_->SubmitWrite(reinterpret_cast<uv_stream_t*>(&tcp_), wr, OnWrite)) ++pending_writes_;
}

void DownstreamConn::OnWrite(uv_write_t* req, int status) {
  WriteReq* wr = reinterpret_cast<WriteReq*>(req);
  DownstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(req->handle));
  base::Guard(
      base::Component::kProxy, "client write", [&] { HandleWrite(self, wr, status); },
      [&] { self->Close(); });
}

void DownstreamConn::HandleWrite(DownstreamConn* self, WriteReq* wr, int status) {
  self->w_->FreeWrite(wr);
  --self->pending_writes_;
  if (self->closed_) return;
  if (status < 0) {
    if (self->active_ && !self->response_done_) {
      self->Abort(self->response_started_ ? self->status_ : 499);
    } else {
      self->Close();
    }
    return;
  }
  self->last_activity_ms_ = uv_now(&self->w_->loop);
  if (self->up_ != nullptr && self->tcp_.write_queue_size < kLowWatermark) {
    self->up_->SetReading(kStopBackpressure, false);
  }
  if (self->close_after_flush_ && self->pending_writes_ == 0 && !self->lingering_) {
    self->StartLinger();
  }
}

void DownstreamConn::CloseAfterFlush() {
  if (closed_ || close_after_flush_) return;
  close_after_flush_ = true;
  if (up_ != nullptr) {
    up_->Detach();
    up_ = nullptr;
  }
  if (waiting_for_pool) w_->RemoveWaiter(this);
  SetReading(0, false);  // re-evaluates: stops reading
  if (pending_writes_ == 0) StartLinger();
}

void DownstreamConn::StartLinger() {
  // Half-close and drain what the client still sends, so the kernel does not answer
  // unread bytes with a reset that would destroy the response we just sent.
  lingering_ = true;
  phase_ = Phase::kClosing;
  uv_timer_start(&timer_, OnTimer, 2000, 0);
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown) != 0) {
    Close();
    return;
  }
  SetReading(0, false);
}

void DownstreamConn::OnShutdown(uv_shutdown_t* req, int status) {
  DownstreamConn* self = static_cast<DownstreamConn*>(req->data);
  base::Guard(
      base::Component::kProxy, "client shutdown", [&] { HandleShutdown(self, status); },
      [&] { self->Close(); });
}

void DownstreamConn::HandleShutdown(DownstreamConn* self, int status) {
  if (status == UV_ECANCELED || self->closed_) return;
  if (status < 0 || self->peer_eof_) self->Close();
}

void DownstreamConn::OnTimer(uv_timer_t* t) {
  DownstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(t));
  base::Guard(
      base::Component::kProxy, "client timer", [&] { HandleTimer(self, t); },
      [&] { self->Close(); });
}

void DownstreamConn::HandleTimer(DownstreamConn* self, uv_timer_t* t) {
  const auto& pc = self->w_->config.proxy;
  switch (self->phase_) {
    case Phase::kIdle:
      self->w_->stats->RecordTimeout(DownstreamTimeout::kIdle);
      self->CloseAfterFlush();
      return;
    case Phase::kHead:
      self->w_->stats->RecordTimeout(DownstreamTimeout::kHeader);
      if (!self->active_) self->BeginMinimalExchange();
      self->LocalReply(408, "header_timeout", true);
      return;
    case Phase::kWaitResponse:
      if (!self->request_complete_) {
        // The client has not finished sending its body: the upstream is not the slow
        // one. 408 and close, counted against the client.
        self->w_->stats->RecordTimeout(DownstreamTimeout::kRequestBody);
        self->LocalReply(408, "request_body_timeout", true);
        return;
      }
      if (self->up_ != nullptr || self->waiting_for_pool) {
        if (self->endpoint_ >= 0) {
          self->w_->stats->RecordUpstreamError(self->upstream_, self->endpoint_,
                                               UpstreamErrorKind::kTimeout);
        }
      }
      self->LocalReply(504, "upstream_timeout", false);  // the request was complete
      return;
    case Phase::kStreaming: {
      // Two clocks: an upstream silent for request_timeout is a timeout; a client that
      // reads nothing for idle_timeout (while it holds the upstream back) is gone.
      bool held_by_client = self->up_ != nullptr && (self->up_->read_stops_ & kStopBackpressure);
      uint64_t last = held_by_client ? self->last_activity_ms_ : self->last_upstream_ms_;
      uint64_t limit =
          held_by_client
              ? static_cast<uint64_t>(pc.idle_timeout.count())
              : static_cast<uint64_t>(
                    self->w_->topology->upstream(self->upstream_).config.request_timeout.count());
      uint64_t quiet = uv_now(&self->w_->loop) - last;
      if (quiet < limit) {
        uv_timer_start(t, OnTimer, limit - quiet, 0);
        return;
      }
      if (held_by_client) {
        self->w_->stats->RecordTimeout(DownstreamTimeout::kResponseRead);
      } else if (self->endpoint_ >= 0) {
        self->w_->stats->RecordUpstreamError(self->upstream_, self->endpoint_,
                                             UpstreamErrorKind::kTimeout);
      }
      self->Abort(self->status_);
      return;
    }
    case Phase::kLocalReply:
    case Phase::kClosing:
      self->Close();
      return;
  }
}

void DownstreamConn::Close() {
  if (closed_) return;
  closed_ = true;
  if (up_ != nullptr) {
    up_->Detach();
    up_ = nullptr;
  }
  if (waiting_for_pool) w_->RemoveWaiter(this);
  if (in_flight_counted_) {
    w_->stats->InFlightAdd(upstream_, -1);
    in_flight_counted_ = false;
  }
  if (out_ != nullptr) {
    w_->FreeWrite(out_);
    out_ = nullptr;
  }
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
}

void DownstreamConn::OnClosed(uv_handle_t* h) {
  DownstreamConn* self = FromHandle(h);
  if (--self->open_handles_ == 0) self->w_->ConnClosed(self);
}

}  // namespace speedmon::proxy
