// The admin HTTP server on the main loop. See server.h.
#include "admin/server.h"

#include <uv.h>

#include <atomic>
#include <charconv>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/boundary.h"
#include "base/json.h"
#include "base/strings.h"
#include "http/http_codec.h"
#include "http/http_message.h"
#include "http/lingering_close.h"
#include "proxy/topology.h"

namespace speedmon::admin {

using http::AppendDateHeader;
using http::CodecHandler;
using http::HeadAction;
using http::HttpCodec;
using http::MessageHead;
using http::ReasonPhrase;

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (base::EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

namespace {

// Answers that arrive from other threads wait here for the main loop.
struct Mailbox {
  std::mutex mu;
  std::deque<std::pair<uint64_t, Response>> items;
  bool closed = false;
  uv_async_t* async = nullptr;
};

// One request's answer. A handler that answers before it returns (a scrape, a read) does
// so on the main thread: the answer is kept in `now` and written by the caller at once.
// Only a later answer, from another thread (a store commit), goes through the mailbox and
// a wake-up of the loop, which costs a loop iteration and three system calls more.
struct PendingAnswer {
  std::atomic<bool> answered{false};
  std::thread::id loop_thread;
  bool in_handler = true;  // read and written on loop_thread only
  std::optional<Response> now;
};

}  // namespace

class AdminConn;

class ServerImpl {
 public:
  ServerImpl(uv_loop_t* loop, const config::AdminConfig& cfg, uint32_t max_head, Handler handler)
      : loop_(loop), cfg_(cfg), max_head_(max_head), handler_(std::move(handler)) {
    mailbox_ = std::make_shared<Mailbox>();
    uv_async_init(loop_, &async_, OnAsync);
    async_.data = this;
    mailbox_->async = &async_;
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
  }

  base::Status Listen();
  void Close(std::function<void()> done);
  void Deliver(uint64_t conn_id, Response resp);
  void ConnGone(uint64_t id) {
    conns_.erase(id);
    MaybeDone();
  }
  // The answer for one request. Only its first call counts: a handler that answered and
  // then threw keeps its answer, and a late second answer cannot reach the connection's
  // next request. An answer given on the loop thread while the handler runs lands in
  // `pending->now`.
  Responder MakeResponder(uint64_t conn_id, std::shared_ptr<PendingAnswer> pending) {
    std::weak_ptr<Mailbox> weak = mailbox_;
    return [weak, conn_id, pending = std::move(pending)](Response resp) {
      if (pending->answered.exchange(true)) return;
      // The thread test comes first: another thread never reads in_handler.
      if (std::this_thread::get_id() == pending->loop_thread && pending->in_handler) {
        pending->now = std::move(resp);
        return;
      }
      auto box = weak.lock();
      if (!box) return;
      std::lock_guard<std::mutex> lock(box->mu);
      if (box->closed) return;
      box->items.emplace_back(conn_id, std::move(resp));
      uv_async_send(box->async);
    };
  }
  int port() const { return port_; }

  uv_loop_t* loop_;
  config::AdminConfig cfg_;
  uint32_t max_head_;
  Handler handler_;

 private:
  static void OnConnection(uv_stream_t* server, int status);
  static void OnAsync(uv_async_t* a);
  void MaybeDone();

  uv_tcp_t listener_;
  uv_async_t async_;
  std::shared_ptr<Mailbox> mailbox_;
  std::unordered_map<uint64_t, AdminConn*> conns_;
  uint64_t next_id_ = 1;
  int port_ = 0;
  bool closing_ = false;
  bool async_closed_ = false;
  int closing_handles_ = 0;
  std::function<void()> done_;
  friend class AdminConn;
};

class AdminConn final : public CodecHandler {
 public:
  AdminConn(ServerImpl* s, uint64_t id)
      : s_(s), id_(id), codec_(HttpCodec::Type::kRequest, this, s->max_head_) {
    uv_tcp_init(s->loop_, &tcp_);
    tcp_.data = this;
    uv_timer_init(s->loop_, &timer_);
    timer_.data = this;
  }

  bool Accept(uv_stream_t* server) {
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) return false;
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      char ip[64] = {};
      if (ss.ss_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), ip, sizeof ip);
      } else {
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), ip, sizeof ip);
      }
      config::Address a{ip, 1};
      loopback_ = a.IsLoopback();
    }
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead);
    uv_timer_start(&timer_, OnTimer, 60000, 0);
    return true;
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    s_->ConnGone(id_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
  }

  // Server shutdown: answer what is being answered, then close; idle ones close now.
  void CloseWhenIdle() {
    if (waiting_) {
      close_after_ = true;
    } else if (writes_ > 0) {
      close_when_written_ = true;
    } else {
      Close();
    }
  }

  // An answer that came through the mailbox: written, then the connection goes on with
  // what was pipelined behind the request and reads again.
  void Respond(Response resp) {
    if (!WriteAnswer(std::move(resp))) return;
    std::string rest;
    rest.swap(stash_);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead);
    if (!rest.empty()) Feed(rest.data(), rest.size());
  }

  // Writes the answer to the request being waited for. True when the connection stays
  // open for the next request; the codec then accepts input again and the idle timer
  // runs anew.
  bool WriteAnswer(Response resp) {
    if (closed_ || !waiting_) return false;
    waiting_ = false;
    bool close = !keep_alive_ || close_after_ || s_->closing_;
    // Head and body go out as two buffers of one write: the body (a scrape can be
    // megabytes) is moved or, when it has an owner, held by it; never copied.
    auto* out = new Outgoing;
    std::string* head = &out->head;
    head->reserve(256);
    head->append("HTTP/1.1 ");
    head->append(std::to_string(resp.status));
    head->push_back(' ');
    head->append(ReasonPhrase(resp.status));
    head->append("\r\n");
    AppendDateHeader(head);
    head->append("Content-Type: ");
    head->append(resp.content_type);
    head->append("\r\nContent-Length: ");
    head->append(std::to_string(resp.BodyBytes().size()));
    head->append("\r\nCache-Control: no-store\r\n");
    for (const auto& [k, v] : resp.headers) {
      head->append(k);
      head->append(": ");
      head->append(v);
      head->append("\r\n");
    }
    if (close) head->append("Connection: close\r\n");
    head->append("\r\n");
    std::string_view body;  // none for HEAD
    if (!head_request_ && resp.body_owner) {
      out->body_owner = std::move(resp.body_owner);
      body = resp.owned_body;
    } else if (!head_request_) {
      out->body = std::move(resp.body);
      body = out->body;
    }
    out->req.data = out;
    // libuv only reads the buffers it is given.
    uv_buf_t bufs[2] = {
        uv_buf_init(out->head.data(), static_cast<unsigned>(out->head.size())),
        uv_buf_init(const_cast<char*>(body.data()), static_cast<unsigned>(body.size()))};
    const unsigned nbufs = body.empty() ? 1 : 2;
    // Tried at once first: an answer the socket takes whole (nearly all of them) needs no
    // write request, whose completion would cost an epoll_ctl in libuv.
    int sent = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, nbufs);
    if (sent < 0 && sent != UV_EAGAIN) {
      delete out;
      Close();
      return false;
    }
    size_t skip = sent < 0 ? 0 : static_cast<size_t>(sent);
    uv_buf_t* rest = bufs;
    unsigned nrest = nbufs;
    while (nrest > 0 && skip >= rest->len) {
      skip -= rest->len;
      ++rest;
      --nrest;
    }
    if (close) {
      // Nothing more is read for this connection but the lingering close's drain.
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      close_when_written_ = true;
    }
    if (nrest == 0) {
      delete out;
      if (close) {
        if (writes_ == 0) Linger();
        return false;
      }
    } else {
      rest->base += skip;
      rest->len -= skip;
      if (uv_write(&out->req, reinterpret_cast<uv_stream_t*>(&tcp_), rest, nrest, OnWrite) != 0) {
        delete out;
        Close();
        return false;
      }
      ++writes_;
      if (close) return false;
    }
    codec_.Resume();
    uv_timer_start(&timer_, OnTimer, 60000, 0);
    return true;
  }

  // CodecHandler
  HeadAction OnHead(const MessageHead& h) override {
    req_ = Request{};
    req_.method = std::string(h.method);
    std::string_view url = h.url;
    size_t q = url.find('?');
    req_.path = std::string(url.substr(0, q));
    if (q != std::string_view::npos) req_.query = std::string(url.substr(q + 1));
    for (const auto& hd : h.headers) req_.headers.emplace_back(hd.name, hd.value);
    req_.loopback_peer = loopback_;
    keep_alive_ = h.keep_alive;
    head_request_ = req_.method == "HEAD";
    too_large_ = h.has_content_length && h.content_length > s_->cfg_.max_body_bytes;
    if (too_large_) return HeadAction::kAbort;
    return HeadAction::kContinue;
  }
  bool OnBody(std::string_view d) override {
    if (req_.body.size() + d.size() > s_->cfg_.max_body_bytes) {
      too_large_ = true;
      return false;
    }
    req_.body.append(d);
    return true;
  }
  bool OnMessageComplete() override {
    complete_ = true;
    return true;
  }

 private:
  static void OnAlloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = new char[suggested];
    buf->len = suggested;
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<AdminConn*>(s->data);
    if (n > 0 && !self->closed_ && !self->lingering_) {
      base::Guard(
          base::Component::kAdmin, "admin read",
          [&] { self->Feed(buf->base, static_cast<size_t>(n)); }, [&] { self->Close(); });
    }
    delete[] buf->base;
    if (n < 0) self->Close();
  }

  // After a final answer (413 while the body is still coming, a bad request): a
  // lingering close (http/lingering_close.h). The client's EOF closes it in OnRead.
  void Linger() {
    lingering_ = true;
    shutdown_req_.data = this;
    if (!http::BeginLingeringClose(reinterpret_cast<uv_stream_t*>(&tcp_), &shutdown_req_,
                                   [](uv_shutdown_t* req, int status) {
                                     auto* c = static_cast<AdminConn*>(req->data);
                                     if (http::LingeringDone(status, false)) c->Close();
                                   })) {
      Close();
      return;
    }
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead);
    uv_timer_start(&timer_, OnTimer, http::kLingeringCloseMs, 0);
  }
  static void OnTimer(uv_timer_t* t) {
    auto* self = static_cast<AdminConn*>(t->data);
    if (!self->waiting_ || self->lingering_) self->Close();
  }
  static void OnWrite(uv_write_t* req, int status) {
    auto* self = static_cast<AdminConn*>(req->handle->data);
    delete static_cast<Outgoing*>(req->data);
    --self->writes_;
    if (status == UV_ECANCELED) return;
    if (self->closed_) return;
    if (status < 0) {
      self->Close();
    } else if (self->close_when_written_ && self->writes_ == 0 && !self->lingering_) {
      self->Linger();
    }
  }
  static void OnClosed(uv_handle_t* h) {
    auto* self = static_cast<AdminConn*>(h->data);
    if (++self->closed_handles_ == 2) delete self;
  }

  // Hands the request to the handler; an exception from it answers this request with a
  // 500 (unless the handler answered before it threw). Returns the answer when the
  // handler gave it before returning; otherwise it comes later through Respond.
  std::optional<Response> Dispatch() {
    auto pending = std::make_shared<PendingAnswer>();
    pending->loop_thread = std::this_thread::get_id();
    Responder respond = s_->MakeResponder(id_, pending);
    base::Guard(
        base::Component::kAdmin, "admin handler", [&] { s_->handler_(req_, respond); },
        [&] {
          Response r;
          r.status = 500;
          r.body = base::JsonError("internal error");
          respond(std::move(r));
        });
    pending->in_handler = false;
    return std::move(pending->now);
  }

  // Parses and answers the requests in `data`, pipelined ones one after another. A loop,
  // not a recursion, so a read full of tiny pipelined requests answered at once does not
  // nest a call per request.
  void Feed(const char* data, size_t len) {
    HttpCodec::Result r;
    while (true) {
      complete_ = false;
      r = codec_.Execute(data, len);
      if (closed_) return;
      if (r.status == HttpCodec::Status::kPaused) {
        waiting_ = true;
        std::optional<Response> now = Dispatch();
        if (closed_) return;
        data += r.consumed;
        len -= r.consumed;
        if (now.has_value()) {
          if (!WriteAnswer(std::move(*now))) return;
          continue;
        }
        // The answer comes later: no more input until then.
        stash_.assign(data, len);
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
        uv_timer_stop(&timer_);
        return;
      }
      break;
    }
    if (r.status == HttpCodec::Status::kOk) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    waiting_ = true;
    close_after_ = true;
    Response resp;
    if (too_large_) {
      resp.status = 413;
      resp.body = base::JsonError("body exceeds max_body_bytes (" +
                                  std::to_string(s_->cfg_.max_body_bytes) + ")");
    } else if (r.status == HttpCodec::Status::kHeadTooLarge) {
      resp.status = codec_.error_status();  // 431, or 414 for the request-target alone
      resp.body = base::JsonError(resp.status == 414 ? "request-target too long"
                                                     : "request head too large");
    } else {
      resp.status = codec_.error_status();  // 400, 501 or 505
      resp.body = base::JsonError(std::string("malformed request: ") + codec_.error_reason());
    }
    Respond(std::move(resp));
  }

  // One answer on its way: the write request and the buffers it points into.
  struct Outgoing {
    uv_write_t req;
    std::string head;
    std::string body;
    std::shared_ptr<const void> body_owner;  // what holds the body when `body` does not
  };

  ServerImpl* s_;
  uint64_t id_;
  HttpCodec codec_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  Request req_;
  std::string stash_;
  bool loopback_ = false;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool too_large_ = false;
  bool complete_ = false;
  bool waiting_ = false;
  bool close_after_ = false;
  bool close_when_written_ = false;
  bool lingering_ = false;
  uv_shutdown_t shutdown_req_;
  bool closed_ = false;
  int closed_handles_ = 0;
  int writes_ = 0;
  friend class ServerImpl;
};

