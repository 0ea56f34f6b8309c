// The status page's last minutes at a glance: a fixed ring of points, each the change
// between two readings of speedmon's running totals taken a few seconds apart (requests,
// 2xx-3xx answers, 5xx and the duration histogram per upstream; experiments stored and
// their successes) plus the gauges read at the same moment (the SLA window's success
// rate, host CPU and memory). admin/timeseries.h takes the readings on the main loop;
// GET /api/v1/timeseries serves ToJson().
//
// Memory is fixed at construction: `capacity` points (180 at the default 5 s: 15
// minutes), each with one small record per upstream, and the last reading's totals (one
// fine histogram per upstream). Main thread only; nothing here is shared.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "metrics/request_stats.h"

namespace speedmon::metrics {

// Everything one sample reads. Counters are totals since start (or since ever, for the
// experiments the store keeps); NaN is "no value" for the gauges.
struct TimeseriesReading {
  double unix_seconds = 0;                // wall clock: the time axis
  double monotonic_seconds = 0;           // steady clock: the interval's length
  std::vector<UpstreamTotals> upstreams;  // one per upstream, the ring's order
  uint64_t experiments = 0;               // experiments stored
  uint64_t experiment_successes = 0;      // of those, with status "success"
  double experiment_success_rate = std::numeric_limits<double>::quiet_NaN();  // SLA window, %
  double cpu_percent = std::numeric_limits<double>::quiet_NaN();
  double memory_percent = std::numeric_limits<double>::quiet_NaN();
};

// The interval between two readings.
struct TimeseriesPoint {
  struct Upstream {
    uint64_t requests = 0, successes = 0, errors5xx = 0;       // answered in the interval
    double p95_ms = std::numeric_limits<double>::quiet_NaN();  // NaN without requests
  };
  double time = 0;     // unix seconds at the interval's end
  double seconds = 0;  // the interval's length
  std::vector<Upstream> upstreams;
  uint64_t experiments = 0, experiment_successes = 0;  // stored in the interval
  // The gauges as read at the interval's end.
  double experiment_success_rate = std::numeric_limits<double>::quiet_NaN();
  double cpu_percent = std::numeric_limits<double>::quiet_NaN();
  double memory_percent = std::numeric_limits<double>::quiet_NaN();
};

class TimeseriesRing {
 public:
  // `interval_seconds` is the intended spacing, reported to readers; the points carry
  // their measured length. REQUIRES: capacity >= 1.
  TimeseriesRing(std::vector<std::string> upstreams, size_t capacity, double interval_seconds);

  // The first reading is the baseline and adds no point; each later one adds the point
  // since the previous reading, dropping the oldest once `capacity` are kept. p95 is the
  // nearest-rank 95th percentile of the interval's durations (the difference of the two
  // fine histograms), as its bucket's midpoint: within 6.25 % of the true value. A
  // counter lower than at the last reading (none of speedmon's goes down) counts 0.
  // A reading with another number of upstreams is ignored.
  void Add(const TimeseriesReading& reading);

  size_t size() const { return size_; }
  size_t capacity() const { return points_.size(); }
  // Oldest first. REQUIRES: i < size().
  const TimeseriesPoint& at(size_t i) const;
  const std::vector<std::string>& upstreams() const { return upstreams_; }

  // The GET /api/v1/timeseries document, one array per series, oldest point first:
  // {"interval_seconds", "capacity", "time", "seconds",
  //  "upstreams": [{"name", "requests", "requests_per_second", "successes",
  //                 "success_percent", "errors_5xx", "p95_ms"}],
  //  "experiments", "experiment_successes", "experiment_success_rate",
  //  "cpu_percent", "memory_percent"}; "no value" is null.
  nlohmann::json ToJson() const;

 private:
  std::vector<std::string> upstreams_;
  double interval_seconds_;
  std::vector<TimeseriesPoint> points_;  // the ring, allocated once
  size_t next_ = 0;                      // where the next point goes
  size_t size_ = 0;
  bool have_last_ = false;
  TimeseriesReading last_;
};

}  // namespace speedmon::metrics
