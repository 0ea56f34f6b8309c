// Families written straight as text. See family.h.
#include "metrics/family.h"

#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <type_traits>

namespace speedmon::metrics {
namespace {

// Room for a sample line but its name, suffix and labels: braces, space, value, newline.
constexpr size_t kSampleExtra = kMaxNumberChars + 8;

// name suffix{labels} value\n, braces only around labels that are there.
template <typename Value>
void AppendSample(std::string_view name, std::string_view suffix, std::string_view labels,
                  Value value, TextBuffer* out) {
  char* p = out->Reserve(name.size() + suffix.size() + labels.size() + kSampleExtra);
  p = Put(p, name);
  p = Put(p, suffix);
  if (!labels.empty()) {
    *p++ = '{';
    p = Put(p, labels);
    *p++ = '}';
  }
  *p++ = ' ';
  if constexpr (std::is_same_v<Value, uint64_t>) {
    p = WriteCount(value, p);
  } else {
    p = WriteNumber(value, p);
  }
  *p++ = '\n';
  out->Commit(p);
}

// name_bucket{labels,le="bound"} without the count.
std::string BucketLine(std::string_view name, std::string_view labels, double bound) {
  TextBuffer line;
  line.Append(name);
  line.Append("_bucket{");
  line.Append(labels);
  line.Append(labels.empty() ? "le=\"" : ",le=\"");
  line.Commit(WriteNumber(bound, line.Reserve(kMaxNumberChars)));
  line.Append("\"} ");
  return std::string(line.view());
}

// `line` (BucketLine) count\n
void AppendBucket(std::string_view line, uint64_t count, TextBuffer* out) {
  char* p = out->Reserve(line.size() + kMaxNumberChars + 1);
  p = Put(p, line);
  p = WriteCount(count, p);
  *p++ = '\n';
  out->Commit(p);
}

}  // namespace

template <typename T>
Family<T>::Family(prometheus::Family<T>& family, const std::string& name, const std::string& help)
    : family_(family) {
  for (Format format : {Format::kText004, Format::kOpenMetrics}) {
    const int f = static_cast<int>(format);
    TextBuffer header;
    AppendFamilyHeader(name, help, T::metric_type, format, &header);
    header_[f] = header.view();
    sample_name_[f] = name;
    // OpenMetrics: a counter's samples are its family name (without _total) and _total.
    if (format == Format::kOpenMetrics && T::metric_type == prometheus::MetricType::Counter &&
        !sample_name_[f].ends_with("_total")) {
      sample_name_[f] += "_total";
    }
  }
}

template <typename T>
T* Family<T>::Find(const prometheus::Labels& labels) const {
  auto it = series_.find(labels);
  return it == series_.end() ? nullptr : it->second.metric;
}

template <typename T>
void Family<T>::CheckLabelNames(const prometheus::Labels& labels) {
  // prometheus-cpp checks these after inserting the series, and erases it again when one
  // fails: refused here, neither family changes, and both keep the same order.
  for (const auto& label : labels) {
    if (!prometheus::CheckLabelName(label.first)) {
      throw std::invalid_argument("Invalid label name");
    }
  }
}

template <typename T>
T& Family<T>::Insert(const prometheus::Labels& labels, T& metric) {
  TextBuffer text;
  for (const auto& [name, value] : labels) {
    if (text.size() > 0) text.Append(',');
    text.Append(name);
    text.Append("=\"");
    AppendEscaped(value, true, &text);
    text.Append('"');
  }
  Series series{std::string(text.view()), &metric, {}};
  if constexpr (std::is_same_v<T, prometheus::Histogram>) {
    for (const auto& b : metric.Collect().histogram.bucket) {
      // A histogram's samples are named alike in both formats.
      series.buckets.push_back(BucketLine(sample_name_[0], series.labels, b.upper_bound));
    }
  }
  series_.emplace(labels, std::move(series));
  return metric;
}

template <typename T>
void Family<T>::Remove(T* metric) {
  std::lock_guard lock(mu_);
  // As prometheus-cpp's Remove: the first series holding `metric`, in iteration order.
  for (auto it = series_.begin(); it != series_.end(); ++it) {
    if (it->second.metric == metric) {
      series_.erase(it);
      break;
    }
  }
  family_.Remove(metric);
}

template <typename T>
void Family<T>::AppendText(Format format, TextBuffer* out) const {
  const int f = static_cast<int>(format);
  std::lock_guard lock(mu_);
  if (series_.empty()) return;
  out->Append(header_[f]);
  const std::string_view name = sample_name_[f];
  for (const auto& [labels, series] : series_) {
    if constexpr (std::is_same_v<T, prometheus::Histogram>) {
      const prometheus::ClientMetric m = series.metric->Collect();
      const auto& buckets = m.histogram.bucket;  // as many as series.buckets: fixed at Add
      for (size_t i = 0; i < buckets.size() && i < series.buckets.size(); ++i) {
        AppendBucket(series.buckets[i], buckets[i].cumulative_count, out);
      }
      AppendSample(name, "_sum", series.labels, m.histogram.sample_sum, out);
      AppendSample(name, "_count", series.labels, m.histogram.sample_count, out);
    } else {
      AppendSample(name, "", series.labels, series.metric->Value(), out);
    }
  }
}

template class Family<prometheus::Counter>;
template class Family<prometheus::Gauge>;
template class Family<prometheus::Histogram>;

template <typename T>
Family<T>& FamilySet::Wrap(prometheus::Family<T>& family, const std::string& name,
                           const std::string& help,
                           std::vector<std::unique_ptr<Family<T>>>* wrapped) {
  // The registry returns the family it has for a name it has seen: so do we.
  for (const auto& w : *wrapped) {
    if (&w->family_ == &family) return *w;
  }
  return *wrapped->emplace_back(std::make_unique<Family<T>>(family, name, help));
}

Family<prometheus::Counter>& FamilySet::AddCounter(const std::string& name,
                                                   const std::string& help) {
  std::lock_guard lock(mu_);
  return Wrap(prometheus::BuildCounter().Name(name).Help(help).Register(registry_), name, help,
              &counters_);
}

Family<prometheus::Gauge>& FamilySet::AddGauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  return Wrap(prometheus::BuildGauge().Name(name).Help(help).Register(registry_), name, help,
              &gauges_);
}

Family<prometheus::Histogram>& FamilySet::AddHistogram(const std::string& name,
                                                       const std::string& help) {
  std::lock_guard lock(mu_);
  return Wrap(prometheus::BuildHistogram().Name(name).Help(help).Register(registry_), name, help,
              &histograms_);
}

void FamilySet::AppendText(Format format, TextBuffer* out) const {
  std::lock_guard lock(mu_);
  for (const auto& f : counters_) f->AppendText(format, out);
  for (const auto& f : gauges_) f->AppendText(format, out);
  for (const auto& f : histograms_) f->AppendText(format, out);
}

}  // namespace speedmon::metrics
