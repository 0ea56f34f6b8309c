// The admin HTTP server on the main loop: /metrics, /healthz, /ready, /api/v1/*, and
// the status page. Small and strict: one request at a time per connection, bounded head
// and body, keep-alive. Handlers may answer later (after a store commit) and from any
// thread through the Responder, which marshals the answer back onto the main loop. An
// answer given before the handler returns (a scrape, a read) is written at once, in the
// same loop iteration.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "config/config.h"

struct uv_loop_s;

namespace speedmon::admin {

struct Request {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool loopback_peer = false;

  // First header with this name (case-insensitive), or empty.
  std::string_view Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Instead of `body` when set: bytes that `body_owner` keeps alive until they are written.
  // /metrics answers with its text buffer this way, so a scrape of a hundred kilobytes is
  // not copied into `body`, and the buffer is written into again once this answer is sent.
  std::shared_ptr<const void> body_owner;
  std::string_view owned_body;

  std::string_view BodyBytes() const { return body_owner ? owned_body : body; }
};

// Answers one request, from any thread. Only the first call counts; calling it after
// the client left is harmless.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, Responder)>;

class ServerImpl;

class Server {
 public:
  // REQUIRES: `loop` is the main loop and outlives the server.
  Server(uv_loop_s* loop, const config::AdminConfig& config, uint32_t max_header_bytes,
         Handler handler);
  ~Server();
  // Binds and listens.
  base::Status Listen();
  // The bound port (useful with port 0).
  int port() const;
  // Stop listening and close every connection; `done` runs when all handles are closed.
  void Close(std::function<void()> done);

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace speedmon::admin
