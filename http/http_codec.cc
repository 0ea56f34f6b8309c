// llhttp behind the HttpCodec interface. See http_codec.h.
#include "http/http_codec.h"

#include <llhttp.h>

#include <ctype.h>

#include <array>

#include "base/strings.h"

namespace speedmon::http {
namespace {

// RFC 9110 token characters: ALPHA, DIGIT and !#$%&'*+-.^_`|~, as a table, because every
// header name of every message goes through it. llhttp 8 lets "Host : x" through; a name
// with white space is a request-smuggling shape (RFC 9112 5.1 says reject), so the codec
// refuses it.
constexpr std::array<bool, 256> kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!kTokenChar[c]) return false;
  }
  return true;
}

// uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or IPv4 address, or an
// IP literal in brackets. No user info, no white space.
bool IsValidHost(std::string_view h) {
  size_t end = 0;
  if (!h.empty() && h.front() == '[') {
    end = h.find(']');
    if (end == std::string_view::npos || end == 1) return false;
    for (unsigned char c : h.substr(1, end - 1)) {
      if (!isxdigit(c) && c != ':' && c != '.' && c != 'v' && c != 'V') return false;
    }
    ++end;
  } else {
    for (; end < h.size() && h[end] != ':'; ++end) {
      unsigned char c = static_cast<unsigned char>(h[end]);
      // unreserved, pct-encoded and sub-delims characters
      if (!isalnum(c) && std::string_view("-._~%!$&'()*+,;=").find(static_cast<char>(c)) ==
                             std::string_view::npos) {
        return false;
      }
    }
  }
  if (end == h.size()) return true;
  if (h[end] != ':') return false;
  for (unsigned char c : h.substr(end + 1)) {
    if (!isdigit(c)) return false;
  }
  return true;
}

// The request-target in absolute-form must be an http(s) URI with a host (RFC 9110 4.2.1);
// origin-form and "*" are checked by llhttp. No form has a fragment (RFC 9112 3.2): llhttp
// parses "/a#b", and forwarding it would send the upstream an invalid request line.
bool IsValidTarget(std::string_view url) {
  if (url.find('#') != std::string_view::npos) return false;
  if (url.empty() || url.front() == '/' || url == "*") return true;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return false;
  std::string_view scheme = url.substr(0, colon);
  if (!base::EqualsIgnoreCase(scheme, "http") && !base::EqualsIgnoreCase(scheme, "https"))
    return false;
  std::string_view rest = url.substr(colon + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  return !authority.empty() && IsValidHost(authority);
}

// True when the Transfer-Encoding lines name exactly one coding, chunked.
bool OnlyChunked(const MessageHead& h) {
  int codings = 0;
  for (const Header& hd : h.headers) {
    if (hd.known != HeaderName::kTransferEncoding) continue;
    std::string_view v = hd.value;
    std::string_view item;
    while (base::NextListItem(&v, &item)) {
      if (item.empty()) continue;
      if (!base::EqualsIgnoreCase(item, "chunked")) return false;
      ++codings;
    }
  }
  return codings == 1;
}

}  // namespace

HeaderName KnownHeaderName(std::string_view name) {
  // The length and first letter leave at most one candidate to compare.
  auto is = [&](std::string_view lower, HeaderName id) {
    return base::EqualsIgnoreCase(name, lower) ? id : HeaderName::kOther;
  };
  if (name.empty()) return HeaderName::kOther;
  const char first = static_cast<char>(name[0] | 0x20);  // ASCII letters to lower case
  switch (name.size()) {
    case 2:
      return is("te", HeaderName::kTe);
    case 4:
      if (first == 'h') return is("host", HeaderName::kHost);
      if (first == 'd') return is("date", HeaderName::kDate);
      break;
    case 6:
      return is("expect", HeaderName::kExpect);
    case 7:
      if (first == 't') return is("trailer", HeaderName::kTrailer);
      if (first == 'u') return is("upgrade", HeaderName::kUpgrade);
      break;
    case 10:
      if (first == 'c') return is("connection", HeaderName::kConnection);
      if (first == 'k') return is("keep-alive", HeaderName::kKeepAlive);
      break;
    case 12:
      if (first == 'x') return is("x-request-id", HeaderName::kXRequestId);
      if (first == 'm') return is("max-forwards", HeaderName::kMaxForwards);
      break;
    case 14:
      return is("content-length", HeaderName::kContentLength);
    case 15:
      return is("x-forwarded-for", HeaderName::kXForwardedFor);
    case 16:
      return is("proxy-connection", HeaderName::kProxyConnection);
    case 17:
      if (first == 't') return is("transfer-encoding", HeaderName::kTransferEncoding);
      if (first == 'x') return is("x-forwarded-proto", HeaderName::kXForwardedProto);
      break;
    case 18:
      return is("proxy-authenticate", HeaderName::kProxyAuthenticate);
    case 19:
      return is("proxy-authorization", HeaderName::kProxyAuthorization);
    default:
      break;
  }
  return HeaderName::kOther;
}

