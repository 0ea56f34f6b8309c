// Per-worker request statistics and their merge at scrape time. See request_stats.h.
#include "metrics/request_stats.h"

#include <prometheus/metric_family.h>

#include <algorithm>
#include <bit>
#include <cmath>

namespace speedmon::metrics {
namespace {

constexpr int kMethods = static_cast<int>(Method::kCount);
constexpr int kKinds = static_cast<int>(UpstreamErrorKind::kCount);

// Exact codes with a label of their own; slots 32..36 are the classes 1xx..5xx.
constexpr std::array<int, 32> kKnownCodes = {100, 101, 200, 201, 202, 204, 206, 301, 302, 304, 307,
                                             308, 400, 401, 403, 404, 405, 408, 409, 410, 412, 413,
                                             415, 422, 429, 431, 499, 500, 501, 502, 503, 504};
static_assert(kKnownCodes.size() + 5 == kCodeSlots);

constexpr std::array<int, 600> BuildCodeIndex() {
  std::array<int, 600> idx{};
  for (int c = 0; c < 600; ++c) idx[c] = c >= 100 ? 32 + (c / 100 - 1) : 36;
  for (size_t i = 0; i < kKnownCodes.size(); ++i) idx[kKnownCodes[i]] = static_cast<int>(i);
  return idx;
}
constexpr std::array<int, 600> kCodeIndex = BuildCodeIndex();

prometheus::ClientMetric::Label L(const char* name, const std::string& value) {
  return prometheus::ClientMetric::Label{name, value};
}

}  // namespace

Method MethodFromString(std::string_view m) {
  static constexpr std::array<std::string_view, kMethods - 1> kNames = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == m) return static_cast<Method>(i);
  }
  return Method::kOther;
}

const char* MethodName(Method m) {
  static constexpr std::array<const char*, kMethods> kNames = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other"};
  return kNames[static_cast<int>(m)];
}

int CodeIndex(int status) { return status >= 0 && status < 600 ? kCodeIndex[status] : 36; }

std::string CodeLabel(int code_index) {
  if (code_index < static_cast<int>(kKnownCodes.size())) {
    return std::to_string(kKnownCodes[code_index]);
  }
  return std::to_string(code_index - 31) + "xx";
}

const char* UpstreamErrorKindName(UpstreamErrorKind k) {
  static constexpr std::array<const char*, kKinds> kNames = {"connect", "timeout", "reset",
                                                             "bad_response"};
  return kNames[static_cast<int>(k)];
}

int FineBucket(uint64_t micros) {
  if (micros < 16) return static_cast<int>(micros);
  int e = 63 - std::countl_zero(micros);  // >= 4
  if (e > 30) return kFineBuckets - 1;
  int sub = static_cast<int>((micros >> (e - 3)) & 7);
  return 16 + (e - 4) * 8 + sub;
}

uint64_t FineBucketMidpoint(int bucket) {
  if (bucket < 16) return static_cast<uint64_t>(bucket);
  int e = (bucket - 16) / 8 + 4;
  uint64_t sub = static_cast<uint64_t>((bucket - 16) % 8);
  uint64_t lo = (uint64_t{1} << e) + (sub << (e - 3));
  uint64_t width = uint64_t{1} << (e - 3);
  return lo + width / 2;
}

WorkerStats::WorkerStats(const StatsLayout& layout)
    : routes_(static_cast<int>(layout.routes.size())), upstreams_(layout.upstreams.size()) {
  max_endpoints_ = 1;
  for (const auto& e : layout.endpoints) {
    max_endpoints_ = std::max(max_endpoints_, static_cast<int>(e.size()));
  }
  size_t pairs = upstreams_ * static_cast<size_t>(routes_);
  codes_ = std::make_unique<SingleWriterCounter[]>(pairs * kMethods * kCodeSlots);
  route_slots_ = std::make_unique<RouteSlot[]>(pairs);
  errors_ = std::make_unique<SingleWriterCounter[]>(upstreams_ * max_endpoints_ * kKinds);
  in_flight_ = std::make_unique<std::atomic<int64_t>[]>(upstreams_);
  for (size_t i = 0; i < upstreams_; ++i) in_flight_[i].store(0, std::memory_order_relaxed);
}

