// Rewriting message heads between the two hops, and speedmon's own error answers.
//
// Pure functions over MessageHead; used by worker threads on the request path, so they
// append to caller-owned buffers and allocate nothing else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/http_codec.h"

namespace speedmon::http {

// How a body is framed on the wire of one hop.
enum class Framing {
  kNone,           // no body
  kContentLength,  // exactly N bytes follow
  kChunked,        // chunked transfer coding
  kUntilClose,     // body ends when the connection closes (HTTP/1.0 style)
};

// How the body of a request is framed towards the upstream: chunked stays chunked, a
// Content-Length stays (0 -> kNone), neither -> kNone (RFC 9112 6.3: a request without
// either has no body; it is never delimited by close).
Framing RequestFraming(const MessageHead& req);

// How the body of a response is framed towards the client: kNone for a response to HEAD
// and for 1xx, 204 and 304 (RFC 9110 6.4.1); a Content-Length stays (0 -> kNone);
// otherwise the body runs until the upstream closes and is re-framed: kChunked for an
// HTTP/1.1 client, kUntilClose for an HTTP/1.0 one.
Framing ResponseFraming(const MessageHead& resp, bool head_request, int client_minor_version);

// True for headers that describe one hop rather than the message (RFC 9110 7.6.1),
// or that speedmon re-frames itself (Content-Length, Transfer-Encoding).
bool IsHopByHop(HeaderName name);
bool IsHopByHop(std::string_view name);

// True when `name` is listed in the Connection header value `connection`.
bool ListedInConnection(std::string_view connection, std::string_view name);

// A request-target in absolute-form ("http://host:port/path?q") split into the authority
// and the origin-form rest ("/path?q"; empty when the URI has no path). Other forms come
// back whole, with an empty authority.
std::string_view OriginForm(std::string_view target, std::string_view* authority);

// The Max-Forwards value of a TRACE or OPTIONS request (RFC 9110 7.6.2), or -1 for other
// methods and when absent or not a number.
int64_t MaxForwards(const MessageHead& req);

// Appends "Date: <IMF-fixdate>\r\n" for now; the text is cached per thread and second.
void AppendDateHeader(std::string* out);

struct ForwardInfo {
  std::string_view client_ip;   // appended to X-Forwarded-For
  std::string_view request_id;  // X-Request-Id to send (the client's or a new one)
  std::string_view host;        // Host to add when the client sent none (HTTP/1.0)
};

// The request head speedmon sends upstream: always HTTP/1.1 keep-alive, origin-form,
// end-to-end headers in order (every field a Connection line names dropped), Via,
// X-Forwarded-For/-Proto and X-Request-Id added, Max-Forwards of TRACE/OPTIONS decremented,
// Expect of an HTTP/1.0 request dropped, body framing chosen from the client's
// (Content-Length kept, chunked kept, none -> none).
// Returns the framing of the body that follows.
Framing AppendUpstreamRequestHead(const MessageHead& req, const ForwardInfo& info,
                                  std::string* out);

// The response head sent to the client. `request_id` is added unless the upstream
// already set X-Request-Id. `head_request` marks a response to HEAD (no body follows,
// Content-Length is kept as the upstream sent it). `keep_alive` says whether speedmon
// keeps the client connection open after this response; when the body runs until the
// upstream closes, an HTTP/1.1 client gets it chunked and an HTTP/1.0 client gets it
// until close. A Date is added when the upstream sent none. Returns the framing to use
// towards the client.
Framing AppendDownstreamResponseHead(const MessageHead& resp, bool head_request,
                                     int client_minor_version, bool keep_alive,
                                     std::string_view request_id, std::string* out);

// Appends a complete JSON error response, e.g.
//   {"error":"upstream_timeout","status":504,"upstream":"emulator-1","request_id":"..."}
// `upstream` empty -> null. `close` adds "Connection: close".
void AppendErrorResponse(int status, std::string_view kind, std::string_view upstream,
                         std::string_view request_id, bool close, std::string* out);

// speedmon's own answer to an OPTIONS request it is the final recipient of (Max-Forwards
// 0): 200 with no content.
void AppendOptionsResponse(std::string_view request_id, bool close, std::string* out);

// The standard reason phrase for a status ("Service Unavailable"), or "Unknown".
const char* ReasonPhrase(int status);

// Appends a chunk header for `n` bytes ("1f4\r\n"); the caller appends data and "\r\n".
void AppendChunkHeader(size_t n, std::string* out);

// A fast per-thread generator of request ids: 32 lowercase hex characters.
class RequestIdGenerator {
 public:
  explicit RequestIdGenerator(uint64_t seed);
  void Next(char out[32]);

 private:
  uint64_t state_;
};

// True if `id` is acceptable to forward as-is: 1..128 visible ASCII characters.
bool IsValidRequestId(std::string_view id);

}  // namespace speedmon::http