std::string_view MessageHead::Find(HeaderName name) const {
  if (name == HeaderName::kOther) return {};  // a name, not "any unknown header"
  for (const Header& h : headers) {
    if (h.known == name) return h.value;
  }
  return {};
}

std::string_view MessageHead::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (base::EqualsIgnoreCase(h.name, name)) {
      return h.value;
    }
  }
  return {};
}

struct HttpCodec::Impl {
  struct Span {
    uint32_t off = 0;
    uint32_t len = 0;
  };
  enum class Last { kNone, kField, kValue };

  llhttp_t parser;
  llhttp_settings_t settings;
  HttpCodec* codec = nullptr;
  std::string buf;  // the current head's bytes: url/status, then names and values
  Span url, reason;
  std::vector<std::pair<Span, Span>> fields;
  Last last = Last::kNone;
  uint64_t head_bytes = 0;
  bool too_large = false;
  bool url_too_long = false;
  bool aborted = false;
  // A header value line that llhttp ended inside the input (at its CR): another value
  // piece for the same field is an obs-fold continuation line.
  bool value_line_ended = false;
  const char* exec_end = nullptr;  // end of the bytes given to the current Execute
  char version[4] = {};            // the request line's "1.1", for a 505 on "3.1"
  uint32_t version_len = 0;
  // Why the codec itself refused the message, and the status to answer (0: 400).
  const char* refused = nullptr;
  int refused_status = 0;
  MessageHead head;

  static Impl* From(llhttp_t* p) { return static_cast<Impl*>(p->data); }

  // Appends a piece of the head; false when the head grew past its limit.
  bool Append(Span* span, const char* at, size_t len) {
    head_bytes += len;
    if (head_bytes > codec->max_head_bytes_) {
      too_large = true;
      return false;
    }
    if (span->len == 0) span->off = static_cast<uint32_t>(buf.size());
    buf.append(at, len);
    span->len += static_cast<uint32_t>(len);
    return true;
  }

  std::string_view View(Span s) const { return std::string_view(buf).substr(s.off, s.len); }

