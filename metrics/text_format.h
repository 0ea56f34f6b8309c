// Building blocks of the text exposition shared by the generic serialiser
// (metrics/exposition.cc, over prometheus::MetricFamily) and the request statistics'
// own writer (metrics/request_stats.cc, straight from the shards): the output buffer,
// number formatting, label-value escaping and family headers. Both writers use these, so
// the same data comes out as the same bytes whichever path wrote it.
//
// Pure functions and a plain buffer; any thread.
#pragma once

#include <prometheus/metric_type.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace speedmon::metrics {

enum class Format { kText004, kOpenMetrics };

// A growable byte buffer written through raw pointers: Reserve(n) makes room for n bytes
// and returns where they go, Commit(end) takes what was written up to `end`. Unlike
// std::string it never zero-fills (a resize would), and clear() keeps the capacity, so a
// buffer kept between scrapes stops allocating once it has seen the largest one.
class TextBuffer {
 public:
  char* Reserve(size_t n) {
    if (cap_ - len_ < n) Grow(n);
    return buf_.get() + len_;
  }
  void Commit(char* end) { len_ = static_cast<size_t>(end - buf_.get()); }
  void Append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(Reserve(s.size()), s.data(), s.size());
    len_ += s.size();
  }
  void Append(char c) {
    *Reserve(1) = c;
    ++len_;
  }
  void clear() { len_ = 0; }
  size_t size() const { return len_; }
  size_t capacity() const { return cap_; }
  std::string_view view() const { return {buf_.get(), len_}; }

 private:
  void Grow(size_t n);

  std::unique_ptr<char[]> buf_;
  size_t len_ = 0;
  size_t cap_ = 0;
};

// Copies `s` to `p`, where the caller reserved room for it, and returns the end: the
// writers fill a TextBuffer::Reserve'd span this way and Commit the end once.
inline char* Put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Room that WriteNumber and WriteCount may use.
inline constexpr size_t kMaxNumberChars = 32;

// Writes a sample value or bucket bound at `p` (at most kMaxNumberChars bytes) and returns
// the end: NaN, +Inf, -Inf; integers below 1e15 without a fraction; else the shortest
// digits that read back as `v`, in fixed notation from 1e-6 up ("0.0005", as Prometheus's
// own clients write bucket bounds).
char* WriteNumber(double v, char* p);

// The same bytes as WriteNumber(static_cast<double>(n), p), without the double below
// 10^15 (where WriteNumber prints integers, and every one is exact as a double).
inline char* WriteCount(uint64_t n, char* p) {
  if (n < 1'000'000'000'000'000) return std::to_chars(p, p + kMaxNumberChars, n).ptr;
  return WriteNumber(static_cast<double>(n), p);
}

// The same bytes as WriteNumber(static_cast<double>(ns) / 1e9, p), a duration in
// nanoseconds as seconds, without formatting a double where it need not: from 1 µs to
// 10^15 ns the exact decimal has at most 15 significant digits, so it is the shortest text
// that reads back as that double (DBL_DIG). A scrape writes one per histogram.
char* WriteSeconds(uint64_t ns, char* p);

// Appends a label value (or, with quotes = false, help text in text 0.0.4) escaped: \\,
// \n and, with quotes, \". Bytes that are not valid UTF-8 (a strategy name, a disk path)
// become U+FFFD, as base::ValidUtf8 repairs them.
void AppendEscaped(std::string_view s, bool quotes, TextBuffer* out);

// Appends "# HELP name help\n# TYPE name type\n" as `format` wants it: OpenMetrics names a
// counter family without its _total suffix, escapes quotes in help, and says "unknown"
// for untyped.
void AppendFamilyHeader(std::string_view name, std::string_view help, prometheus::MetricType type,
                        Format format, TextBuffer* out);

}  // namespace speedmon::metrics
