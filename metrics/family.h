// Counter, gauge and histogram families registered on a prometheus-cpp registry as
// before, that a scrape writes straight as text instead of through Registry::Collect.
//
// Why: a scrape through Collect built one prometheus::ClientMetric with its own copy of
// every label string per series, then Serialize wrote them out again. For the few dozen
// series of the main registry and speedrun's that was about 190k of the ~480k
// instructions of an idle scrape of the default config, malloc and free being a third of
// it. A Family renders each series' labels (and a histogram's bucket bounds) once, when
// the series is added, and FamilySet::AppendText writes the same bytes as
// Serialize(registry.Collect()) from the metrics' current values: about 30k for the same
// families (docs/BENCHMARKS.md, "Registry families straight to text").
//
// The registry stays the one readers such as the alert engine collect from: every
// family and series is on it as prometheus-cpp's BuildX().Register() and Family::Add
// would have put it there. Register every family of the registry through its FamilySet,
// or the scrape will not show it; go through Family to add and remove series, or the
// scrape will not see them either.
//
// Threads: any. Each Family and the FamilySet have a mutex; the metrics' values are read
// as prometheus-cpp's Collect reads them (atomics; a histogram under its own lock). A
// Family's mutex is held around prometheus-cpp's Family::Add and Remove, never the other
// way round.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics/text_format.h"

namespace speedmon::metrics {

// One family of a FamilySet; T is prometheus::Counter, Gauge or Histogram.
template <typename T>
class Family {
 public:
  Family(prometheus::Family<T>& family, const std::string& name, const std::string& help);

  // The series of `labels` (prometheus::Family::Add: created on first sight with `args`,
  // a histogram's bucket bounds; the same metric after that). Throws std::invalid_argument
  // for a label name prometheus-cpp refuses, before touching either family.
  template <typename... Args>
  T& Add(const prometheus::Labels& labels, Args&&... args) {
    std::lock_guard lock(mu_);
    if (T* found = Find(labels)) return *found;
    CheckLabelNames(labels);
    return Insert(labels, family_.Add(labels, std::forward<Args>(args)...));
  }
  // Removes a series that Add returned (a no-op for any other pointer).
  void Remove(T* metric);

  // Appends the family (its header and samples) unless it has no series.
  void AppendText(Format format, TextBuffer* out) const;

 private:
  friend class FamilySet;

  struct Series {
    std::string labels;  // a="b",c="d": escaped, without the braces
    T* metric;
    // A histogram's bucket lines up to their counts, name_bucket{labels,le="bound"} (its
    // bounds never change, and writing them is most of what writing a histogram costs).
    std::vector<std::string> buckets;
  };

  T* Find(const prometheus::Labels& labels) const;
  static void CheckLabelNames(const prometheus::Labels& labels);
  T& Insert(const prometheus::Labels& labels, T& metric);

  prometheus::Family<T>& family_;
  // [Format]: "# HELP ...\n# TYPE ...\n", and a sample's name (a counter's with _total in
  // OpenMetrics).
  std::string header_[2];
  std::string sample_name_[2];
  mutable std::mutex mu_;
  // The same container, hasher and sequence of inserts and erases as prometheus-cpp's
  // Family, so iterating it gives the series in the order its Collect does.
  std::unordered_map<prometheus::Labels, Series, prometheus::detail::LabelHasher> series_;
};

// The families of one prometheus-cpp registry, written as Serialize(registry.Collect())
// would write them.
class FamilySet {
 public:
  // `registry` outlives the set.
  explicit FamilySet(prometheus::Registry& registry) : registry_(registry) {}

  // Registers a family on the registry (prometheus::BuildCounter() etc.: a family of the
  // same name and type is returned as it is; another type throws) and returns its Family.
  Family<prometheus::Counter>& AddCounter(const std::string& name, const std::string& help);
  Family<prometheus::Gauge>& AddGauge(const std::string& name, const std::string& help);
  Family<prometheus::Histogram>& AddHistogram(const std::string& name, const std::string& help);

  // Appends every family with series in Registry::Collect's order (counters, gauges,
  // histograms, each in registration order), without OpenMetrics' "# EOF".
  void AppendText(Format format, TextBuffer* out) const;

 private:
  template <typename T>
  Family<T>& Wrap(prometheus::Family<T>& family, const std::string& name, const std::string& help,
                  std::vector<std::unique_ptr<Family<T>>>* wrapped);

  prometheus::Registry& registry_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family<prometheus::Counter>>> counters_;
  std::vector<std::unique_ptr<Family<prometheus::Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<prometheus::Histogram>>> histograms_;
};

}  // namespace speedmon::metrics
