// Takes the status page's chart samples on the main loop: every
// [admin].timeseries_interval a uv timer reads the request totals per upstream
// (metrics::RequestStatsCollector::Totals), the experiments stored and their successes,
// the SLA window's success rate and the host's CPU and memory into a
// metrics::TimeseriesRing of the last kPoints samples, which GET /api/v1/timeseries
// serves. Each sample is a few microseconds of counter reads (the request slots under
// their seqlocks, one speedrun mutex, the cached host snapshot); nothing is written
// anywhere else.
//
// Main thread only: built by app/ before the loop runs, Start() after a successful start,
// Close() when stopping (the loop finishes closing the timer before the sampler goes).
#pragma once

#include <uv.h>

#include <chrono>

#include "metrics/timeseries.h"

namespace speedmon::metrics {
class SystemCollector;
}
namespace speedmon::proxy {
class DataPlane;
}
namespace speedmon::speedrun {
class Service;
}

namespace speedmon::admin {

class TimeseriesSampler {
 public:
  static constexpr size_t kPoints = 180;  // 15 minutes at the default 5 s

  // Every pointer is non-null and outlives the sampler.
  TimeseriesSampler(uv_loop_t* loop, std::chrono::milliseconds interval,
                    const proxy::DataPlane* data_plane, metrics::SystemCollector* system,
                    const speedrun::Service* speedrun);
  TimeseriesSampler(const TimeseriesSampler&) = delete;
  TimeseriesSampler& operator=(const TimeseriesSampler&) = delete;

  // Takes the baseline reading now and samples every interval from then on.
  void Start();
  // Stops sampling and closes the timer (done when the loop next runs). Safe to repeat.
  void Close();
  // One reading into the ring, as the timer takes it.
  void Sample();

  const metrics::TimeseriesRing& ring() const { return ring_; }

 private:
  uv_loop_t* loop_;
  std::chrono::milliseconds interval_;
  const proxy::DataPlane* data_plane_;
  metrics::SystemCollector* system_;
  const speedrun::Service* speedrun_;
  metrics::TimeseriesRing ring_;
  uv_timer_t timer_;
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace speedmon::admin
