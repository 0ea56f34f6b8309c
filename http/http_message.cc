// Head rewriting between hops and JSON error answers. See http_message.h.
#include "http/http_message.h"

#include <time.h>

#include <array>
#include <charconv>

#include "base/json.h"
#include "base/strings.h"

namespace speedmon::http {
namespace {

void AppendHeader(std::string_view name, std::string_view value, std::string* out) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// True when any Connection line of `head` lists `name` (RFC 9110 7.6.1).
bool ConnectionLists(const MessageHead& head, std::string_view name) {
  for (const Header& h : head.headers) {
    if (h.known == HeaderName::kConnection && ListedInConnection(h.value, name)) return true;
  }
  return false;
}

// True when a Connection line of `head` names a field that is not dropped anyway: only
// then must each header be looked up in it. "keep-alive", what an upstream's Connection
// line nearly always says, names a field that is dropped anyway.
bool ConnectionNamesOthers(const MessageHead& head) {
  for (const Header& h : head.headers) {
    if (h.known != HeaderName::kConnection) continue;
    std::string_view list = h.value;
    std::string_view token;
    while (base::NextListItem(&list, &token)) {
      if (!token.empty() && !IsHopByHop(KnownHeaderName(token))) return true;
    }
  }
  return false;
}

// Copies the end-to-end headers of `head`, skipping hop-by-hop ones and those the
// Connection header names.
void AppendEndToEnd(const MessageHead& head, std::string* out) {
  const bool names_others = ConnectionNamesOthers(head);
  for (const Header& h : head.headers) {
    if (IsHopByHop(h.known)) continue;
    if (names_others && ConnectionLists(head, h.name)) continue;
    AppendHeader(h.name, h.value, out);
  }
}

bool IsMethod(const MessageHead& req, std::string_view method) { return req.method == method; }

}  // namespace

bool IsHopByHop(HeaderName name) {
  switch (name) {
    case HeaderName::kConnection:
    case HeaderName::kKeepAlive:
    case HeaderName::kProxyConnection:
    case HeaderName::kTe:
    case HeaderName::kTrailer:
    case HeaderName::kTransferEncoding:
    case HeaderName::kUpgrade:
    case HeaderName::kProxyAuthorization:
    case HeaderName::kProxyAuthenticate:
    case HeaderName::kContentLength:
      return true;
    default:
      return false;
  }
}

bool IsHopByHop(std::string_view name) { return IsHopByHop(KnownHeaderName(name)); }

bool ListedInConnection(std::string_view connection, std::string_view name) {
  std::string_view token;
  while (base::NextListItem(&connection, &token)) {
    if (base::EqualsIgnoreCase(token, name)) return true;
  }
  return false;
}

std::string_view OriginForm(std::string_view target, std::string_view* authority) {
  *authority = {};
  if (target.empty() || target.front() == '/' || target == "*") return target;
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return target;  // CONNECT's authority-form
  std::string_view rest = target.substr(scheme_end + 3);
  size_t path = rest.find_first_of("/?#");
  if (path == std::string_view::npos) path = rest.size();
  *authority = rest.substr(0, path);
  return rest.substr(path);
}

int64_t MaxForwards(const MessageHead& req) {
  if (!IsMethod(req, "OPTIONS") && !IsMethod(req, "TRACE")) return -1;
  std::string_view v = base::TrimSpaceTab(req.Find(HeaderName::kMaxForwards));
  int64_t n = -1;
  auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size() || n < 0) return -1;
  return n;
}

