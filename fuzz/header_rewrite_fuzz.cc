// Header rewriting between hops: whatever request or response head the codec accepts,
// the head speedmon writes for the other hop parses again, carries no hop-by-hop field,
// and never has both Content-Length and Transfer-Encoding.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "http/http_codec.h"
#include "http/http_message.h"

namespace {

using speedmon::http::CodecHandler;
using speedmon::http::HeadAction;
using speedmon::http::HttpCodec;
using speedmon::http::MessageHead;

void Fail(const char* what, const std::string& out) {
  std::fprintf(stderr, "%s:\n%s\n", what, out.c_str());
  std::abort();
}

// Parses the rewritten head and checks the rules above.
class Checker final : public CodecHandler {
 public:
  bool got_head = false;
  HeadAction OnHead(const MessageHead& h) override {
    got_head = true;
    // speedmon writes its own Connection, Content-Length and Transfer-Encoding; any other
    // hop-by-hop field must have been removed.
    for (const auto& hd : h.headers) {
      static constexpr std::string_view kOwn[] = {"Connection", "Content-Length",
                                                  "Transfer-Encoding"};
      bool own = false;
      for (std::string_view o : kOwn) own = own || hd.name == o;
      if (!own && speedmon::http::IsHopByHop(hd.name)) {
        std::fprintf(stderr, "hop-by-hop field forwarded: %.*s\n", static_cast<int>(hd.name.size()),
                     hd.name.data());
        std::abort();
      }
    }
    if (h.chunked && h.has_content_length) std::abort();
    return HeadAction::kAbort;  // the head is all that is checked
  }
  bool OnBody(std::string_view) override { return true; }
  bool OnMessageComplete() override { return false; }
};

void Reparse(HttpCodec::Type type, const std::string& out) {
  Checker c;
  HttpCodec codec(type, &c, 1 << 20);
  HttpCodec::Result r = codec.Execute(out.data(), out.size());
  if (!c.got_head)
    Fail(r.status == HttpCodec::Status::kError ? codec.error_reason() : "no head", out);
}

class Rewriter final : public CodecHandler {
 public:
  explicit Rewriter(bool request, int variant) : request_(request), variant_(variant) {}
  HeadAction OnHead(const MessageHead& h) override {
    std::string out;
    // The data plane answers an upgrade (CONNECT included) itself and forwards nothing.
    if (request_ && h.upgrade) return HeadAction::kAbort;
    if (request_) {
      speedmon::http::ForwardInfo info{"127.0.0.1", "0123456789abcdef0123456789abcdef",
                                       "127.0.0.1:8081"};
      speedmon::http::AppendUpstreamRequestHead(h, info, &out);
      Reparse(HttpCodec::Type::kRequest, out);
    } else {
      speedmon::http::AppendDownstreamResponseHead(h, (variant_ & 1) != 0, (variant_ & 2) ? 0 : 1,
                                                   (variant_ & 4) != 0, "req-id", &out);
      Reparse(HttpCodec::Type::kResponse, out);
    }
    return HeadAction::kAbort;
  }
  bool OnBody(std::string_view) override { return true; }
  bool OnMessageComplete() override { return false; }

 private:
  bool request_;
  int variant_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool request = (data[0] & 0x80) == 0;
  const int variant = data[0] & 7;
  Rewriter rw(request, variant);
  HttpCodec codec(request ? HttpCodec::Type::kRequest : HttpCodec::Type::kResponse, &rw, 65536);
  codec.Execute(reinterpret_cast<const char*>(data) + 1, size - 1);
  return 0;
}
