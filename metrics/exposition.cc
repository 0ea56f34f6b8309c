// Prometheus text 0.0.4 and OpenMetrics 1.0 serialisation, and gzip. See exposition.h and
// text_format.h.
#include "metrics/exposition.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/json.h"
#include "base/strings.h"

namespace speedmon::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// True when a comma-separated header lists `token` with q > 0 (a parameterised media
// type such as "application/openmetrics-text; version=1.0.0" matches on its type).
bool ListsToken(std::string_view header, std::string_view token) {
  std::string_view item;
  while (base::NextListItem(&header, &item)) {
    size_t semi = item.find(';');
    std::string_view name = base::TrimSpaceTab(item.substr(0, semi));
    if (!base::EqualsIgnoreCase(name, token)) continue;
    bool zero_q = false;
    while (semi != std::string_view::npos) {
      item = item.substr(semi + 1);
      semi = item.find(';');
      std::string_view param = base::TrimSpaceTab(item.substr(0, semi));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        double q = std::strtod(std::string(param.substr(2)).c_str(), nullptr);
        zero_q = q <= 0;
      }
    }
    if (!zero_q) return true;
  }
  return false;
}

// What AppendEscaped must do about a byte: nothing, escape it, or check UTF-8 from there.
enum class ByteClass : uint8_t { kPlain, kEscape, kHigh };

constexpr std::array<ByteClass, 256> ByteClasses(bool quotes) {
  std::array<ByteClass, 256> t{};
  for (int c = 0x80; c < 256; ++c) t[c] = ByteClass::kHigh;
  t['\\'] = ByteClass::kEscape;
  t['\n'] = ByteClass::kEscape;
  if (quotes) t['"'] = ByteClass::kEscape;
  return t;
}
constexpr std::array<ByteClass, 256> kQuotedClasses = ByteClasses(true);
constexpr std::array<ByteClass, 256> kHelpClasses = ByteClasses(false);

// True when one of the eight bytes in `w` is not kPlain: above ASCII, '\\', '\n', or with
// `quotes` '"'. A byte equal to b is a zero byte of w ^ (b in every byte), and
// (x - 0x01..01) & ~x & 0x80..80 is non-zero exactly when x has a zero byte.
bool AnyToLookAt(uint64_t w, bool quotes) {
  constexpr uint64_t kOnes = 0x0101010101010101, kHighBits = 0x8080808080808080;
  auto has = [w](unsigned char b) {
    const uint64_t x = w ^ (kOnes * b);
    return (x - kOnes) & ~x & kHighBits;
  };
  return ((w & kHighBits) | has('\\') | has('\n') | (quotes ? has('"') : 0)) != 0;
}

void AppendNumber(double v, TextBuffer* out) {
  out->Commit(WriteNumber(v, out->Reserve(kMaxNumberChars)));
}

// name{labels,extra="v"} value\n
void AppendSample(std::string_view name, std::string_view suffix,
                  const std::vector<ClientMetric::Label>& labels, const char* extra_name,
                  double extra_value, double value, TextBuffer* out) {
  out->Append(name);
  out->Append(suffix);
  if (!labels.empty() || extra_name != nullptr) {
    out->Append('{');
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out->Append(',');
      first = false;
      out->Append(l.name);
      out->Append("=\"");
      AppendEscaped(l.value, true, out);
      out->Append('"');
    }
    if (extra_name != nullptr) {
      if (!first) out->Append(',');
      out->Append(extra_name);
      out->Append("=\"");
      AppendNumber(extra_value, out);
      out->Append('"');
    }
    out->Append('}');
  }
  out->Append(' ');
  AppendNumber(value, out);
  out->Append('\n');
}

const char* TypeName(MetricType t) {
  switch (t) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Summary:
      return "summary";
    default:
      return "untyped";
  }
}

// One deflate stream per thread, reset between calls: deflateInit2 allocates and clears
// about 270 KB of zlib state, and the old Gzip also zero-filled an output as large as its
// input (deflateBound) where the result is a tenth of it.
class Deflater {
 public:
  ~Deflater() {
    if (ready_) deflateEnd(&zs_);
  }