base::Status ServerImpl::Listen() {
  base::StatusOr<proxy::SocketAddress> resolved = proxy::Resolve(cfg_.address);
  if (!resolved.ok()) return resolved.status();
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&resolved->addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, OnConnection);
  if (rc != 0) {
    return base::UnavailableError("cannot listen on admin address " + cfg_.address.ToString() +
                                  ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int blen = sizeof bound;
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return base::OkStatus();
}

void ServerImpl::OnConnection(uv_stream_t* server, int status) {
  auto* s = static_cast<ServerImpl*>(server->data);
  if (status < 0 || s->closing_) return;
  uint64_t id = s->next_id_++;
  auto* c = new AdminConn(s, id);
  s->conns_[id] = c;
  if (!c->Accept(server) || s->conns_.size() > 1024) c->Close();
}

void ServerImpl::OnAsync(uv_async_t* a) {
  auto* s = static_cast<ServerImpl*>(a->data);
  std::deque<std::pair<uint64_t, Response>> items;
  {
    std::lock_guard<std::mutex> lock(s->mailbox_->mu);
    items.swap(s->mailbox_->items);
  }
  for (auto& item : items) {
    base::Guard(base::Component::kAdmin, "admin answer",
                [&] { s->Deliver(item.first, std::move(item.second)); });
  }
}

void ServerImpl::Deliver(uint64_t conn_id, Response resp) {
  auto it = conns_.find(conn_id);
  if (it != conns_.end()) it->second->Respond(std::move(resp));
}

void ServerImpl::Close(std::function<void()> done) {
  closing_ = true;
  done_ = std::move(done);
  // Answers still on their way (a store commit) are delivered before the connections
  // close: the mailbox stays open until the last connection is gone.
  std::vector<AdminConn*> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (AdminConn* c : all) c->CloseWhenIdle();
  closing_handles_ = 1;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
    auto* s = static_cast<ServerImpl*>(h->data);
    --s->closing_handles_;
    s->MaybeDone();
  });
}

void ServerImpl::MaybeDone() {
  if (!closing_ || closing_handles_ != 0 || !conns_.empty() || async_closed_) return;
  async_closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mailbox_->mu);
    mailbox_->closed = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) {
    auto* s = static_cast<ServerImpl*>(h->data);
    if (s->done_) {
      auto done = std::move(s->done_);
      s->done_ = nullptr;
      done();
    }
  });
}

Server::Server(uv_loop_s* loop, const config::AdminConfig& config, uint32_t max_header_bytes,
               Handler handler)
    : impl_(std::make_unique<ServerImpl>(loop, config, max_header_bytes, std::move(handler))) {}
Server::~Server() = default;
base::Status Server::Listen() { return impl_->Listen(); }
int Server::port() const { return impl_->port(); }
void Server::Close(std::function<void()> done) { impl_->Close(std::move(done)); }

}  // namespace speedmon::admin
