// The upstream side of a proxied exchange: connect, send the request, parse the response
// and hand it to the downstream connection; kept in the worker's pool between requests.
// Worker thread only. See conn.h.
#include "base/boundary.h"
#include "proxy/conn.h"

namespace speedmon::proxy {

using metrics::UpstreamErrorKind;

namespace {
UpstreamConn* FromHandle(const uv_handle_t* h) { return static_cast<UpstreamConn*>(h->data); }
}  // namespace

UpstreamConn::UpstreamConn(WorkerImpl* w, int upstream, int endpoint, const SocketAddress& address)
    : w_(w),
      upstream_(upstream),
      endpoint_(endpoint),
      address_(address),
      codec_(HttpCodec::Type::kResponse, this, 256 * 1024) {
  uv_tcp_init(w->loop(), &tcp_);
  uv_timer_init(w->loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  open_handles_ = 2;
}

UpstreamConn::~UpstreamConn() = default;

void UpstreamConn::Connect() {
  const UpstreamState& us = w_->topology().upstream(upstream_);
  int rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&address_.addr),
                          OnConnect);
  // A connect that fails at once is reported from the timer like one that fails later,
  // so the caller never sees a callback before Connect returns.
  uv_timer_start(&timer_, OnTimer, rc == 0 ? us.config.connect_timeout.count() : 0, 0);
}

void UpstreamConn::OnConnect(uv_connect_t* req, int status) {
  UpstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(req->handle));
  base::Guard(
      base::Component::kProxy, "upstream connect", [&] { HandleConnect(self, status); },
      [&] { self->Fail(UpstreamErrorKind::kConnect); });
}

void UpstreamConn::HandleConnect(UpstreamConn* self, int status) {
  if (status == UV_ECANCELED || self->closing_) return;
  if (status < 0) {
    self->Fail(UpstreamErrorKind::kConnect);
    return;
  }
  self->connected_ = true;
  uv_timer_stop(&self->timer_);
  uv_tcp_nodelay(&self->tcp_, 1);
  self->SetReading(0, false);
  if (self->ds_ != nullptr) self->ds_->OnUpstreamConnected();
}

void UpstreamConn::OnTimer(uv_timer_t* t) {
  UpstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(t));
  base::Guard(
      base::Component::kProxy, "upstream timer", [&] { HandleTimer(self); },
      [&] { self->Fail(UpstreamErrorKind::kTimeout); });
}

void UpstreamConn::HandleTimer(UpstreamConn* self) {
  if (self->closing_) return;
  if (!self->connected_) {
    self->Fail(UpstreamErrorKind::kConnect);  // refused at once, or connect_timeout
    return;
  }
  // The pool's idle timer is lazy (EnterPool): it keeps running while the
  // connection carries requests, and only counts once it finds the connection idle.
  if (!self->in_pool_) return;  // busy: the next Release starts the timer again
  const uint64_t idle = static_cast<uint64_t>(self->w_->proxy_config().idle_timeout.count());
  const uint64_t quiet = self->w_->now_ms() - self->pooled_ms_;
  if (quiet < idle) {
    uv_timer_start(&self->timer_, OnTimer, idle - quiet, 0);
    return;
  }
  self->Close();  // idle too long in the pool
}

void UpstreamConn::Attach(DownstreamConn* ds) {
  ds_ = ds;
  complete_ = false;
  got_bytes_ = false;
  interim_ = false;
  read_stops_ = 0;
  if (connected_) SetReading(0, false);
}

void UpstreamConn::DropRequest() {
  if (ds_ == nullptr) return;
  ds_ = nullptr;
  w_->EndRequest(upstream_, endpoint_);
}

void UpstreamConn::PrepareForReuse() {
  codec_.Reset();
  reused_ = true;
  head_request_ = false;
}

void UpstreamConn::EnterPool(UpstreamConn** idle_head) {
  next_ = *idle_head;
  prev_ = nullptr;
  if (*idle_head != nullptr) (*idle_head)->prev_ = this;
  *idle_head = this;
  in_pool_ = true;
  // Lazy idle timer: one still running from an earlier stay in the pool fires no later
  // than this stay's deadline, and re-arms itself for the rest (HandleTimer).
  pooled_ms_ = w_->now_ms();
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uv_timer_start(&timer_, OnTimer, w_->proxy_config().idle_timeout.count(), 0);
  }
}

void UpstreamConn::LeavePool(UpstreamConn** idle_head) {
  if (prev_ != nullptr) prev_->next_ = next_;
  if (next_ != nullptr) next_->prev_ = prev_;
  if (*idle_head == this) *idle_head = next_;
  prev_ = next_ = nullptr;
  in_pool_ = false;
}

void UpstreamConn::SetReading(uint8_t reason, bool stopped) {
  if (stopped) {
    read_stops_ |= reason;
  } else {
    read_stops_ &= static_cast<uint8_t>(~reason);
  }
  bool want = read_stops_ == 0 && connected_ && !closing_;
  if (want && !reading_) {
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

void UpstreamConn::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  WorkerImpl* w = FromHandle(h)->w_;
  buf->base = w->read_buffer();
  buf->len = w->read_buffer_size();
}

void UpstreamConn::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  UpstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(s));
  base::Guard(
      base::Component::kProxy, "upstream read", [&] { HandleRead(self, n, buf); },
      [&] { self->Fail(UpstreamErrorKind::kReset); });
}