  static int OnMessageBegin(llhttp_t* p) {
    Impl* self = From(p);
    self->buf.clear();
    self->url = self->reason = Span{};
    self->fields.clear();
    self->last = Last::kNone;
    self->head_bytes = 0;
    self->version_len = 0;
    self->refused = nullptr;
    self->refused_status = 0;
    self->codec->in_message_ = true;
    self->codec->head_done_ = false;
    return 0;
  }
  static int OnUrl(llhttp_t* p, const char* at, size_t len) {
    if (From(p)->Append(&From(p)->url, at, len)) return 0;
    From(p)->url_too_long = true;
    return HPE_USER;
  }
  static int OnVersion(llhttp_t* p, const char* at, size_t len) {
    Impl* self = From(p);
    for (size_t k = 0; k < len && self->version_len < sizeof self->version; ++k) {
      self->version[self->version_len++] = at[k];
    }
    return 0;
  }
  int Refuse(const char* why, int answer) {
    refused = why;
    refused_status = answer;
    return HPE_USER;
  }
  static int OnStatus(llhttp_t* p, const char* at, size_t len) {
    return From(p)->Append(&From(p)->reason, at, len) ? 0 : HPE_USER;
  }
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len) {
    Impl* self = From(p);
    if (self->last != Last::kField) {
      self->fields.emplace_back();
      self->head_bytes += 4;  // ": " and CRLF, so many tiny headers still count
      self->last = Last::kField;
      self->value_line_ended = false;
    }
    return self->Append(&self->fields.back().first, at, len) ? 0 : HPE_USER;
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
    Impl* self = From(p);
    // llhttp 8 accepts obs-fold (RFC 9112 5.2); a request is refused (400), a response too
    // (the proxy answers 502).
    if (self->last == Last::kValue && self->value_line_ended) {
      return self->Refuse("obsolete line folding", 400);
    }
    self->value_line_ended = at + len != self->exec_end;
    self->last = Last::kValue;
    return self->Append(&self->fields.back().second, at, len) ? 0 : HPE_USER;
  }
  static int OnHeadersComplete(llhttp_t* p) {
    Impl* self = From(p);
    MessageHead& h = self->head;
    const bool request = p->type == HTTP_REQUEST;
    h.headers.clear();
    int hosts = 0;
    for (auto& [name, value] : self->fields) {
      // White space before the colon: a request is refused (RFC 9112 5.1); a proxy drops
      // it from a response.
      while (!request && name.len > 0 &&
             (self->buf[name.off + name.len - 1] == ' ' ||
              self->buf[name.off + name.len - 1] == '\t')) {
        --name.len;
      }
      if (!IsToken(self->View(name))) return self->Refuse("invalid header name", 400);
      // llhttp keeps the white space before CRLF; it is not part of the value.
      while (value.len > 0 && (self->buf[value.off + value.len - 1] == ' ' ||
                               self->buf[value.off + value.len - 1] == '\t')) {
        --value.len;
      }
      h.headers.push_back(Header{self->View(name), self->View(value)});
      if (request && h.headers.back().known == HeaderName::kHost) {
        if (++hosts > 1) return self->Refuse("more than one Host", 400);
        if (!IsValidHost(h.headers.back().value)) return self->Refuse("invalid Host", 400);
      }
    }
    if (p->http_major != 1) {
      return self->Refuse("HTTP major version not supported", request ? 505 : 400);
    }
    if ((p->flags & F_TRANSFER_ENCODING) != 0) {
      // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing. speedmon decodes
      // chunked only; llhttp already refuses a request whose last coding is not chunked.
      if (p->http_minor == 0) return self->Refuse("Transfer-Encoding in HTTP/1.0", 400);
      if (request && (p->flags & F_CHUNKED) == 0) {
        return self->Refuse("chunked is not the last transfer coding", 400);
      }
      if (!OnlyChunked(h)) return self->Refuse("transfer coding not implemented", 501);
    }
    if (request) {
      if (hosts == 0 && p->http_minor == 1) return self->Refuse("missing Host", 400);
      std::string_view target = self->View(self->url);
      if (p->method == HTTP_CONNECT ? target.find('#') != std::string_view::npos
                                    : !IsValidTarget(target)) {
        return self->Refuse("invalid request-target", 400);
      }
    }
    if (request) {
      h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
      h.url = self->View(self->url);
      h.status = 0;
      h.reason = {};
    } else {
      h.method = {};
      h.url = {};
      h.status = p->status_code;
      h.reason = self->View(self->reason);
    }
    h.version_major = p->http_major;
    h.version_minor = p->http_minor;
    h.keep_alive = llhttp_should_keep_alive(p) != 0;
    h.chunked = (p->flags & F_CHUNKED) != 0;
    h.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
    h.content_length = h.has_content_length ? p->content_length : 0;
    h.upgrade = p->upgrade != 0;
    self->codec->head_done_ = true;
    switch (self->codec->handler_->OnHead(h)) {
      case HeadAction::kContinue:
        return 0;
      case HeadAction::kSkipBody:
        return 1;
      case HeadAction::kAbort:
        break;
    }
    self->aborted = true;
    return -1;
  }
  static int OnBody(llhttp_t* p, const char* at, size_t len) {
    Impl* self = From(p);
    if (self->codec->handler_->OnBody(std::string_view(at, len))) return 0;
    self->aborted = true;
    return HPE_USER;
  }
  static int OnMessageComplete(llhttp_t* p) {
    Impl* self = From(p);
    self->codec->in_message_ = false;
    return self->codec->handler_->OnMessageComplete() ? HPE_PAUSED : 0;
  }
};

