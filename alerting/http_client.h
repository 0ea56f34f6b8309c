// Outbound HTTP for the notifier's sender threads (and the tests), through libcurl: one
// request per call on its own handles, http:// or https:// (TLS by OpenSSL, with the
// per-target settings of config::HttpClientConfig), one deadline for all of it (resolving
// the name included), cancellable from another thread, the response body capped.
//
// Thread: any thread; no shared state. It blocks the calling thread for up to `timeout`,
// which is why only sender threads call it, never a libuv loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/config.h"

namespace speedmon::alerting {

struct HttpResponse {
  int status = 0;    // the final status (redirects are not followed: a 3xx is an answer)
  std::string body;  // decoded (chunked, gzip); bytes as received, not checked as UTF-8
};

// Loads libcurl (dlopen of libcurl.so.4) and initialises it and OpenSSL for the process,
// once; later calls return the first result. The notifier calls it when it has a target,
// so a speedmon without notice targets never maps libcurl; HttpRequest calls it too.
// kUnavailable when libcurl cannot be loaded, kInternal when it cannot initialise.
base::Status InitHttpClient();

// Sends one request to `url` (config::ParseHttpUrl gives it; `url.path` is the request
// target, sent as is) with `client`'s TLS and auth settings.
// `timeout` bounds the whole exchange: resolving the host name, connecting, the TLS
// handshake, sending and receiving the whole response.
// `body` may be empty; a POST or a non-empty body goes as Content-Type: application/json.
// Redirects are not followed; a body over kMaxResponseBytes ends the request.
// `cancel_fd`, when >= 0, is polled beside the transfer: once it is readable the request
// ends at once with kUnavailable "cancelled" (how a stopping notifier ends a hung request).
// Returns the response whatever its status, or kUnavailable saying what failed:
// "connect: Connection refused", "resolve no-such.invalid: Could not resolve host ...",
// "TLS: certificate verify failed: ...", "read: timed out after 200 ms", "cancelled",
// "response larger than 4 MiB". Never throws.
base::StatusOr<HttpResponse> HttpRequest(const config::HttpUrl& url, std::string_view method,
                                         std::string_view body, std::chrono::milliseconds timeout,
                                         const config::HttpClientConfig& client = {},
                                         int cancel_fd = -1);

inline constexpr size_t kMaxResponseBytes = 4 << 20;

}  // namespace speedmon::alerting