void WorkerStats::RecordRequest(int upstream, int route, Method method, int status,
                                uint64_t duration_ns, uint64_t request_bytes,
                                uint64_t response_bytes) {
  size_t pair = static_cast<size_t>(upstream) * routes_ + route;
  codes_[(pair * kMethods + static_cast<int>(method)) * kCodeSlots + CodeIndex(status)].Add(1);
  RouteSlot& s = route_slots_[pair];
  s.count.Add(1);
  if (status >= 500) s.errors5xx.Add(1);
  s.sum_ns.Add(duration_ns);
  s.min_ns.SetMinNonZero(duration_ns == 0 ? 1 : duration_ns);
  s.max_ns.SetMax(duration_ns);
  s.request_bytes.Add(request_bytes);
  s.response_bytes.Add(response_bytes);
  double seconds = static_cast<double>(duration_ns) * 1e-9;
  size_t b = 0;
  while (b < kDurationBuckets.size() && seconds > kDurationBuckets[b]) ++b;
  s.buckets[b].Add(1);
  s.fine[FineBucket(duration_ns / 1000)].Add(1);
}

void WorkerStats::RecordUpstreamError(int upstream, int endpoint, UpstreamErrorKind kind) {
  errors_[(static_cast<size_t>(upstream) * max_endpoints_ + endpoint) * kKinds +
          static_cast<int>(kind)]
      .Add(1);
}