HttpCodec::HttpCodec(Type type, CodecHandler* handler, uint32_t max_head_bytes)
    : impl_(std::make_unique<Impl>()), handler_(handler), max_head_bytes_(max_head_bytes) {
  Impl& i = *impl_;
  i.codec = this;
  llhttp_settings_init(&i.settings);
  i.settings.on_message_begin = &Impl::OnMessageBegin;
  i.settings.on_url = &Impl::OnUrl;
  i.settings.on_version = &Impl::OnVersion;
  i.settings.on_status = &Impl::OnStatus;
  i.settings.on_header_field = &Impl::OnHeaderField;
  i.settings.on_header_value = &Impl::OnHeaderValue;
  i.settings.on_headers_complete = &Impl::OnHeadersComplete;
  i.settings.on_body = &Impl::OnBody;
  i.settings.on_message_complete = &Impl::OnMessageComplete;
  llhttp_init(&i.parser, type == Type::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &i.settings);
  i.parser.data = impl_.get();
  i.buf.reserve(1024);
}

HttpCodec::~HttpCodec() = default;

HttpCodec::Result HttpCodec::Execute(const char* data, size_t len) {
  Impl& i = *impl_;
  i.exec_end = data + len;
  llhttp_errno_t err = llhttp_execute(&i.parser, data, len);
  switch (err) {
    case HPE_OK:
      return {len, Status::kOk};
    case HPE_PAUSED:
      return {static_cast<size_t>(llhttp_get_error_pos(&i.parser) - data), Status::kPaused};
    case HPE_PAUSED_UPGRADE:
      error_reason_ = "protocol upgrades are not supported";
      error_status_ = 501;
      return {0, Status::kError};
    default:
      break;
  }
  if (i.too_large) {
    error_status_ = i.url_too_long ? 414 : 431;
    return {0, Status::kHeadTooLarge};
  }
  if (i.aborted) return {0, Status::kAborted};
  SetError(err);
  return {0, Status::kError};
}

void HttpCodec::SetError(int err) {
  Impl& i = *impl_;
  error_status_ = i.refused_status != 0 ? i.refused_status : 400;
  error_reason_ = i.refused;
  if (error_reason_ == nullptr) error_reason_ = llhttp_get_error_reason(&i.parser);
  if (error_reason_ == nullptr) error_reason_ = llhttp_errno_name(static_cast<llhttp_errno_t>(err));
  // "HTTP/3.1" is well-formed but not a version llhttp parses (RFC 9110 15.6.6); so is the
  // HTTP/2 connection preface.
  const char* v = i.version;
  bool other_major = i.version_len == 3 && isdigit(static_cast<unsigned char>(v[0])) &&
                     v[0] != '1' && v[1] == '.' && isdigit(static_cast<unsigned char>(v[2]));
  if (i.parser.type == HTTP_REQUEST &&
      ((err == HPE_INVALID_VERSION && other_major) || err == HPE_PAUSED_H2_UPGRADE)) {
    error_reason_ = "HTTP major version not supported";
    error_status_ = 505;
  }
}

void HttpCodec::Resume() { llhttp_resume(&impl_->parser); }

HttpCodec::Status HttpCodec::Finish() {
  Impl& i = *impl_;
  llhttp_errno_t err = llhttp_finish(&i.parser);
  if (err == HPE_OK || err == HPE_PAUSED) return Status::kOk;
  if (i.aborted) return Status::kAborted;
  SetError(err);
  return Status::kError;
}

void HttpCodec::Reset() {
  Impl& i = *impl_;
  llhttp_type_t type = static_cast<llhttp_type_t>(i.parser.type);
  llhttp_init(&i.parser, type, &i.settings);
  i.parser.data = impl_.get();
  i.too_large = i.url_too_long = i.aborted = false;
  i.refused = nullptr;
  i.refused_status = 0;
  in_message_ = head_done_ = false;
}

}  // namespace speedmon::http
