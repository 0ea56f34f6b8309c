// The client side of a proxied exchange: parse requests, pick an endpoint, stream the
// request up and the response down, answer errors, keep the connection or close it.
// Worker thread only. See conn.h for ownership and the deferred-close rule.
#include <unistd.h>

#include <cstring>

#include "base/boundary.h"
#include "http/lingering_close.h"
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
      upstream_(w->topology().ListenerUpstream(listener)),
      codec_(HttpCodec::Type::kRequest, this, w->proxy_config().max_header_bytes) {
  uv_tcp_init(w->loop(), &tcp_);
  uv_timer_init(w->loop(), &timer_);
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
  Enter(State::kIdle);
  SetReading(0, false);
  return true;
}

void DownstreamConn::Enter(State next) {
  const State prev = state_;
  const bool was_open = ExchangeOpen();
  state_ = next;
  // The in-flight gauge counts exchanges from the parsed head to the answer (or close).
  if (ExchangeOpen() != was_open) w_->stats().InFlightAdd(upstream_, was_open ? -1 : 1);
  const auto& pc = w_->proxy_config();
  switch (next) {
    case State::kIdle:
      SetDeadline(Deadline::kIdle,
                  w_->reload_draining()
                      ? std::min<uint64_t>(pc.idle_timeout.count(), kReloadIdleGraceMs)
                      : pc.idle_timeout.count());
      return;
    case State::kReadingHead:
      start_ns_ = uv_hrtime();
      SetDeadline(Deadline::kHeader, pc.header_timeout.count());
      return;
    case State::kReadingBody:
    case State::kSendingBody:  // both entered from kReadingHead only
      SetDeadline(Deadline::kRequest,
                  w_->topology().upstream(upstream_).config.request_timeout.count());
      return;
    case State::kStreamingResponse:
    case State::kStreamingBoth:
      if (prev == State::kStreamingBoth) return;  // the request ended; same response
      last_upstream_ms_ = w_->now_ms();
      SetDeadline(Deadline::kResponse,
                  std::min(pc.idle_timeout.count(),
                           w_->topology().upstream(upstream_).config.request_timeout.count()));
      return;
    case State::kClosingAfterFlush:
      SetDeadline(Deadline::kFlush, pc.idle_timeout.count());
      return;
    case State::kLingering:
      SetDeadline(Deadline::kLinger, http::kLingeringCloseMs);
      return;
    case State::kAwaitingResponse:  // keeps the request deadline
    case State::kAnswered:          // keeps whatever deadline was running
    case State::kClosed:
      return;
  }
}

void DownstreamConn::SetDeadline(Deadline kind, uint64_t ms) {
  const uint64_t now = w_->now_ms();
  last_activity_ms_ = now;
  deadline_ = kind;
  deadline_ms_ = now + ms;
  // Lazy: a running timer that fires no later than the new deadline is left alone, and
  // HandleTimer re-arms it for the rest; only a deadline earlier than the running timer
  // (or no timer running) starts it. A keep-alive request then costs no timer
  // operation at all in the common case, where each deadline is later than the last.
  if (deadline_ms_ < timer_due_ms_ || !uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
    StartTimer(ms);
  }
}

void DownstreamConn::StartTimer(uint64_t ms) {
  timer_due_ms_ = w_->now_ms() + ms;
  uv_timer_start(&timer_, OnTimer, ms, 0);
}