void UpstreamConn::HandleRead(UpstreamConn* self, ssize_t n, const uv_buf_t* buf) {
  if (self->closing_) return;
  if (self->ds_ == nullptr) {
    // Idle in the pool: bytes or a close from the server end this connection.
    self->Close();
    return;
  }
  if (n > 0) {
    self->got_bytes_ = true;
    HttpCodec::Result r = self->codec_.Execute(buf->base, static_cast<size_t>(n));
    if (self->closing_) return;
    switch (r.status) {
      case HttpCodec::Status::kOk:
        if (self->ds_ != nullptr) self->ds_->FlushOutput();
        return;
      case HttpCodec::Status::kPaused:
        if (r.consumed < static_cast<size_t>(n)) self->keep_alive_ = false;  // junk after
        self->Finished();
        return;
      case HttpCodec::Status::kAborted:
        // Only a 101 aborts with the request still attached: speedmon never asks for
        // an upgrade, so it is a bad response.
        if (self->ds_ != nullptr) self->Fail(UpstreamErrorKind::kBadResponse);
        return;
      case HttpCodec::Status::kError:
      case HttpCodec::Status::kHeadTooLarge:
        self->Fail(UpstreamErrorKind::kBadResponse);
        return;
    }
    return;
  }
  if (n == 0) return;
  // EOF or a reset. A body that runs until close ends here.
  HttpCodec::Status st = self->codec_.Finish();
  if (self->closing_) return;
  if (st == HttpCodec::Status::kOk && self->complete_) {
    self->keep_alive_ = false;
    self->Finished();
    return;
  }
  self->Fail(UpstreamErrorKind::kReset);
}

HeadAction UpstreamConn::OnHead(const MessageHead& head) {
  if (closing_ || ds_ == nullptr) return HeadAction::kAbort;
  if (head.status == 101) return HeadAction::kAbort;  // we never ask for an upgrade
  interim_ = head.status < 200;
  keep_alive_ = head.keep_alive;
  bool skip = false;
  ds_->OnUpstreamHead(head, &skip);
  if (closing_ || ds_ == nullptr) return HeadAction::kAbort;
  return interim_ || skip || head_request_ ? HeadAction::kSkipBody : HeadAction::kContinue;
}

bool UpstreamConn::OnBody(std::string_view data) {
  if (closing_ || ds_ == nullptr) return false;
  ds_->OnUpstreamBody(data);
  return !closing_ && ds_ != nullptr;
}

bool UpstreamConn::OnMessageComplete() {
  if (interim_) {
    interim_ = false;
    return false;  // the final response follows on the same request
  }
  complete_ = true;
  return true;
}

void UpstreamConn::Finished() {
  // A 101 aborted above never gets here; a HEAD or 1xx skipped its body. The downstream
  // side releases this connection (DownstreamConn::DetachUpstream: pool or close).
  if (ds_ != nullptr) {
    ds_->OnUpstreamComplete();
  } else {
    w_->Release(this, false);
  }
}

void UpstreamConn::Fail(UpstreamErrorKind kind) {
  if (closing_) return;
  w_->stats().RecordUpstreamError(upstream_, endpoint_, kind);
  DownstreamConn* ds = ds_;
  bool was_connected = connected_;
  DropRequest();
  Close();
  if (ds == nullptr) return;
  if (kind == UpstreamErrorKind::kConnect && !was_connected) {
    ds->OnUpstreamConnectFailed(address_);
  } else {
    ds->OnUpstreamFailed(kind);
  }
}

void UpstreamConn::Write(WriteReq* wr) {
  if (closing_) {
    w_->FreeWrite(wr);
    return;
  }
  w_->SubmitWrite(reinterpret_cast<uv_stream_t*>(&tcp_), wr, OnWrite);
}

void UpstreamConn::OnWrite(uv_write_t* req, int status) {
  UpstreamConn* self = FromHandle(reinterpret_cast<uv_handle_t*>(req->handle));
  base::Guard(
      base::Component::kProxy, "upstream write", [&] { HandleWrite(self, req, status); },
      [&] { self->Fail(UpstreamErrorKind::kReset); });
}

void UpstreamConn::HandleWrite(UpstreamConn* self, uv_write_t* req, int status) {
  self->w_->FreeWrite(reinterpret_cast<WriteReq*>(req));
  if (self->closing_) return;
  if (status < 0) {
    self->Fail(UpstreamErrorKind::kReset);
    return;
  }
  if (self->ds_ != nullptr && self->tcp_.write_queue_size < kLowWatermark) {
    self->ds_->OnUpstreamDrained();
  }
}

void UpstreamConn::Close() {
  if (closing_) return;
  closing_ = true;
  DropRequest();
  w_->ConnClosing(this);
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
}

void UpstreamConn::OnClosed(uv_handle_t* h) {
  UpstreamConn* self = FromHandle(h);
  if (--self->open_handles_ == 0) delete self;
}

}  // namespace speedmon::proxy
