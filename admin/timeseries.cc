// The status page's chart sampler. See timeseries.h.
#include "admin/timeseries.h"

#include "base/boundary.h"
#include "metrics/system_collector.h"
#include "proxy/data_plane.h"
#include "speedrun/service.h"

namespace speedmon::admin {

TimeseriesSampler::TimeseriesSampler(uv_loop_t* loop, std::chrono::milliseconds interval,
                                     const proxy::DataPlane* data_plane,
                                     metrics::SystemCollector* system,
                                     const speedrun::Service* speedrun)
    : loop_(loop),
      interval_(interval),
      data_plane_(data_plane),
      system_(system),
      speedrun_(speedrun),
      ring_(data_plane->request_stats()->layout().upstreams, kPoints,
            std::chrono::duration<double>(interval).count()) {}

void TimeseriesSampler::Start() {
  if (started_) return;
  started_ = true;
  Sample();  // the baseline
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  const uint64_t every = static_cast<uint64_t>(interval_.count());
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<TimeseriesSampler*>(t->data);
        base::Guard(base::Component::kAdmin, "timeseries sample", [&] { self->Sample(); });
      },
      every, every);
}

void TimeseriesSampler::Close() {
  if (!started_ || closed_) return;
  closed_ = true;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void TimeseriesSampler::Sample() {
  metrics::TimeseriesReading r;
  r.unix_seconds =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.monotonic_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  r.upstreams = data_plane_->request_stats()->Totals();
  speedrun::Service::ExperimentCounts experiments = speedrun_->CountExperiments();
  r.experiments = experiments.total;
  r.experiment_successes = experiments.successes;
  r.experiment_success_rate = speedrun_->Value("speedrun.experiment_success_rate");
  auto host = system_->sampler().Get();
  if (host->cpu_ok) r.cpu_percent = host->cpu_percent;
  if (host->memory_ok) r.memory_percent = host->memory_percent;
  ring_.Add(r);
}

}  // namespace speedmon::admin
