// Shared by the request and response codec fuzz targets: runs HttpCodec over the input in
// one piece and split at each boundary, and checks that every split gives the same events
// (heads, body bytes, completions, final status) as the whole. A parser that depends on
// how TCP cut the bytes is a request-smuggling bug.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_codec.h"

namespace speedmon::fuzz {

using http::CodecHandler;
using http::HeadAction;
using http::HttpCodec;
using http::MessageHead;

// The events of one run. Body bytes are merged into one event per message, since a
// split may cut one body callback in two.
struct Event {
  char kind;  // 'H' head, 'B' body bytes, 'C' complete, 'S' final status
  std::string text;
  bool operator==(const Event&) const = default;
};

class Recorder final : public CodecHandler {
 public:
  std::vector<Event> events;
  HeadAction OnHead(const MessageHead& h) override {
    std::string t = std::string(h.method) + "|" + std::string(h.url) + "|" +
                    std::to_string(h.status) + "|" + std::string(h.reason) + "|" +
                    std::to_string(h.version_major) + "." + std::to_string(h.version_minor) + "|" +
                    (h.keep_alive ? "ka" : "close") + (h.chunked ? "|chunked" : "") +
                    (h.has_content_length ? "|cl=" + std::to_string(h.content_length) : "") +
                    (h.upgrade ? "|upgrade" : "");
    for (const auto& hd : h.headers) {
      t += "|" + std::string(hd.name) + ": " + std::string(hd.value);
    }
    events.push_back({'H', std::move(t)});
    // The harness never sends HEAD; 1xx/204/304 bodies are llhttp's to skip.
    return HeadAction::kContinue;
  }
  bool OnBody(std::string_view d) override {
    if (events.empty() || events.back().kind != 'B') events.push_back({'B', ""});
    events.back().text.append(d);
    return true;
  }
  bool OnMessageComplete() override {
    events.push_back({'C', ""});
    return true;  // pause after each message, as the proxy does
  }
};

// Feeds `pieces` in order, resuming after each pause, then Finish().
inline std::vector<Event> Run(HttpCodec::Type type, const std::vector<std::string_view>& pieces) {
  Recorder rec;
  HttpCodec codec(type, &rec, 4096);
  std::string status;
  for (std::string_view piece : pieces) {
    while (true) {
      HttpCodec::Result r = codec.Execute(piece.data(), piece.size());
      if (r.status == HttpCodec::Status::kPaused) {
        if (r.consumed > piece.size()) std::abort();
        piece.remove_prefix(r.consumed);
        codec.Resume();
        if (piece.empty()) break;
        continue;
      }
      if (r.status == HttpCodec::Status::kOk) break;
      status = r.status == HttpCodec::Status::kHeadTooLarge ? "too-large" : "error";
      break;
    }
    if (!status.empty()) break;
  }
  if (status.empty()) {
    status = codec.Finish() == HttpCodec::Status::kOk ? "ok" : "finish-error";
  }
  rec.events.push_back({'S', status});
  return std::move(rec.events);
}

inline void Print(const char* title, const std::vector<Event>& events) {
  std::fprintf(stderr, "--- %s\n", title);
  for (const Event& e : events) {
    std::fprintf(stderr, "%c [%zu] ", e.kind, e.text.size());
    for (unsigned char c : e.text) {
      if (c >= 0x20 && c < 0x7f) {
        std::fputc(c, stderr);
      } else {
        std::fprintf(stderr, "\\x%02x", c);
      }
    }
    std::fputc('\n', stderr);
  }
}

inline void CheckSplits(HttpCodec::Type type, const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::vector<Event> whole = Run(type, {all});
  // Every boundary for short inputs, 64 evenly spaced ones for long inputs.
  size_t step = size <= 256 ? 1 : size / 64;
  for (size_t k = 1; k < size; k += step) {
    std::vector<Event> split = Run(type, {all.substr(0, k), all.substr(k)});
    if (split != whole) {
      std::fprintf(stderr, "split at %zu differs\n", k);
      Print("whole", whole);
      Print("split", split);
      std::abort();
    }
  }
  // One byte at a time.
  if (size <= 2048) {
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < size; ++i) bytes.push_back(all.substr(i, 1));
    std::vector<Event> one = Run(type, bytes);
    if (one != whole) {
      std::fprintf(stderr, "byte-at-a-time differs\n");
      Print("whole", whole);
      Print("byte at a time", one);
      std::abort();
    }
  }
}

}  // namespace speedmon::fuzz
