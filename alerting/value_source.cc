// CollectablesValueSource. Main thread (see value_source.h).
#include "alerting/value_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace speedmon::alerting {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

Labels LabelsOf(const ClientMetric& m) {
  Labels out;
  for (const auto& l : m.label) out[l.name] = l.value;
  return out;
}

// Prometheus spells bucket bounds as Go floats ("0.5", "1", "+Inf"); users may write
// "1.0" or "0.50". Comparing numbers makes all of them find the same bucket.
bool ParseBound(const std::string& text, double* out) {
  if (text == "+Inf" || text == "Inf" || text == "inf" || text == "+inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// Exact matching, except the `le` / `quantile` label which is matched numerically.
bool Matches(const Labels& labels, const std::map<std::string, std::string>& matchers) {
  for (const auto& [name, want] : matchers) {
    auto it = labels.find(name);
    if (it == labels.end()) {
      // Prometheus: a matcher for the empty value also matches a missing label.
      if (!want.empty()) return false;
      continue;
    }
    if (it->second == want) continue;
    if (name == "le" || name == "quantile") {
      double a = 0, b = 0;
      if (ParseBound(it->second, &a) && ParseBound(want, &b) && a == b) continue;
    }
    return false;
  }
  return true;
}

void AddIfMatch(Labels labels, double value, const std::map<std::string, std::string>& matchers,
                std::vector<Sample>* out) {
  if (!Matches(labels, matchers)) return;
  out->push_back(Sample{std::move(labels), value});
}

}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  // The fewest significant digits that read back exactly, then Go's %v layout: plain
  // decimals unless the exponent is below -4 or at least 21.
  char buf[64];
  int digits = 1;
  for (; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  const char* e = std::strchr(buf, 'e');
  int exponent = e ? std::atoi(e + 1) : 0;
  if (exponent < -4 || exponent >= 21) return buf;
  std::snprintf(buf, sizeof(buf), "%.*f", std::max(0, digits - 1 - exponent), v);
  return buf;
}

CollectablesValueSource::CollectablesValueSource(
    std::vector<std::weak_ptr<prometheus::Collectable>> sources)
    : sources_(std::move(sources)) {}

void CollectablesValueSource::Add(std::weak_ptr<prometheus::Collectable> source) {
  sources_.push_back(std::move(source));
}

void CollectablesValueSource::BeginRound() {
  snapshot_.clear();
  for (const auto& weak : sources_) {
    auto source = weak.lock();
    if (!source) continue;
    auto families = source->Collect();
    for (auto& f : families) snapshot_.push_back(std::move(f));
  }
  collected_ = true;
}

base::StatusOr<std::vector<Sample>> CollectablesValueSource::Query(
    const std::string& metric, const std::map<std::string, std::string>& matchers) {
  if (!collected_) BeginRound();
  bool bare_histogram = false;
  std::vector<Sample> out;
  for (const MetricFamily& family : snapshot_) {
    const std::string& name = family.name;
    switch (family.type) {
      case MetricType::Gauge:
      case MetricType::Counter:
      case MetricType::Untyped:
        if (name != metric) break;
        for (const auto& m : family.metric) {
          double v = family.type == MetricType::Gauge     ? m.gauge.value
                     : family.type == MetricType::Counter ? m.counter.value
                                                          : m.untyped.value;
          AddIfMatch(LabelsOf(m), v, matchers, &out);
        }
        break;
      case MetricType::Histogram:
      case MetricType::Summary: {
        const bool histogram = family.type == MetricType::Histogram;
        if (metric == name) {
          if (histogram) {
            bare_histogram = true;
            break;
          }
          for (const auto& m : family.metric) {
            for (const auto& q : m.summary.quantile) {
              Labels labels = LabelsOf(m);
              labels["quantile"] = FormatValue(q.quantile);
              AddIfMatch(std::move(labels), q.value, matchers, &out);
            }
          }
          break;
        }
        if (metric == name + "_count") {
          for (const auto& m : family.metric) {
            double count =
                static_cast<double>(histogram ? m.histogram.sample_count : m.summary.sample_count);
            AddIfMatch(LabelsOf(m), count, matchers, &out);
          }
        } else if (metric == name + "_sum") {
          for (const auto& m : family.metric) {
            AddIfMatch(LabelsOf(m), histogram ? m.histogram.sample_sum : m.summary.sample_sum,
                       matchers, &out);
          }
        } else if (histogram && metric == name + "_bucket") {
          for (const auto& m : family.metric) {
            for (const auto& b : m.histogram.bucket) {
              Labels labels = LabelsOf(m);
              labels["le"] = FormatValue(b.upper_bound);
              AddIfMatch(std::move(labels), static_cast<double>(b.cumulative_count), matchers,
                         &out);
            }
          }
        }
        break;
      }
    }
  }
  if (out.empty() && bare_histogram) {
    return base::InvalidArgumentError("metric " + metric + " is a histogram: use " + metric +
                                      "_count, " + metric + "_sum or " + metric +
                                      "_bucket{le=\"...\"}");
  }
  return out;
}

}  // namespace speedmon::alerting