  bool Compress(std::string_view in, std::string* out) {
    if (ready_ && deflateReset(&zs_) != Z_OK) {
      deflateEnd(&zs_);
      ready_ = false;
    }
    if (!ready_) {
      zs_ = z_stream{};
      if (deflateInit2(&zs_, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
      ready_ = true;
    }
    if (!chunk_) chunk_ = std::make_unique_for_overwrite<unsigned char[]>(kChunk);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    out->clear();
    int rc;
    do {
      zs_.next_out = chunk_.get();
      zs_.avail_out = kChunk;
      rc = deflate(&zs_, Z_FINISH);
      out->append(reinterpret_cast<const char*>(chunk_.get()), kChunk - zs_.avail_out);
    } while (rc == Z_OK);
    return rc == Z_STREAM_END;
  }

 private:
  static constexpr uInt kChunk = 64 * 1024;
  z_stream zs_{};
  bool ready_ = false;
  std::unique_ptr<unsigned char[]> chunk_;
};

}  // namespace

void TextBuffer::Grow(size_t n) {
  size_t cap = std::max(len_ + n, cap_ * 2);
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  if (len_ > 0) std::memcpy(bigger.get(), buf_.get(), len_);
  buf_ = std::move(bigger);
  cap_ = cap;
}

char* WriteNumber(double v, char* p) {
  char* end = p + kMaxNumberChars;
  if (std::isnan(v)) return Put(p, "NaN");
  if (std::isinf(v)) return Put(p, v > 0 ? "+Inf" : "-Inf");
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_chars(p, end, static_cast<int64_t>(v)).ptr;
  }
  // Shortest round-trip digits; fixed notation in the usual range ("0.0005", not
  // "5e-04"), as Prometheus's own clients write bucket bounds.
  double a = std::fabs(v);
  auto fmt = a >= 1e-6 && a < 1e15 ? std::chars_format::fixed : std::chars_format::general;
  return std::to_chars(p, end, v, fmt).ptr;
}