void DownstreamConn::SetReading(uint8_t reason, bool stopped) {
  if (stopped) {
    read_stops_ |= reason;
  } else {
    read_stops_ &= static_cast<uint8_t>(~reason);
  }
  bool want = state_ == State::kLingering || (read_stops_ == 0 && !Closing());
  if (want && !reading_) {
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
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
    if (self->Closing()) return;  // discarding after a final answer
    self->last_activity_ms_ = self->w_->now_ms();
    if (self->RequestComplete()) {
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
  if (self->Closing()) {
    self->Close();
    return;
  }
  if (self->RequestComplete()) {
    // The client half-closed after a complete request: answer it, then close.
    self->keep_alive_after_ = false;
    self->SetReading(kStopPipeline, true);
    return;
  }
  if (self->ExchangeOpen()) {
    // The client left before its answer was complete (nginx's 499).
    self->Abort(self->ResponseStarted() ? self->status_ : 499);
    return;
  }
  self->Close();
}

void DownstreamConn::Process(const char* data, size_t len) {
  while (true) {
    if (state_ == State::kIdle) Enter(State::kReadingHead);
    in_codec_ = true;
    HttpCodec::Result r = codec_.Execute(data, len);
    in_codec_ = false;
    if (Closing()) return;
    FlushUp();  // the head and the body bytes of this read go up in one write
    switch (r.status) {
      case HttpCodec::Status::kOk:
        return;
      case HttpCodec::Status::kPaused:
        data += r.consumed;
        len -= r.consumed;
        if (state_ == State::kAnswered) {
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
        stash_.assign(data, len);
        if (stash_.size() > kMaxStash) SetReading(kStopPipeline, true);
        return;
      case HttpCodec::Status::kHeadTooLarge:
      case HttpCodec::Status::kError:
        if (ResponseStarted()) {
          Abort(status_);
        } else {
          if (state_ == State::kReadingHead) BeginMinimalExchange();
          LocalReply(codec_.error_status(), RefusedKind(codec_.error_status()), true);
        }
        return;
      case HttpCodec::Status::kAborted:
        if (state_ == State::kAnswered) CloseAfterFlush();
        return;
    }
  }
}

void DownstreamConn::BeginMinimalExchange() {
  // An answer to a request that never got as far as a head: counted under the
  // listener's upstream, route "other", method "other".
  method_ = metrics::Method::kOther;
  route_ = static_cast<int>(w_->topology().route_names().size()) - 1;
  target_.clear();
  char id[32];
  w_->NextRequestId(id);
  std::memcpy(request_id_, id, 32);
  request_id_len_ = 32;
}

HeadAction DownstreamConn::OnHead(const MessageHead& head) {
  if (Closing()) return HeadAction::kAbort;
  StartExchange(head);
  // Answered at once and the connection must end: stop parsing what follows.
  if (state_ == State::kAnswered && !keep_alive_after_) return HeadAction::kAbort;
  return HeadAction::kContinue;
}

void DownstreamConn::StartExchange(const MessageHead& head) {
  method_ = metrics::MethodFromString(head.method);
  std::string_view authority;
  std::string_view path = OriginForm(head.url, &authority);
  route_ = w_->topology().RouteIndex(path);
  head_request_ = method_ == metrics::Method::kHead;
  client_minor_ = head.version_major == 1 ? head.version_minor : 1;
  keep_alive_after_ = head.keep_alive && !w_->draining();
  target_.assign(path.substr(0, sizeof(RequestRecord::path)));
  std::string_view id = head.Find(http::HeaderName::kXRequestId);
  if (IsValidRequestId(id)) {
    std::memcpy(request_id_, id.data(), id.size());
    request_id_len_ = id.size();
  } else {
    char gen[32];
    w_->NextRequestId(gen);
    std::memcpy(request_id_, gen, 32);
    request_id_len_ = 32;
  }
  // Answered at once, from kReadingHead (so never counted in flight).
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
  const UpstreamState& us = w_->topology().upstream(upstream_);
  ForwardInfo info{client_ip_, std::string_view(request_id_, request_id_len_),
                   us.endpoints[0]->label};
  pending_up_.clear();
  req_framing_ = AppendUpstreamRequestHead(head, info, &pending_up_);
  if (req_framing_ == Framing::kContentLength && head.content_length <= kBufferedBodyBytes &&
      head.Find(http::HeaderName::kExpect).empty()) {
    Enter(State::kReadingBody);  // dispatched by OnMessageComplete
    return;
  }
  Enter(State::kSendingBody);
  Dispatch();
}

void DownstreamConn::Dispatch() {
  int e = w_->PickEndpoint(upstream_, tried_);
  if (e < 0) {
    LocalReply(503, tried_ == 0 ? "no_healthy_endpoint" : "connect_failed",
               req_framing_ != Framing::kNone && !RequestComplete());
    return;
  }
  tried_ |= uint64_t{1} << (e < 63 ? e : 63);
  endpoint_ = e;
  address_failures_ = 0;
  UpstreamConn* up = w_->Acquire(this, upstream_, e);
  if (up == nullptr) {
    waiting_for_pool_ = true;
    return;
  }
  AttachUpstream(up);
}

void DownstreamConn::AttachUpstream(UpstreamConn* up) {
  up_ = up;
  waiting_for_pool_ = false;
  up->SetHeadRequest(head_request_);
  if (up->connected()) OnUpstreamConnected();
}

void DownstreamConn::OnUpstreamConnected() {
  FlushUp();
  if (up_ != nullptr && up_->write_queue_size() < kHighWatermark &&
      pending_up_.size() < kHighWatermark) {
    SetReading(kStopBackpressure, false);
  }
}

void DownstreamConn::OnUpstreamConnectFailed(const SocketAddress& address) {
  DetachUpstream();
  if (!ExchangeOpen()) return;
  // Never sent, so safe to try again: first the endpoint's other addresses (a name with
  // several, one of them gone, as a client library tries each address of a name in
  // turn), then another endpoint.
  if (++address_failures_ < w_->AddressCount(upstream_, endpoint_)) {
    UpstreamConn* up = w_->Acquire(this, upstream_, endpoint_, &address);
    if (up == nullptr) {
      waiting_for_pool_ = true;
      return;
    }
    AttachUpstream(up);
    return;
  }
  Dispatch();
}

bool DownstreamConn::OnBody(std::string_view data) {
  if (!ExchangeOpen()) return true;  // discarding after a local reply
  req_body_bytes_ += data.size();
  SendToUpstream(data, req_framing_ == Framing::kChunked);
  return true;
}

bool DownstreamConn::OnMessageComplete() {
  switch (state_) {
    case State::kReadingBody:  // read whole: now pick an endpoint
      Enter(State::kAwaitingResponse);
      Dispatch();
      break;
    case State::kSendingBody:
    case State::kStreamingBoth:
      Enter(state_ == State::kSendingBody ? State::kAwaitingResponse : State::kStreamingResponse);
      if (req_framing_ == Framing::kChunked) SendToUpstream("0\r\n\r\n", false);
      break;
    default:  // kAnswered: the rest of an answered request was dropped
      break;
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
  status_ = head.status;
  Enter(state_ == State::kSendingBody ? State::kStreamingBoth : State::kStreamingResponse);
  resp_framing_ =
      AppendDownstreamResponseHead(head, head_request_, client_minor_, keep_alive_after_,
                                   std::string_view(request_id_, request_id_len_), &Out()->data);
  if (resp_framing_ == Framing::kUntilClose) keep_alive_after_ = false;
  *skip_body = head_request_;
}

void DownstreamConn::OnUpstreamBody(std::string_view data) {
  resp_body_bytes_ += data.size();
  last_upstream_ms_ = w_->now_ms();
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
  DetachUpstream();  // first: the connection may go to a waiting request at once
  if (resp_framing_ == Framing::kChunked) Out()->data.append("0\r\n\r\n");
  FlushOut();
  FinishExchange(status_);
}

void DownstreamConn::OnUpstreamFailed(UpstreamErrorKind kind) {
  DetachUpstream();
  if (!ExchangeOpen()) return;
  if (ResponseStarted()) {
    Abort(status_);  // the client already has a head: all we can do is cut the body
    return;
  }
  switch (kind) {
    case UpstreamErrorKind::kTimeout:
      LocalReply(504, "upstream_timeout", !RequestComplete());
      break;
    case UpstreamErrorKind::kBadResponse:
      LocalReply(502, "bad_upstream_response", !RequestComplete());
      break;
    default:
      LocalReply(502, "upstream_reset", !RequestComplete());
      break;
  }
}

void DownstreamConn::DetachUpstream() {
  // Every path that ends this request's use of an upstream connection comes here. The
  // connection goes back to the pool only when its response was read whole and it may be
  // kept alive, the request went up whole (the answer may come before the body ended),
  // and the worker is not draining; otherwise it is closed. A connection that failed
  // has closed itself already (Release is then a no-op).
  if (waiting_for_pool_) {
    waiting_for_pool_ = false;
    w_->RemoveWaiter(this);
  }
  UpstreamConn* up = up_;
  if (up == nullptr) return;
  up_ = nullptr;
  w_->Release(up, up->reusable() && RequestComplete() && !w_->draining());
}

void DownstreamConn::LocalReply(int status, const char* kind, bool close) {
  DetachUpstream();
  if (close || w_->draining()) keep_alive_after_ = false;
  std::string_view id(request_id_, request_id_len_);
  if (status == 200) {
    AppendOptionsResponse(id, !keep_alive_after_, &Out()->data);
  } else {
    AppendErrorResponse(status, kind, w_->topology().upstream(upstream_).config.name, id,
                        !keep_alive_after_, &Out()->data);
  }
  status_ = status;
  FlushOut();
  FinishExchange(status);
}

void DownstreamConn::RecordExchange(int status) {
  if (!w_->proxy_config().record_requests) return;
  uint64_t duration = uv_hrtime() - start_ns_;
  w_->stats().RecordRequest(upstream_, route_, method_, status, duration, req_body_bytes_,
                            resp_body_bytes_);
  if (!w_->wants_request_records()) return;
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
  w_->KeepRequestRecord(rec, client_ip_);
}

void DownstreamConn::FinishExchange(int status) {
  // kReadingHead: speedmon's own answer to a request it never dispatched.
  if (!ExchangeOpen() && state_ != State::kReadingHead) return;
  RecordExchange(status);
  const bool request_complete = RequestComplete();
  Enter(State::kAnswered);
  if (in_codec_) return;  // Process() ends the exchange once the codec has returned
  if (!request_complete || !keep_alive_after_) {
    // The answer went out before the request ended (or the connection must end):
    // whatever the client still sends cannot be framed any more.
    CloseAfterFlush();
    return;
  }
  ResumeAfterExchange();
}

void DownstreamConn::ResetExchange() {
  DetachUpstream();  // none is attached by now
  req_body_bytes_ = resp_body_bytes_ = 0;
  status_ = 0;
  tried_ = 0;
  endpoint_ = -1;
  req_framing_ = resp_framing_ = Framing::kNone;
  Enter(State::kIdle);
}

void DownstreamConn::ResumeAfterExchange() {
  ResetExchange();
  codec_.Resume();
  // A response that promised keep-alive: after a reload the next one says close (a
  // close now could cross the client's next request); on shutdown, close now.
  if (w_->draining() && !w_->reload_draining()) {
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
  DetachUpstream();
  keep_alive_after_ = false;
  if (ExchangeOpen()) RecordExchange(status_for_stats);
  Close();  // takes the exchange out of the in-flight gauge
}

void DownstreamConn::ShortenIdle(uint64_t ms) {
  if (state_ == State::kIdle) SetDeadline(Deadline::kIdle, ms);
}

void DownstreamConn::MaybeCloseIdle() {
  if ((state_ == State::kIdle || state_ == State::kReadingHead) && !codec_.InMessage()) {
    CloseAfterFlush();
  }
}

void DownstreamConn::Write(WriteReq* wr) {
  if (state_ == State::kClosed) {
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
  if (self->state_ == State::kClosed) return;
  if (status < 0) {
    if (self->ExchangeOpen()) {
      self->Abort(self->ResponseStarted() ? self->status_ : 499);
    } else {
      self->Close();
    }
    return;
  }
  self->last_activity_ms_ = self->w_->now_ms();
  if (self->up_ != nullptr && self->tcp_.write_queue_size < kLowWatermark) {
    self->up_->SetReading(kStopBackpressure, false);
  }
  if (self->state_ == State::kClosingAfterFlush && self->pending_writes_ == 0) {
    self->StartLinger();
  }
}

void DownstreamConn::CloseAfterFlush() {
  if (Closing()) return;
  if (pending_writes_ == 0) {
    StartLinger();
    return;
  }
  Enter(State::kClosingAfterFlush);
  DetachUpstream();
  SetReading(0, false);  // re-evaluates: stops reading
}

void DownstreamConn::StartLinger() {
  // A lingering close (http/lingering_close.h): half-close and drain what the client
  // still sends.
  Enter(State::kLingering);
  DetachUpstream();
  shutdown_req_.data = this;
  if (!http::BeginLingeringClose(reinterpret_cast<uv_stream_t*>(&tcp_), &shutdown_req_,
                                 OnShutdown)) {
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
  if (self->state_ == State::kClosed) return;
  if (http::LingeringDone(status, self->peer_eof_)) self->Close();
}

void DownstreamConn::OnTimer(uv_timer_t* t) {
  DownstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(t));
  base::Guard(
      base::Component::kProxy, "client timer", [&] { HandleTimer(self); }, [&] { self->Close(); });
}

void DownstreamConn::HandleTimer(DownstreamConn* self) {
  const uint64_t now = self->w_->now_ms();
  if (now < self->deadline_ms_) {
    self->StartTimer(self->deadline_ms_ - now);  // the deadline moved later meanwhile
    return;
  }
  const auto& pc = self->w_->proxy_config();
  const State state = self->state_;
  switch (self->deadline_) {
    case Deadline::kIdle:
      self->w_->stats().RecordTimeout(DownstreamTimeout::kIdle);
      self->CloseAfterFlush();
      return;
    case Deadline::kHeader:
      self->w_->stats().RecordTimeout(DownstreamTimeout::kHeader);
      if (state == State::kReadingHead) {
        self->BeginMinimalExchange();
        self->LocalReply(408, "header_timeout", true);
      } else {
        self->CloseAfterFlush();  // answered at once, but the request's body never ended
      }
      return;
    case Deadline::kRequest:
      if (state == State::kReadingBody || state == State::kSendingBody) {
        // The client has not finished sending its body: the upstream is not the slow
        // one. 408 and close, counted against the client.
        self->w_->stats().RecordTimeout(DownstreamTimeout::kRequestBody);
        self->LocalReply(408, "request_body_timeout", true);
        return;
      }
      if (state == State::kAwaitingResponse) {
        if ((self->up_ != nullptr || self->waiting_for_pool_) && self->endpoint_ >= 0) {
          self->w_->stats().RecordUpstreamError(self->upstream_, self->endpoint_,
                                                UpstreamErrorKind::kTimeout);
        }
        self->LocalReply(504, "upstream_timeout", false);  // the request was complete
        return;
      }
      self->CloseAfterFlush();
      return;
    case Deadline::kResponse: {
      // Two clocks: an upstream silent for request_timeout is a timeout; a client that
      // reads nothing for idle_timeout (while it holds the upstream back) is gone.
      bool held_by_client = self->up_ != nullptr && (self->up_->ReadStoppedFor(kStopBackpressure));
      uint64_t last = held_by_client ? self->last_activity_ms_ : self->last_upstream_ms_;
      uint64_t limit =
          held_by_client
              ? static_cast<uint64_t>(pc.idle_timeout.count())
              : static_cast<uint64_t>(
                    self->w_->topology().upstream(self->upstream_).config.request_timeout.count());
      uint64_t quiet = now - last;
      if (quiet < limit) {
        self->deadline_ms_ = now + (limit - quiet);
        self->StartTimer(limit - quiet);
        return;
      }
      if (held_by_client) {
        self->w_->stats().RecordTimeout(DownstreamTimeout::kResponseRead);
      } else if (self->endpoint_ >= 0) {
        self->w_->stats().RecordUpstreamError(self->upstream_, self->endpoint_,
                                              UpstreamErrorKind::kTimeout);
      }
      self->Abort(self->status_);
      return;
    }
    case Deadline::kFlush: {
      // The final answer is queued and the client reads none of it.
      const uint64_t limit = static_cast<uint64_t>(pc.idle_timeout.count());
      const uint64_t quiet = now - self->last_activity_ms_;
      if (quiet < limit) {
        self->deadline_ms_ = now + (limit - quiet);
        self->StartTimer(limit - quiet);
        return;
      }
      self->w_->stats().RecordTimeout(DownstreamTimeout::kResponseRead);
      self->Close();
      return;
    }
    case Deadline::kLinger:
      self->Close();
      return;
  }
}

void DownstreamConn::Close() {
  if (state_ == State::kClosed) return;
  Enter(State::kClosed);  // takes an open exchange out of the in-flight gauge
  DetachUpstream();
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
