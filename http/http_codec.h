// An HTTP/1.x message parser that never touches a socket: bytes in, events out.
//
// Wraps llhttp (included only in the .cc). One codec per connection direction; used by
// the thread that owns the connection. Header names and values are copied into the
// codec's own head buffer, so the MessageHead handed to OnHead stays valid until the next
// message begins, however the bytes were split across reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace speedmon::http {

// The header names speedmon acts on. A Header learns its own when it is built, so the
// request path (hop-by-hop filtering, Host, X-Request-Id, Date, ...) compares one byte
// per header instead of each name against each list; the names are matched
// case-insensitively (RFC 9110 5.1). Everything else is kOther.
enum class HeaderName : uint8_t {
  kOther,
  // Hop-by-hop (RFC 9110 7.6.1) or re-framed by speedmon; IsHopByHop says which.
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kTransferEncoding,
  kUpgrade,
  kProxyAuthorization,
  kProxyAuthenticate,
  kContentLength,
  // End to end, but speedmon reads or rewrites them.
  kHost,
  kDate,
  kExpect,
  kMaxForwards,
  kXForwardedFor,
  kXForwardedProto,
  kXRequestId,
};

// Which of the names above `name` is (ASCII case-insensitive), or kOther.
HeaderName KnownHeaderName(std::string_view name);

struct Header {
  Header() = default;
  Header(std::string_view n, std::string_view v) : name(n), value(v), known(KnownHeaderName(n)) {}

  std::string_view name;
  std::string_view value;
  HeaderName known = HeaderName::kOther;  // KnownHeaderName(name), set by the constructor
};

struct MessageHead {
  std::string_view method;  // requests
  std::string_view url;     // requests
  int status = 0;           // responses
  std::string_view reason;  // responses
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;
  bool keep_alive = true;  // what the message asks for (llhttp_should_keep_alive)
  bool chunked = false;    // Transfer-Encoding: chunked
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool upgrade = false;  // CONNECT or an Upgrade request/response

  // First header with this name (case-insensitive), or empty.
  std::string_view Find(std::string_view name) const;
  // The same for a name speedmon knows, without comparing strings (kOther: empty).
  std::string_view Find(HeaderName name) const;
  // True when the body runs until the connection closes (a response with neither
  // Content-Length nor chunked framing).
  bool BodyUntilEof() const { return !chunked && !has_content_length; }
};

enum class HeadAction {
  kContinue,  // parse the body, if any
  kSkipBody,  // the message has no body whatever its headers say (response to HEAD, 1xx)
  kAbort,     // stop: Execute returns kAborted
};

// Receives the parse events. The views passed in are valid only during the call, except
// the MessageHead (see above).
class CodecHandler {
 public:
  virtual ~CodecHandler() = default;
  virtual HeadAction OnHead(const MessageHead& head) = 0;
  // Body bytes after de-chunking. Return false to abort parsing.
  virtual bool OnBody(std::string_view data) = 0;
  // The message is complete. Return true to pause the codec after it (a pipelined next
  // request waits until this one is answered); Execute then reports kPaused.
  virtual bool OnMessageComplete() = 0;
};

class HttpCodec {
 public:
  enum class Type { kRequest, kResponse };
  enum class Status {
    kOk,            // all bytes consumed
    kPaused,        // OnMessageComplete asked to pause; `consumed` bytes used, keep the rest
    kAborted,       // a handler returned kAbort/false
    kHeadTooLarge,  // the head exceeded max_head_bytes
    kError,         // malformed input; error_reason() says why
  };
  struct Result {
    size_t consumed = 0;
    Status status = Status::kOk;
  };

  // REQUIRES: handler outlives the codec.
  HttpCodec(Type type, CodecHandler* handler, uint32_t max_head_bytes);
  ~HttpCodec();
  HttpCodec(const HttpCodec&) = delete;
  HttpCodec& operator=(const HttpCodec&) = delete;

  Result Execute(const char* data, size_t len);
  // After kPaused: makes the codec accept input again.
  void Resume();
  // The peer closed. A message delimited by EOF completes here (OnMessageComplete);
  // kError if the close cut a message short.
  Status Finish();
  // Forget any partial message (for reuse of a pooled connection's codec).
  void Reset();

  // True between the first byte of a message and its completion.
  bool InMessage() const { return in_message_; }
  // True once the current message's head has been parsed.
  bool HeadDone() const { return head_done_; }
  const char* error_reason() const { return error_reason_; }
  // After kError or kHeadTooLarge: the status a server answers a request with. 400
  // (malformed), 414 (the request-target alone is over the head limit), 431 (the head is),
  // 501 (a transfer coding other than chunked), 505 (an HTTP major version other than 1).
  int error_status() const { return error_status_; }

 private:
  struct Impl;
  friend struct Impl;
  void SetError(int llhttp_errno);
  std::unique_ptr<Impl> impl_;
  CodecHandler* handler_;
  uint32_t max_head_bytes_;
  bool in_message_ = false;
  bool head_done_ = false;
  const char* error_reason_ = "";
  int error_status_ = 400;
};

}  // namespace speedmon::http