char* WriteSeconds(uint64_t ns, char* p) {
  constexpr uint64_t kNanos = 1'000'000'000;
  if (ns < 1000 || ns >= 1'000'000'000'000'000) {
    return WriteNumber(static_cast<double>(ns) / 1e9, p);  // 0, below 1 µs, or too long
  }
  p = std::to_chars(p, p + kMaxNumberChars, ns / kNanos).ptr;
  uint64_t frac = ns % kNanos;
  if (frac == 0) return p;
  int digits = 9;
  while (frac % 10 == 0) {
    frac /= 10;
    --digits;
  }
  *p++ = '.';
  for (int i = digits - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  return p + digits;
}

void AppendEscaped(std::string_view s, bool quotes, TextBuffer* out) {
  // One pass over the bytes: runs that need nothing go out whole, and UTF-8 is checked only
  // from the first byte above ASCII (help text and nearly every label value have none).
  const std::array<ByteClass, 256>& classes = quotes ? kQuotedClasses : kHelpClasses;
  std::string repaired;
  bool utf8_checked = false;
  size_t run = 0;  // start of the bytes not yet appended
  size_t i = 0;
  while (i < s.size()) {
    if (!utf8_checked) {
      // Eight bytes at a time past the plain ones (help text is a few hundred), the last
      // few padded with zero bytes, which are plain.
      uint64_t w;
      while (i + sizeof w <= s.size()) {
        std::memcpy(&w, s.data() + i, sizeof w);
        if (AnyToLookAt(w, quotes)) break;
        i += sizeof w;
      }
      if (i + sizeof w > s.size()) {
        w = 0;
        std::memcpy(&w, s.data() + i, s.size() - i);
        if (!AnyToLookAt(w, quotes)) i = s.size();
      }
      if (i == s.size()) break;
    }
    const ByteClass c = classes[static_cast<unsigned char>(s[i])];
    if (c == ByteClass::kPlain || (c == ByteClass::kHigh && utf8_checked)) {
      ++i;
      continue;
    }
    if (c == ByteClass::kHigh) {
      // Everything before i is ASCII, so the whole value is valid UTF-8 exactly when the
      // rest is, and repairing the rest repairs it as base::ValidUtf8 would the whole.
      utf8_checked = true;
      if (!base::IsValidUtf8(s.substr(i))) {
        out->Append(s.substr(run, i - run));
        repaired = base::ValidUtf8(s.substr(i));
        s = repaired;
        run = i = 0;
      }
      continue;
    }
    out->Append(s.substr(run, i - run));
    out->Append(s[i] == '\\' ? "\\\\" : s[i] == '\n' ? "\\n" : "\\\"");
    run = ++i;
  }
  out->Append(s.substr(run));
}

void AppendFamilyHeader(std::string_view name, std::string_view help, MetricType type,
                        Format format, TextBuffer* out) {
  const bool om = format == Format::kOpenMetrics;
  // OpenMetrics names a counter family without its _total suffix.
  std::string_view family_name = name;
  if (om && type == MetricType::Counter && family_name.ends_with("_total")) {
    family_name.remove_suffix(6);
  }
  out->Append("# HELP ");
  out->Append(family_name);
  out->Append(' ');
  AppendEscaped(help, om, out);
  out->Append("\n# TYPE ");
  out->Append(family_name);
  out->Append(' ');
  out->Append(om && type == MetricType::Untyped ? "unknown" : TypeName(type));
  out->Append('\n');
}

Format NegotiateFormat(std::string_view accept) {
  return ListsToken(accept, "application/openmetrics-text") ? Format::kOpenMetrics
                                                            : Format::kText004;
}

const char* ContentType(Format format) {
  return format == Format::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

bool AcceptsGzip(std::string_view accept_encoding) { return ListsToken(accept_encoding, "gzip"); }

void AppendFamilies(const std::vector<MetricFamily>& families, Format format, TextBuffer* out) {
  const bool om = format == Format::kOpenMetrics;
  for (const MetricFamily& f : families) {
    if (f.metric.empty()) continue;
    std::string_view name = f.name;
    std::string_view family_name = name;
    if (om && f.type == MetricType::Counter && family_name.ends_with("_total")) {
      family_name.remove_suffix(6);
    }
    AppendFamilyHeader(name, f.help, f.type, format, out);
    for (const ClientMetric& m : f.metric) {
      switch (f.type) {
        case MetricType::Counter:
          AppendSample(family_name, om ? "_total" : "", m.label, nullptr, 0, m.counter.value, out);
          break;
        case MetricType::Gauge:
          AppendSample(name, "", m.label, nullptr, 0, m.gauge.value, out);
          break;
        case MetricType::Untyped:
          AppendSample(name, "", m.label, nullptr, 0, m.untyped.value, out);
          break;
        case MetricType::Histogram:
          for (const auto& b : m.histogram.bucket) {
            AppendSample(name, "_bucket", m.label, "le", b.upper_bound,
                         static_cast<double>(b.cumulative_count), out);
          }
          AppendSample(name, "_sum", m.label, nullptr, 0, m.histogram.sample_sum, out);
          AppendSample(name, "_count", m.label, nullptr, 0,
                       static_cast<double>(m.histogram.sample_count), out);
          break;
        case MetricType::Summary:
          for (const auto& q : m.summary.quantile) {
            AppendSample(name, "", m.label, "quantile", q.quantile, q.value, out);
          }
          AppendSample(name, "_sum", m.label, nullptr, 0, m.summary.sample_sum, out);
          AppendSample(name, "_count", m.label, nullptr, 0,
                       static_cast<double>(m.summary.sample_count), out);
          break;
        default:
          break;
      }
    }
  }
}

void Serialize(const std::vector<MetricFamily>& families, Format format, TextBuffer* out) {
  AppendFamilies(families, format, out);
  if (format == Format::kOpenMetrics) out->Append("# EOF\n");
}

bool Gzip(std::string_view in, std::string* out) {
  thread_local Deflater deflater;
  return deflater.Compress(in, out);
}

}  // namespace speedmon::metrics
