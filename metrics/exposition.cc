// Prometheus text 0.0.4 and OpenMetrics 1.0 serialisation, and gzip. See exposition.h.
#include "metrics/exposition.h"

#include <zlib.h>

#include <charconv>
#include <cmath>
#include <cstdio>

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
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
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

void AppendNumber(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out->append(buf, r.ptr);
  } else {
    // Shortest round-trip digits; fixed notation in the usual range ("0.0005", not
    // "5e-04"), as Prometheus's own clients write bucket bounds.
    char buf[64];
    double a = std::fabs(v);
    auto fmt = a >= 1e-6 && a < 1e15 ? std::chars_format::fixed : std::chars_format::general;
    auto r = std::to_chars(buf, buf + sizeof buf, v, fmt);
    out->append(buf, r.ptr);
  }
}

// Label values and help text must be UTF-8 in both formats; a value that is not (a
// strategy name, a disk path) is written with U+FFFD in place of the bad bytes.
void AppendEscaped(std::string_view s, bool quotes, std::string* out) {
  std::string repaired;
  if (!base::IsValidUtf8(s)) {
    repaired = base::ValidUtf8(s);
    s = repaired;
  }
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quotes) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// name{labels,extra="v"} value\n
void AppendSample(std::string_view name, std::string_view suffix,
                  const std::vector<ClientMetric::Label>& labels, const char* extra_name,
                  double extra_value, double value, std::string* out) {
  out->append(name);
  out->append(suffix);
  if (!labels.empty() || extra_name != nullptr) {
    out->push_back('{');
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out->push_back(',');
      first = false;
      out->append(l.name);
      out->append("=\"");
      AppendEscaped(l.value, true, out);
      out->push_back('"');
    }
    if (extra_name != nullptr) {
      if (!first) out->push_back(',');
      out->append(extra_name);
      out->append("=\"");
      AppendNumber(extra_value, out);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  AppendNumber(value, out);
  out->push_back('\n');
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

}  // namespace

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

void Serialize(const std::vector<MetricFamily>& families, Format format, std::string* out) {
  const bool om = format == Format::kOpenMetrics;
  for (const MetricFamily& f : families) {
    if (f.metric.empty()) continue;
    std::string_view name = f.name;
    // OpenMetrics names a counter family without its _total suffix.
    std::string_view family_name = name;
    if (om && f.type == MetricType::Counter && family_name.ends_with("_total")) {
      family_name.remove_suffix(6);
    }
    out->append("# HELP ");
    out->append(family_name);
    out->push_back(' ');
    AppendEscaped(f.help, om, out);
    out->append("\n# TYPE ");
    out->append(family_name);
    out->push_back(' ');
    out->append(om && f.type == MetricType::Untyped ? "unknown" : TypeName(f.type));
    out->push_back('\n');
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
  if (om) out->append("# EOF\n");
}

bool Gzip(std::string_view in, std::string* out) {
  z_stream zs{};
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&zs, in.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs, Z_FINISH);
  out->resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END;
}

}  // namespace speedmon::metrics
