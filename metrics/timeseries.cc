// The ring behind the status page's charts. See timeseries.h.
#include "metrics/timeseries.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace speedmon::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t Since(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

}  // namespace

TimeseriesRing::TimeseriesRing(std::vector<std::string> upstreams, size_t capacity,
                               double interval_seconds)
    : upstreams_(std::move(upstreams)), interval_seconds_(interval_seconds) {
  points_.resize(capacity < 1 ? 1 : capacity);
  for (TimeseriesPoint& p : points_) p.upstreams.resize(upstreams_.size());
}

void TimeseriesRing::Add(const TimeseriesReading& reading) {
  if (reading.upstreams.size() != upstreams_.size()) return;  // not a reading of this ring
  if (!have_last_) {
    last_ = reading;
    have_last_ = true;
    return;
  }
  TimeseriesPoint& p = points_[next_];
  p.time = reading.unix_seconds;
  p.seconds = std::max(0.0, reading.monotonic_seconds - last_.monotonic_seconds);
  for (size_t u = 0; u < upstreams_.size(); ++u) {
    const UpstreamTotals& now = reading.upstreams[u];
    UpstreamTotals& before = last_.upstreams[u];
    TimeseriesPoint::Upstream& out = p.upstreams[u];
    out.requests = Since(now.requests, before.requests);
    out.successes = Since(now.successes, before.successes);
    out.errors5xx = Since(now.errors5xx, before.errors5xx);
    // The interval's histogram, built in the last reading's array (replaced just below).
    uint64_t total = 0;
    for (int b = 0; b < kFineBuckets; ++b) {
      before.fine[b] = Since(now.fine[b], before.fine[b]);
      total += before.fine[b];
    }
    out.p95_ms = total == 0 ? kNaN
                            : static_cast<double>(FineBucketMidpoint(
                                  FineQuantileBucket(before.fine, total, 0.95))) /
                                  1000.0;
  }
  p.experiments = Since(reading.experiments, last_.experiments);
  p.experiment_successes = Since(reading.experiment_successes, last_.experiment_successes);
  p.experiment_success_rate = reading.experiment_success_rate;
  p.cpu_percent = reading.cpu_percent;
  p.memory_percent = reading.memory_percent;
  last_ = reading;
  next_ = (next_ + 1) % points_.size();
  if (size_ < points_.size()) ++size_;
}

const TimeseriesPoint& TimeseriesRing::at(size_t i) const {
  return points_[(next_ + points_.size() - size_ + i) % points_.size()];
}

nlohmann::json TimeseriesRing::ToJson() const {
  using nlohmann::json;
  auto column = [&](auto value) {
    json a = json::array();
    for (size_t i = 0; i < size_; ++i) a.push_back(value(at(i)));
    return a;
  };
  auto percent = [](uint64_t part, uint64_t whole) {
    return whole == 0 ? kNaN : static_cast<double>(part) * 100.0 / static_cast<double>(whole);
  };
  json ups = json::array();
  for (size_t u = 0; u < upstreams_.size(); ++u) {
    auto up = [u](const TimeseriesPoint& p) -> const TimeseriesPoint::Upstream& {
      return p.upstreams[u];
    };
    ups.push_back(
        {{"name", upstreams_[u]},
         {"requests", column([&](const TimeseriesPoint& p) { return up(p).requests; })},
         {"requests_per_second", column([&](const TimeseriesPoint& p) {
            return p.seconds > 0 ? static_cast<double>(up(p).requests) / p.seconds : kNaN;
          })},
         {"successes", column([&](const TimeseriesPoint& p) { return up(p).successes; })},
         {"success_percent", column([&](const TimeseriesPoint& p) {
            return percent(up(p).successes, up(p).requests);
          })},
         {"errors_5xx", column([&](const TimeseriesPoint& p) { return up(p).errors5xx; })},
         {"p95_ms", column([&](const TimeseriesPoint& p) { return up(p).p95_ms; })}});
  }
  return {
      {"interval_seconds", interval_seconds_},
      {"capacity", points_.size()},
      {"time", column([](const TimeseriesPoint& p) { return p.time; })},
      {"seconds", column([](const TimeseriesPoint& p) { return p.seconds; })},
      {"upstreams", ups},
      {"experiments", column([](const TimeseriesPoint& p) { return p.experiments; })},
      {"experiment_successes",
       column([](const TimeseriesPoint& p) { return p.experiment_successes; })},
      {"experiment_success_rate",
       column([](const TimeseriesPoint& p) { return p.experiment_success_rate; })},
      {"cpu_percent", column([](const TimeseriesPoint& p) { return p.cpu_percent; })},
      {"memory_percent", column([](const TimeseriesPoint& p) { return p.memory_percent; })},
  };
}

}  // namespace speedmon::metrics