void AppendDateHeader(std::string* out) {
  struct Cache {
    time_t second = -1;
    char text[64];
    size_t len = 0;
  };
  thread_local Cache cache;
  time_t now = time(nullptr);
  if (now != cache.second) {
    struct tm tm;
    gmtime_r(&now, &tm);
    cache.len = strftime(cache.text, sizeof cache.text, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    cache.second = now;
  }
  out->append(cache.text, cache.len);
}

Framing RequestFraming(const MessageHead& req) {
  if (req.chunked) return Framing::kChunked;
  if (req.has_content_length && req.content_length > 0) return Framing::kContentLength;
  return Framing::kNone;
}

Framing ResponseFraming(const MessageHead& resp, bool head_request, int client_minor_version) {
  if (head_request || resp.status < 200 || resp.status == 204 || resp.status == 304) {
    return Framing::kNone;
  }
  if (resp.has_content_length) {
    return resp.content_length > 0 ? Framing::kContentLength : Framing::kNone;
  }
  return client_minor_version >= 1 ? Framing::kChunked : Framing::kUntilClose;
}

Framing AppendUpstreamRequestHead(const MessageHead& req, const ForwardInfo& info,
                                  std::string* out) {
  std::string_view authority;
  std::string_view target = OriginForm(req.url, &authority);
  out->append(req.method);
  out->push_back(' ');
  if (target.empty() || target.front() == '?') out->push_back('/');
  out->append(target);
  out->append(" HTTP/1.1\r\n");
  // X-Forwarded-For is rewritten below with the client appended, X-Request-Id replaced.
  bool has_xff = false;
  bool has_host = false;
  const bool names_others = ConnectionNamesOthers(req);
  const int64_t max_forwards = MaxForwards(req);
  for (const Header& h : req.headers) {
    if (IsHopByHop(h.known)) continue;
    if (names_others && ConnectionLists(req, h.name)) continue;
    switch (h.known) {
      case HeaderName::kXForwardedFor:
        has_xff = true;
        continue;
      case HeaderName::kXRequestId:
      case HeaderName::kXForwardedProto:
        continue;
      case HeaderName::kHost:
        if (!authority.empty()) continue;  // absolute-form: the target's authority wins
        has_host = true;
        break;
      case HeaderName::kExpect:
        // An HTTP/1.0 client cannot take a 100 Continue: its expectation is ignored (RFC
        // 9110 10.1.1).
        if (req.version_minor == 0) continue;
        break;
      case HeaderName::kMaxForwards:
        if (max_forwards > 0) {
          out->append("Max-Forwards: ");
          AppendUint(static_cast<uint64_t>(max_forwards - 1), out);
          out->append("\r\n");
          continue;
        }
        break;
      default:
        break;
    }
    AppendHeader(h.name, h.value, out);
  }
  if (!authority.empty()) {
    AppendHeader("Host", authority, out);
  } else if (!has_host && !info.host.empty()) {
    AppendHeader("Host", info.host, out);
  }
  // RFC 9110 7.6.3: a gateway adds Via to the requests it forwards.
  out->append(req.version_minor == 0 ? "Via: 1.0 speedmon\r\n" : "Via: 1.1 speedmon\r\n");
  // Several X-Forwarded-For lines are one list in their order (RFC 9110 5.3): every
  // proxy before us is kept, and the client we saw goes last.
  out->append("X-Forwarded-For: ");
  if (has_xff) {
    for (const Header& h : req.headers) {
      if (h.known != HeaderName::kXForwardedFor) continue;
      std::string_view v = base::TrimSpaceTab(h.value);
      if (v.empty()) continue;
      out->append(v);
      out->append(", ");
    }
  }
  out->append(info.client_ip);
  out->append("\r\nX-Forwarded-Proto: http\r\n");
  AppendHeader("X-Request-Id", info.request_id, out);
  if (req.chunked) {
    out->append("Transfer-Encoding: chunked\r\n");
  } else if (req.has_content_length) {
    out->append("Content-Length: ");
    AppendUint(req.content_length, out);
    out->append("\r\n");
  }
  out->append("\r\n");
  return RequestFraming(req);
}

Framing AppendDownstreamResponseHead(const MessageHead& resp, bool head_request,
                                     int client_minor_version, bool keep_alive,
                                     std::string_view request_id, std::string* out) {
  out->append("HTTP/1.1 ");
  AppendUint(static_cast<uint64_t>(resp.status), out);
  out->push_back(' ');
  out->append(resp.reason.empty() ? std::string_view(ReasonPhrase(resp.status)) : resp.reason);
  out->append("\r\n");
  AppendEndToEnd(resp, out);
  if (resp.Find(HeaderName::kXRequestId).empty()) AppendHeader("X-Request-Id", request_id, out);
  if (resp.Find(HeaderName::kDate).empty()) AppendDateHeader(out);  // RFC 9110 6.6.1

  const Framing framing = ResponseFraming(resp, head_request, client_minor_version);
  // A HEAD answer keeps the length the GET would have had (as does 304); 1xx and 204
  // never have one (RFC 9110 8.6).
  if (resp.has_content_length && resp.status >= 200 && resp.status != 204) {
    out->append("Content-Length: ");
    AppendUint(resp.content_length, out);
    out->append("\r\n");
  } else if (framing == Framing::kChunked) {
    out->append("Transfer-Encoding: chunked\r\n");
  }
  if (framing == Framing::kUntilClose) keep_alive = false;
  if (resp.status >= 200) {
    if (!keep_alive) {
      out->append("Connection: close\r\n");
    } else if (client_minor_version == 0) {
      out->append("Connection: keep-alive\r\n");
    }
  }
  out->append("\r\n");
  return framing;
}

void AppendErrorResponse(int status, std::string_view kind, std::string_view upstream,
                         std::string_view request_id, bool close, std::string* out) {
  std::string body = "{\"error\":";
  base::AppendJsonString(kind, &body);
  body.append(",\"status\":");
  AppendUint(static_cast<uint64_t>(status), &body);
  body.append(",\"upstream\":");
  if (upstream.empty()) {
    body.append("null");
  } else {
    base::AppendJsonString(upstream, &body);
  }
  body.append(",\"request_id\":");
  base::AppendJsonString(request_id, &body);  // the client's bytes
  body.append("}\n");
  out->append("HTTP/1.1 ");
  AppendUint(static_cast<uint64_t>(status), out);
  out->push_back(' ');
  out->append(ReasonPhrase(status));
  out->append("\r\n");
  AppendDateHeader(out);
  out->append("Content-Type: application/json\r\nContent-Length: ");
  AppendUint(body.size(), out);
  out->append("\r\nX-Request-Id: ");
  out->append(request_id);
  out->append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
  out->append(body);
}

void AppendOptionsResponse(std::string_view request_id, bool close, std::string* out) {
  out->append("HTTP/1.1 200 OK\r\n");
  AppendDateHeader(out);
  out->append("Content-Length: 0\r\nX-Request-Id: ");
  out->append(request_id);
  out->append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void AppendChunkHeader(size_t n, std::string* out) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, static_cast<uint64_t>(n), 16);
  out->append(buf, r.ptr);
  out->append("\r\n");
}

RequestIdGenerator::RequestIdGenerator(uint64_t seed) : state_(seed) {}

void RequestIdGenerator::Next(char out[32]) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int half = 0; half < 2; ++half) {
    // splitmix64: fast, and ids from different seeds do not collide in practice.
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int i = 0; i < 16; ++i) out[half * 16 + i] = kHex[(z >> (i * 4)) & 0xf];
  }
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace speedmon::http