void WorkerStats::InFlightAdd(int upstream, int delta) {
  auto& g = in_flight_[upstream];
  g.store(g.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

const char* DownstreamTimeoutName(DownstreamTimeout t) {
  switch (t) {
    case DownstreamTimeout::kHeader:
      return "header";
    case DownstreamTimeout::kRequestBody:
      return "request_body";
    case DownstreamTimeout::kResponseRead:
      return "response_read";
    case DownstreamTimeout::kIdle:
      return "idle";
    case DownstreamTimeout::kCount:
      break;
  }
  return "unknown";
}

const char* AcceptPauseName(AcceptPause p) {
  switch (p) {
    case AcceptPause::kMaxConnections:
      return "max_connections";
    case AcceptPause::kFdLimit:
      return "fd_limit";
    case AcceptPause::kCount:
      break;
  }
  return "unknown";
}

RequestStatsCollector::RequestStatsCollector(StatsLayout layout,
                                             std::vector<const WorkerStats*> workers)
    : layout_(std::move(layout)), workers_(std::move(workers)) {}

std::vector<prometheus::MetricFamily> RequestStatsCollector::Collect() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  MetricFamily requests{"pokemon_speedrun_http_requests_total",
                        "Proxied HTTP requests by upstream, route, method and status code.",
                        MetricType::Counter,
                        {}};
  MetricFamily duration{"pokemon_speedrun_http_request_duration_seconds",
                        "Time from the first byte of a request to the last byte of its "
                        "response.",
                        MetricType::Histogram,
                        {}};
  MetricFamily req_bytes{"pokemon_speedrun_http_request_bytes_total",
                         "Request body bytes received from clients.",
                         MetricType::Counter,
                         {}};
  MetricFamily resp_bytes{"pokemon_speedrun_http_response_bytes_total",
                          "Response body bytes sent to clients.",
                          MetricType::Counter,
                          {}};
  MetricFamily in_flight{"pokemon_speedrun_http_requests_in_flight",
                         "Requests received and not yet answered in full.",
                         MetricType::Gauge,
                         {}};
  MetricFamily errors{"pokemon_speedrun_upstream_errors_total",
                      "Failures talking to an upstream endpoint, by kind.",
                      MetricType::Counter,
                      {}};

  const size_t routes = layout_.routes.size();
  for (size_t u = 0; u < layout_.upstreams.size(); ++u) {
    const std::string& up = layout_.upstreams[u];
    for (size_t r = 0; r < routes; ++r) {
      size_t pair = u * routes + r;
      uint64_t count = 0;
      for (const WorkerStats* w : workers_) count += w->route_slots_[pair].count.Get();
      if (count == 0) continue;
      for (int m = 0; m < kMethods; ++m) {
        for (int c = 0; c < kCodeSlots; ++c) {
          uint64_t n = 0;
          for (const WorkerStats* w : workers_) {
            n += w->codes_[(pair * kMethods + m) * kCodeSlots + c].Get();
          }
          if (n == 0) continue;
          ClientMetric cm;
          cm.label = {L("code", CodeLabel(c)), L("method", MethodName(static_cast<Method>(m))),
                      L("route", layout_.routes[r]), L("upstream", up)};
          cm.counter.value = static_cast<double>(n);
          requests.metric.push_back(std::move(cm));
        }
      }
      ClientMetric h;
      h.label = {L("route", layout_.routes[r]), L("upstream", up)};
      uint64_t sum_ns = 0, rq = 0, rs = 0, cumulative = 0;
      std::array<uint64_t, kDurationBuckets.size() + 1> buckets{};
      for (const WorkerStats* w : workers_) {
        const auto& s = w->route_slots_[pair];
        sum_ns += s.sum_ns.Get();
        rq += s.request_bytes.Get();
        rs += s.response_bytes.Get();
        for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += s.buckets[b].Get();
      }
      for (size_t b = 0; b < buckets.size(); ++b) {
        cumulative += buckets[b];
        ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound = b < kDurationBuckets.size() ? kDurationBuckets[b]
                                                         : std::numeric_limits<double>::infinity();
        h.histogram.bucket.push_back(bucket);
      }
      // The count is the +Inf bucket, so _count and _bucket{le="+Inf"} always agree.
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = static_cast<double>(sum_ns) * 1e-9;
      duration.metric.push_back(std::move(h));
      ClientMetric b1;
      b1.label = {L("route", layout_.routes[r]), L("upstream", up)};
      b1.counter.value = static_cast<double>(rq);
      req_bytes.metric.push_back(b1);
      b1.counter.value = static_cast<double>(rs);
      resp_bytes.metric.push_back(std::move(b1));
    }
    int64_t flying = 0;
    for (const WorkerStats* w : workers_)
      flying += w->in_flight_[u].load(std::memory_order_relaxed);
    ClientMetric g;
    g.label = {L("upstream", up)};
    g.gauge.value = static_cast<double>(flying);
    in_flight.metric.push_back(std::move(g));
    const auto& eps = layout_.endpoints[u];
    for (size_t e = 0; e < eps.size(); ++e) {
      for (int k = 0; k < kKinds; ++k) {
        uint64_t n = 0;
        for (const WorkerStats* w : workers_) {
          n += w->errors_[(u * w->max_endpoints_ + e) * kKinds + k].Get();
        }
        if (n == 0) continue;
        ClientMetric cm;
        cm.label = {L("endpoint", eps[e]),
                    L("kind", UpstreamErrorKindName(static_cast<UpstreamErrorKind>(k))),
                    L("upstream", up)};
        cm.counter.value = static_cast<double>(n);
        errors.metric.push_back(std::move(cm));
      }
    }
  }
  // Connection-level series: every label value is known, so each exists from the start.
  MetricFamily connections{"pokemon_speedrun_downstream_connections",
                           "Client connections open now, all workers.",
                           MetricType::Gauge,
                           {}};
  MetricFamily timeouts{"pokemon_speedrun_downstream_timeouts_total",
                        "Client connections cut by a timer, by reason.",
                        MetricType::Counter,
                        {}};
  MetricFamily pauses{"pokemon_speedrun_downstream_accept_pauses_total",
                      "Times a worker stopped accepting new connections, by reason.",
                      MetricType::Counter,
                      {}};
  int64_t open = 0;
  for (const WorkerStats* w : workers_) open += w->connections_.load(std::memory_order_relaxed);
  ClientMetric c;
  c.gauge.value = static_cast<double>(open);
  connections.metric.push_back(std::move(c));
  for (int t = 0; t < static_cast<int>(DownstreamTimeout::kCount); ++t) {
    uint64_t n = 0;
    for (const WorkerStats* w : workers_) n += w->timeouts_[t].Get();
    ClientMetric cm;
    cm.label = {L("reason", DownstreamTimeoutName(static_cast<DownstreamTimeout>(t)))};
    cm.counter.value = static_cast<double>(n);
    timeouts.metric.push_back(std::move(cm));
  }
  for (int p = 0; p < static_cast<int>(AcceptPause::kCount); ++p) {
    uint64_t n = 0;
    for (const WorkerStats* w : workers_) n += w->accept_pauses_[p].Get();
    ClientMetric cm;
    cm.label = {L("reason", AcceptPauseName(static_cast<AcceptPause>(p)))};
    cm.counter.value = static_cast<double>(n);
    pauses.metric.push_back(std::move(cm));
  }

  std::vector<MetricFamily> out;
  for (MetricFamily* f : {&requests, &duration, &req_bytes, &resp_bytes, &in_flight, &errors}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  out.push_back(std::move(connections));
  out.push_back(std::move(timeouts));
  out.push_back(std::move(pauses));
  return out;
}

std::vector<RouteSummary> RequestStatsCollector::Summaries() const {
  std::vector<RouteSummary> out;
  const size_t routes = layout_.routes.size();
  std::array<uint64_t, kFineBuckets> fine;
  for (size_t u = 0; u < layout_.upstreams.size(); ++u) {
    for (size_t r = 0; r < routes; ++r) {
      size_t pair = u * routes + r;
      RouteSummary s;
      s.upstream = layout_.upstreams[u];
      s.route = layout_.routes[r];
      uint64_t sum_ns = 0, min_ns = 0, max_ns = 0;
      fine.fill(0);
      for (const WorkerStats* w : workers_) {
        const auto& slot = w->route_slots_[pair];
        s.requests += slot.count.Get();
        s.errors5xx += slot.errors5xx.Get();
        s.request_bytes += slot.request_bytes.Get();
        s.response_bytes += slot.response_bytes.Get();
        sum_ns += slot.sum_ns.Get();
        uint64_t mn = slot.min_ns.Get();
        if (mn != 0 && (min_ns == 0 || mn < min_ns)) min_ns = mn;
        max_ns = std::max(max_ns, slot.max_ns.Get());
        for (int b = 0; b < kFineBuckets; ++b) fine[b] += slot.fine[b].Get();
      }
      if (s.requests == 0) continue;
      uint64_t total = 0;
      for (uint64_t n : fine) total += n;
      auto quantile_ms = [&](double q) {
        // The rank-th smallest sample (1-based, nearest rank), reported as its bucket's
        // midpoint and clamped to the exact min and max.
        uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
        rank = std::max<uint64_t>(rank, 1);
        uint64_t seen = 0;
        for (int b = 0; b < kFineBuckets; ++b) {
          seen += fine[b];
          if (seen >= rank) {
            // Clamped in integer nanoseconds so that min <= p50 <= ... <= max holds
            // exactly after the same division.
            uint64_t ns = std::clamp<uint64_t>(FineBucketMidpoint(b) * 1000, min_ns, max_ns);
            return static_cast<double>(ns) / 1e6;
          }
        }
        return static_cast<double>(max_ns) / 1e6;
      };
      s.min_ms = static_cast<double>(min_ns) / 1e6;
      s.max_ms = static_cast<double>(max_ns) / 1e6;
      s.avg_ms = static_cast<double>(sum_ns) / 1e6 / static_cast<double>(s.requests);
      s.p50_ms = quantile_ms(0.50);
      s.p95_ms = quantile_ms(0.95);
      s.p99_ms = quantile_ms(0.99);
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace speedmon::metrics
