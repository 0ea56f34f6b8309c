// A small blocking HTTP/1.1 client over POSIX sockets, for the notifier's sender
// threads (and the tests): one request per connection ("Connection: close"), connect and
// I/O bounded by one deadline, plain http:// only (Alertmanager and webhooks on loopback
// or a private network; no TLS).
//
// Thread: any thread; no shared state. It blocks the calling thread for up to `timeout`,
// which is why only sender threads call it, never the main loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace speedmon::alerting {

struct HttpResponse {
  int status = 0;     // 0 when the exchange failed
  std::string body;   // de-chunked
  std::string error;  // "" on a complete response: "connect: Connection refused", ...
  bool ok() const { return error.empty(); }
};

// The response parser behind HttpRequest (public for its fuzz target): kDone when `buf`
// holds a whole response (`eof`: the server closed, so a body without length ends here).
enum class ResponseParse { kNeedMore, kDone, kBad };
ResponseParse ParseHttpResponse(const std::string& buf, bool eof, HttpResponse* out);

// Sends one request to `to` (config::ParseHttpUrl gives it from a URL) and reads the
// whole response (at most kMaxResponseBytes).
// `timeout` bounds connect, send and receive together; resolving a host name
// (getaddrinfo) is not bounded by it, which is why targets are best given as IP
// literals or names the local resolver answers (/etc/hosts, Docker's DNS).
// `path` is sent as is ("/api/v2/alerts"); `body` may be empty (no Content-Type then).
// Never throws; every failure is a response with `error` set.
// `cancel_fd`, when >= 0, is polled beside the socket: once it is readable the request
// ends at once with error "cancelled" (how a stopping notifier stops a hung request).
HttpResponse HttpRequest(const config::Address& to, std::string_view method, std::string_view path,
                         std::string_view body, std::chrono::milliseconds timeout,
                         int cancel_fd = -1);

inline constexpr size_t kMaxResponseBytes = 4 << 20;

}  // namespace speedmon::alerting
