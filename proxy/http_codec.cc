// llhttp behind the HttpCodec interface. See http_codec.h.
#include "proxy/http_codec.h"

#include <llhttp.h>

#include <strings.h>

namespace speedmon::proxy {
namespace {

// RFC 9110 token characters. llhttp 8 lets "Host : x" through; a name with white space
// is a request-smuggling shape (RFC 9112 5.1 says reject), so the codec refuses it.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) {
      switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
          ok = true;
          break;
        default:
          break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view MessageHead::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
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
  bool aborted = false;
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
    self->codec->in_message_ = true;
    self->codec->head_done_ = false;
    return 0;
  }
  static int OnUrl(llhttp_t* p, const char* at, size_t len) {
    return From(p)->Append(&From(p)->url, at, len) ? 0 : HPE_USER;
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
    }
    return self->Append(&self->fields.back().first, at, len) ? 0 : HPE_USER;
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
    Impl* self = From(p);
    self->last = Last::kValue;
    return self->Append(&self->fields.back().second, at, len) ? 0 : HPE_USER;
  }
  static int OnHeadersComplete(llhttp_t* p) {
    Impl* self = From(p);
    MessageHead& h = self->head;
    h.headers.clear();
    for (const auto& [name, value] : self->fields) {
      if (!IsToken(self->View(name))) {
        llhttp_set_error_reason(p, "invalid header name");
        return -1;
      }
      h.headers.push_back(Header{self->View(name), self->View(value)});
    }
    if (p->type == HTTP_REQUEST) {
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
  llhttp_errno_t err = llhttp_execute(&i.parser, data, len);
  switch (err) {
    case HPE_OK:
      return {len, Status::kOk};
    case HPE_PAUSED:
      return {static_cast<size_t>(llhttp_get_error_pos(&i.parser) - data), Status::kPaused};
    case HPE_PAUSED_UPGRADE:
      error_reason_ = "protocol upgrades are not supported";
      return {0, Status::kError};
    default:
      break;
  }
  if (i.too_large) return {0, Status::kHeadTooLarge};
  if (i.aborted) return {0, Status::kAborted};
  error_reason_ = llhttp_get_error_reason(&i.parser);
  if (error_reason_ == nullptr) error_reason_ = llhttp_errno_name(err);
  return {0, Status::kError};
}

void HttpCodec::Resume() { llhttp_resume(&impl_->parser); }

HttpCodec::Status HttpCodec::Finish() {
  Impl& i = *impl_;
  llhttp_errno_t err = llhttp_finish(&i.parser);
  if (err == HPE_OK || err == HPE_PAUSED) return Status::kOk;
  if (i.aborted) return Status::kAborted;
  error_reason_ = llhttp_get_error_reason(&i.parser);
  if (error_reason_ == nullptr) error_reason_ = llhttp_errno_name(err);
  return Status::kError;
}

void HttpCodec::Reset() {
  Impl& i = *impl_;
  llhttp_type_t type = static_cast<llhttp_type_t>(i.parser.type);
  llhttp_init(&i.parser, type, &i.settings);
  i.parser.data = impl_.get();
  i.too_large = i.aborted = false;
  in_message_ = head_done_ = false;
}

}  // namespace speedmon::proxy
