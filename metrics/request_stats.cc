// Per-worker request statistics and their merge at scrape time. See request_stats.h.
#include "metrics/request_stats.h"

#include <prometheus/metric_family.h>

#include <sched.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <utility>

namespace speedmon::metrics {
namespace {

constexpr int kMethods = static_cast<int>(Method::kCount);
constexpr int kKinds = static_cast<int>(UpstreamErrorKind::kCount);
constexpr int kCells = kMethods * kCodeSlots;  // requests_total cells per (upstream, route)
static_assert(kCells <= 65536, "cell indices are kept as uint16_t");

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

// The families, in the order a scrape writes them.
struct FamilyDef {
  const char* name;
  const char* help;
  prometheus::MetricType type;
};
enum FamilyIndex {
  kRequests,
  kDuration,
  kRequestBytes,
  kResponseBytes,
  kInFlight,
  kErrors,
  kConnections,
  kTimeouts,
  kPauses,
  kFamilyCount
};
constexpr std::array<FamilyDef, kFamilyCount> kFamilies = {{
    {"pokemon_speedrun_http_requests_total",
     "Proxied HTTP requests by upstream, route, method and status code.",
     prometheus::MetricType::Counter},
    {"pokemon_speedrun_http_request_duration_seconds",
     "Time from the first byte of a request to the last byte of its response.",
     prometheus::MetricType::Histogram},
    {"pokemon_speedrun_http_request_bytes_total", "Request body bytes received from clients.",
     prometheus::MetricType::Counter},
    {"pokemon_speedrun_http_response_bytes_total", "Response body bytes sent to clients.",
     prometheus::MetricType::Counter},
    {"pokemon_speedrun_http_requests_in_flight", "Requests received and not yet answered in full.",
     prometheus::MetricType::Gauge},
    {"pokemon_speedrun_upstream_errors_total", "Failures talking to an upstream endpoint, by kind.",
     prometheus::MetricType::Counter},
    {"pokemon_speedrun_downstream_connections", "Client connections open now, all workers.",
     prometheus::MetricType::Gauge},
    {"pokemon_speedrun_downstream_timeouts_total", "Client connections cut by a timer, by reason.",
     prometheus::MetricType::Counter},
    {"pokemon_speedrun_downstream_accept_pauses_total",
     "Times a worker stopped accepting new connections, by reason.",
     prometheus::MetricType::Counter},
}};

prometheus::MetricFamily Family(FamilyIndex f) {
  return prometheus::MetricFamily{kFamilies[f].name, kFamilies[f].help, kFamilies[f].type, {}};
}

// Copies what `read` reads of a slot written under `seq` (see request_stats.h): again while
// the writer was halfway, yielding after a few tries, for at most kMaxReadWait. The bound
// is a time, not a count of tries: a writer preempted halfway on a busy machine stays
// stopped for a scheduler slice (milliseconds), which a thousand quick tries did not outlast.
template <typename Read>
void ReadConsistently(const std::atomic<uint64_t>& seq, Read read) {
  std::chrono::steady_clock::time_point give_up{};
  for (int attempt = 1;; ++attempt) {
    uint64_t before = seq.load(std::memory_order_acquire);
    read();
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((before & 1) == 0 && seq.load(std::memory_order_relaxed) == before) return;
    if (attempt > 3) sched_yield();  // the writer may have been preempted halfway
    if (attempt % 64 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (give_up == std::chrono::steady_clock::time_point{}) {
        give_up = now + RequestStatsCollector::kMaxReadWait;
      } else if (now >= give_up) {
        return;
      }
    }
  }
}

// Adds to `known` (kept in index order) every cell of `codes` counted but not in it yet;
// false when there was none.
bool LearnCells(const SingleWriterCounter* codes, std::vector<uint16_t>* known) {
  std::array<bool, kCells> seen{};
  for (uint16_t k : *known) seen[k] = true;
  bool learned = false;
  for (int c = 0; c < kCells; ++c) {
    if (!seen[c] && codes[c].Get() != 0) {
      seen[c] = true;
      learned = true;
    }
  }
  if (!learned) return false;
  known->clear();
  for (int c = 0; c < kCells; ++c) {
    if (seen[c]) known->push_back(static_cast<uint16_t>(c));
  }
  return true;
}

// name + {label="escaped value"} + ' ', as Serialize writes a sample's head.
std::string SeriesHead(std::string_view name,
                       std::initializer_list<std::pair<const char*, std::string_view>> labels) {
  TextBuffer out;
  out.Append(name);
  out.Append('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out.Append(',');
    first = false;
    out.Append(k);
    out.Append("=\"");
    AppendEscaped(v, true, &out);
    out.Append('"');
  }
  out.Append("} ");
  return std::string(out.view());
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
  RouteSlot& s = route_slots_[pair];
  // Odd from here to the end: a reader retries rather than see half of this request.
  const uint64_t seq = s.seq.load(std::memory_order_relaxed);
  s.seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  codes_[(pair * kMethods + static_cast<int>(method)) * kCodeSlots + CodeIndex(status)].Add(1);
  s.count.Add(1);
  if (IsSuccess(status)) s.successes.Add(1);
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
  s.seq.store(seq + 2, std::memory_order_release);
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

namespace {
// Index of each of `names` in `in`, -1 where absent.
std::vector<int32_t> IndexIn(const std::vector<std::string>& names,
                             const std::vector<std::string>& in) {
  std::vector<int32_t> out;
  for (const std::string& n : names) {
    auto it = std::find(in.begin(), in.end(), n);
    out.push_back(it == in.end() ? -1 : static_cast<int32_t>(it - in.begin()));
  }
  return out;
}
}  // namespace

RequestStatsCollector::MappedShard RequestStatsCollector::Map(const WorkerStats* stats,
                                                              const StatsLayout& from,
                                                              const StatsLayout& to) {
  MappedShard m;
  m.w = stats;
  m.upstream = IndexIn(to.upstreams, from.upstreams);
  std::vector<int32_t> route = IndexIn(to.routes, from.routes);
  const size_t from_routes = from.routes.size();
  for (size_t u = 0; u < to.upstreams.size(); ++u) {
    const int32_t fu = m.upstream[u];
    for (size_t r = 0; r < to.routes.size(); ++r) {
      m.pair.push_back(fu < 0 || route[r] < 0
                           ? -1
                           : static_cast<int32_t>(static_cast<size_t>(fu) * from_routes +
                                                  static_cast<size_t>(route[r])));
    }
    m.endpoint.push_back(fu < 0 ? std::vector<int32_t>(to.endpoints[u].size(), -1)
                                : IndexIn(to.endpoints[u], from.endpoints[fu]));
  }
  return m;
}

RequestStatsCollector::RequestStatsCollector(StatsLayout layout,
                                             std::vector<const WorkerStats*> workers)
    : RequestStatsCollector(
          [&] {
            std::vector<Shard> shards;
            auto same = std::make_shared<const StatsLayout>(layout);
            for (const WorkerStats* w : workers) shards.push_back(Shard{w, same});
            return shards;
          }(),
          layout) {}

void RequestStatsCollector::Fold(const WorkerStats& src, const StatsLayout& from, WorkerStats* dst,
                                 const StatsLayout& to) {
  const MappedShard m = Map(&src, from, to);
  for (size_t p = 0; p < m.pair.size(); ++p) {
    const int32_t sp = m.pair[p];
    if (sp < 0) continue;
    const WorkerStats::RouteSlot& a = src.route_slots_[sp];
    WorkerStats::RouteSlot& b = dst->route_slots_[p];
    b.count.Add(a.count.Get());
    b.successes.Add(a.successes.Get());
    b.errors5xx.Add(a.errors5xx.Get());
    b.sum_ns.Add(a.sum_ns.Get());
    if (a.min_ns.Get() != 0) b.min_ns.SetMinNonZero(a.min_ns.Get());
    b.max_ns.SetMax(a.max_ns.Get());
    b.request_bytes.Add(a.request_bytes.Get());
    b.response_bytes.Add(a.response_bytes.Get());
    for (size_t i = 0; i < a.buckets.size(); ++i) b.buckets[i].Add(a.buckets[i].Get());
    for (size_t i = 0; i < a.fine.size(); ++i) b.fine[i].Add(a.fine[i].Get());
    for (int c = 0; c < kCells; ++c) {
      dst->codes_[p * kCells + c].Add(src.codes_[static_cast<size_t>(sp) * kCells + c].Get());
    }
  }
  for (size_t u = 0; u < m.upstream.size(); ++u) {
    const int32_t su = m.upstream[u];
    if (su < 0) continue;
    for (size_t e = 0; e < m.endpoint[u].size(); ++e) {
      const int32_t se = m.endpoint[u][e];
      if (se < 0) continue;
      for (int k = 0; k < kKinds; ++k) {
        dst->errors_[(u * dst->max_endpoints_ + e) * kKinds + k].Add(
            src.errors_[(static_cast<size_t>(su) * src.max_endpoints_ + se) * kKinds + k].Get());
      }
    }
  }
  for (size_t t = 0; t < src.timeouts_.size(); ++t) dst->timeouts_[t].Add(src.timeouts_[t].Get());
  for (size_t p = 0; p < src.accept_pauses_.size(); ++p) {
    dst->accept_pauses_[p].Add(src.accept_pauses_[p].Get());
  }
}

RequestStatsCollector::RequestStatsCollector(std::vector<Shard> shards, StatsLayout layout)
    : layout_(std::move(layout)) {
  for (const Shard& shard : shards) shards_.push_back(Map(shard.stats, *shard.layout, layout_));
  static_assert(std::tuple_size_v<decltype(headers_)> == kFamilyCount);
  const size_t routes = layout_.routes.size();
  const size_t pairs = layout_.upstreams.size() * routes;
  pair_labels_.reserve(pairs);
  for (size_t u = 0; u < layout_.upstreams.size(); ++u) {
    const std::string& up = layout_.upstreams[u];
    upstream_labels_.push_back(SeriesHead("", {{"upstream", up}}));
    for (const std::string& route : layout_.routes) {
      pair_labels_.push_back(SeriesHead("", {{"route", route}, {"upstream", up}}));
    }
    // {endpoint="e",kind=" + the kind + ",upstream="u"}<space>
    std::string tail = SeriesHead("", {{"kind", ""}, {"upstream", up}});
    error_tails_.push_back(tail.substr(std::string_view("{kind=\"").size()));
    endpoint_labels_.emplace_back();
    for (const std::string& endpoint : layout_.endpoints[u]) {
      std::string head = SeriesHead("", {{"endpoint", endpoint}, {"kind", ""}});
      head.resize(head.size() - std::string_view("\"} ").size());
      endpoint_labels_.back().push_back(std::move(head));
    }
  }
  for (int t = 0; t < static_cast<int>(DownstreamTimeout::kCount); ++t) {
    timeout_heads_.push_back(
        SeriesHead(kFamilies[kTimeouts].name,
                   {{"reason", DownstreamTimeoutName(static_cast<DownstreamTimeout>(t))}}));
  }
  for (int p = 0; p < static_cast<int>(AcceptPause::kCount); ++p) {
    pause_heads_.push_back(SeriesHead(kFamilies[kPauses].name,
                                      {{"reason", AcceptPauseName(static_cast<AcceptPause>(p))}}));
  }
  // Cell prefixes end before the route label: name{code="200",method="GET",
  cell_prefix_.reserve(kCells);
  for (int m = 0; m < kMethods; ++m) {
    for (int c = 0; c < kCodeSlots; ++c) {
      std::string head = SeriesHead(
          kFamilies[kRequests].name,
          {{"code", CodeLabel(c)}, {"method", MethodName(static_cast<Method>(m))}, {"route", ""}});
      head.resize(head.size() - std::string_view("route=\"\"} ").size());
      max_cell_prefix_ = std::max(max_cell_prefix_, head.size());
      cell_prefix_.push_back(std::move(head));
    }
  }
  for (size_t b = 0; b < le_labels_.size(); ++b) {
    char num[kMaxNumberChars];
    double bound =
        b < kDurationBuckets.size() ? kDurationBuckets[b] : std::numeric_limits<double>::infinity();
    le_labels_[b] = ",le=\"" + std::string(num, WriteNumber(bound, num)) + "\"} ";
  }
  for (int f = 0; f < kFamilyCount; ++f) {
    for (Format format : {Format::kText004, Format::kOpenMetrics}) {
      TextBuffer header;
      AppendFamilyHeader(kFamilies[f].name, kFamilies[f].help, kFamilies[f].type, format, &header);
      headers_[f][format == Format::kOpenMetrics] = header.view();
    }
  }
  known_cells_.resize(pairs);
  snap_.resize(pairs);
}

uint64_t RequestStatsCollector::UpstreamErrors(size_t u, size_t e, int k) const {
  uint64_t n = 0;
  for (const MappedShard& m : shards_) {
    const int32_t su = m.upstream[u], se = su < 0 ? -1 : m.endpoint[u][e];
    if (se < 0) continue;
    n += m.w->errors_[(static_cast<size_t>(su) * m.w->max_endpoints_ + se) * kKinds + k].Get();
  }
  return n;
}

void RequestStatsCollector::Snapshot() const {
  cells_.clear();
  std::array<uint64_t, kCells> sum{};  // per cell over the shards; zero between pairs
  std::array<uint64_t, kCells> mine;   // one shard's cells
  const size_t pairs = snap_.size();
  for (size_t pair = 0; pair < pairs; ++pair) {
    PairSnapshot& p = snap_[pair];
    p = PairSnapshot{};
    std::vector<uint16_t>& known = known_cells_[pair];
    for (const MappedShard& m : shards_) {
      const int32_t at = m.pair[pair];
      if (at < 0) continue;  // a shard of a layout without this (upstream, route)
      const WorkerStats* w = m.w;
      const WorkerStats::RouteSlot& slot = w->route_slots_[at];
      const SingleWriterCounter* codes = &w->codes_[static_cast<size_t>(at) * kCells];
      PairSnapshot one;
      // Each request counts in exactly one (method, code) cell, so when the cells known to
      // be counted add up to the count, every other cell is still 0 and need not be read:
      // the consistent read stays a few loads long, which keeps it short enough to finish
      // between two requests of a busy worker. When they do not add up, a cell was
      // counted for the first time: a plain scan finds it (counters only grow, so what a
      // consistent read missed is there to see), it joins the known ones, and the read is
      // done again. A read that never came out consistent (kMaxReadWait) is taken as is.
      for (;;) {
        bool complete = true;
        ReadConsistently(slot.seq, [&] {
          one.count = slot.count.Get();
          if (one.count == 0) return;  // nothing else counted either
          one.sum_ns = slot.sum_ns.Get();
          one.request_bytes = slot.request_bytes.Get();
          one.response_bytes = slot.response_bytes.Get();
          for (size_t b = 0; b < one.buckets.size(); ++b) one.buckets[b] = slot.buckets[b].Get();
          uint64_t total = 0;
          for (size_t k = 0; k < known.size(); ++k) {
            mine[k] = codes[known[k]].Get();
            total += mine[k];
          }
          complete = total == one.count;
        });
        if (complete || one.count == 0 || !LearnCells(codes, &known)) break;
      }
      if (one.count == 0) continue;
      p.count += one.count;
      p.sum_ns += one.sum_ns;
      p.request_bytes += one.request_bytes;
      p.response_bytes += one.response_bytes;
      for (size_t b = 0; b < p.buckets.size(); ++b) p.buckets[b] += one.buckets[b];
      for (size_t k = 0; k < known.size(); ++k) sum[known[k]] += mine[k];
    }
    p.cells_begin = static_cast<uint32_t>(cells_.size());
    for (uint16_t k : known) {
      if (sum[k] != 0) cells_.push_back(Cell{k, sum[k]});
      sum[k] = 0;
    }
    p.cells_end = static_cast<uint32_t>(cells_.size());
  }
}

void RequestStatsCollector::AppendText(Format format, TextBuffer* out) const {
  Snapshot();
  const int om = format == Format::kOpenMetrics ? 1 : 0;
  const size_t pairs = snap_.size();
  constexpr size_t kValue = kMaxNumberChars + 1;  // a value and '\n'
  const std::string_view bucket_name = "pokemon_speedrun_http_request_duration_seconds_bucket";
  const std::string_view sum_name = "pokemon_speedrun_http_request_duration_seconds_sum";
  const std::string_view count_name = "pokemon_speedrun_http_request_duration_seconds_count";

  if (!cells_.empty()) {
    out->Append(headers_[kRequests][om]);
    for (size_t pair = 0; pair < pairs; ++pair) {
      const PairSnapshot& s = snap_[pair];
      if (s.cells_begin == s.cells_end) continue;
      // The prefix ends after method="m", and the pair's labels start with '{'.
      std::string_view labels = std::string_view(pair_labels_[pair]).substr(1);
      char* p =
          out->Reserve((s.cells_end - s.cells_begin) * (max_cell_prefix_ + labels.size() + kValue));
      for (uint32_t i = s.cells_begin; i < s.cells_end; ++i) {
        p = Put(p, cell_prefix_[cells_[i].index]);
        p = Put(p, labels);
        p = WriteCount(cells_[i].n, p);
        *p++ = '\n';
      }
      out->Commit(p);
    }
  }

  // Every (upstream, route) pair is known from the config, so its histogram and byte
  // counters exist from the start at 0: an increase() over the first requests is seen.
  if (pairs > 0) {
    out->Append(headers_[kDuration][om]);
    for (size_t pair = 0; pair < pairs; ++pair) {
      const PairSnapshot& s = snap_[pair];
      std::string_view labels = pair_labels_[pair];  // {route="r",upstream="u"}<space>
      std::string_view open = labels.substr(0, labels.size() - 2);
      char* p = out->Reserve(s.buckets.size() * (bucket_name.size() + open.size() + 24 + kValue) +
                             2 * (count_name.size() + labels.size() + kValue));
      uint64_t cumulative = 0;
      for (size_t b = 0; b < s.buckets.size(); ++b) {
        cumulative += s.buckets[b];
        p = Put(p, bucket_name);
        p = Put(p, open);
        p = Put(p, le_labels_[b]);
        p = WriteCount(cumulative, p);
        *p++ = '\n';
      }
      // The count is the +Inf bucket, so _count and _bucket{le="+Inf"} always agree.
      p = Put(p, sum_name);
      p = Put(p, labels);
      p = WriteSeconds(s.sum_ns, p);
      *p++ = '\n';
      p = Put(p, count_name);
      p = Put(p, labels);
      p = WriteCount(cumulative, p);
      *p++ = '\n';
      out->Commit(p);
    }
    for (FamilyIndex f : {kRequestBytes, kResponseBytes}) {
      out->Append(headers_[f][om]);
      std::string_view name = kFamilies[f].name;
      for (size_t pair = 0; pair < pairs; ++pair) {
        const PairSnapshot& s = snap_[pair];
        char* p = out->Reserve(name.size() + pair_labels_[pair].size() + kValue);
        p = Put(p, name);
        p = Put(p, pair_labels_[pair]);
        p = WriteCount(f == kRequestBytes ? s.request_bytes : s.response_bytes, p);
        *p++ = '\n';
        out->Commit(p);
      }
    }
  }

  const size_t upstreams = layout_.upstreams.size();
  if (upstreams > 0) {
    out->Append(headers_[kInFlight][om]);
    std::string_view name = kFamilies[kInFlight].name;
    for (size_t u = 0; u < upstreams; ++u) {
      int64_t flying = 0;
      for (const MappedShard& m : shards_) {
        if (m.upstream[u] >= 0)
          flying += m.w->in_flight_[m.upstream[u]].load(std::memory_order_relaxed);
      }
      char* p = out->Reserve(name.size() + upstream_labels_[u].size() + kValue);
      p = Put(p, name);
      p = Put(p, upstream_labels_[u]);
      p = WriteNumber(static_cast<double>(flying), p);
      *p++ = '\n';
      out->Commit(p);
    }
  }

  // Upstream errors: every upstream x endpoint x kind from the start at 0.
  const std::string_view error_name = kFamilies[kErrors].name;
  bool any_endpoint = false;
  for (size_t u = 0; u < upstreams; ++u) any_endpoint |= !layout_.endpoints[u].empty();
  if (any_endpoint) out->Append(headers_[kErrors][om]);
  for (size_t u = 0; u < upstreams; ++u) {
    const size_t endpoints = layout_.endpoints[u].size();
    for (size_t e = 0; e < endpoints; ++e) {
      for (int k = 0; k < kKinds; ++k) {
        const uint64_t n = UpstreamErrors(u, e, k);
        std::string_view endpoint = endpoint_labels_[u][e];
        std::string_view kind = UpstreamErrorKindName(static_cast<UpstreamErrorKind>(k));
        std::string_view tail = error_tails_[u];
        char* p =
            out->Reserve(error_name.size() + endpoint.size() + kind.size() + tail.size() + kValue);
        p = Put(p, error_name);
        p = Put(p, endpoint);
        p = Put(p, kind);
        p = Put(p, tail);
        p = WriteCount(n, p);
        *p++ = '\n';
        out->Commit(p);
      }
    }
  }

  // Connection-level series: every label value is known, so each exists from the start.
  int64_t open = 0;
  for (const MappedShard& m : shards_) open += m.w->connections_.load(std::memory_order_relaxed);
  out->Append(headers_[kConnections][om]);
  {
    std::string_view name = kFamilies[kConnections].name;
    char* p = out->Reserve(name.size() + 1 + kValue);
    p = Put(p, name);
    *p++ = ' ';
    p = WriteNumber(static_cast<double>(open), p);
    *p++ = '\n';
    out->Commit(p);
  }
  auto reasons = [&](FamilyIndex f, const std::vector<std::string>& heads, auto value_of) {
    out->Append(headers_[f][om]);
    for (size_t i = 0; i < heads.size(); ++i) {
      char* p = out->Reserve(heads[i].size() + kValue);
      p = Put(p, heads[i]);
      p = WriteCount(value_of(i), p);
      *p++ = '\n';
      out->Commit(p);
    }
  };
  reasons(kTimeouts, timeout_heads_, [&](size_t t) {
    uint64_t n = 0;
    for (const MappedShard& m : shards_) n += m.w->timeouts_[t].Get();
    return n;
  });
  reasons(kPauses, pause_heads_, [&](size_t p) {
    uint64_t n = 0;
    for (const MappedShard& m : shards_) n += m.w->accept_pauses_[p].Get();
    return n;
  });
}

std::vector<prometheus::MetricFamily> RequestStatsCollector::Collect() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  Snapshot();
  MetricFamily requests = Family(kRequests);
  MetricFamily duration = Family(kDuration);
  MetricFamily req_bytes = Family(kRequestBytes);
  MetricFamily resp_bytes = Family(kResponseBytes);
  MetricFamily in_flight = Family(kInFlight);
  MetricFamily errors = Family(kErrors);

  const size_t routes = layout_.routes.size();
  for (size_t u = 0; u < layout_.upstreams.size(); ++u) {
    const std::string& up = layout_.upstreams[u];
    for (size_t r = 0; r < routes; ++r) {
      const PairSnapshot& s = snap_[u * routes + r];
      for (uint32_t i = s.cells_begin; i < s.cells_end; ++i) {
        const int m = static_cast<int>(cells_[i].index) / kCodeSlots;
        const int c = static_cast<int>(cells_[i].index) % kCodeSlots;
        ClientMetric cm;
        cm.label = {L("code", CodeLabel(c)), L("method", MethodName(static_cast<Method>(m))),
                    L("route", layout_.routes[r]), L("upstream", up)};
        cm.counter.value = static_cast<double>(cells_[i].n);
        requests.metric.push_back(std::move(cm));
      }
      ClientMetric h;
      h.label = {L("route", layout_.routes[r]), L("upstream", up)};
      uint64_t cumulative = 0;
      for (size_t b = 0; b < s.buckets.size(); ++b) {
        cumulative += s.buckets[b];
        ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound = b < kDurationBuckets.size() ? kDurationBuckets[b]
                                                         : std::numeric_limits<double>::infinity();
        h.histogram.bucket.push_back(bucket);
      }
      // The count is the +Inf bucket, so _count and _bucket{le="+Inf"} always agree.
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = static_cast<double>(s.sum_ns) / 1e9;  // as WriteSeconds
      duration.metric.push_back(std::move(h));
      ClientMetric b1;
      b1.label = {L("route", layout_.routes[r]), L("upstream", up)};
      b1.counter.value = static_cast<double>(s.request_bytes);
      req_bytes.metric.push_back(b1);
      b1.counter.value = static_cast<double>(s.response_bytes);
      resp_bytes.metric.push_back(std::move(b1));
    }
    int64_t flying = 0;
    for (const MappedShard& m : shards_) {
      if (m.upstream[u] >= 0)
        flying += m.w->in_flight_[m.upstream[u]].load(std::memory_order_relaxed);
    }
    ClientMetric g;
    g.label = {L("upstream", up)};
    g.gauge.value = static_cast<double>(flying);
    in_flight.metric.push_back(std::move(g));
    const auto& eps = layout_.endpoints[u];
    for (size_t e = 0; e < eps.size(); ++e) {
      for (int k = 0; k < kKinds; ++k) {
        const uint64_t n = UpstreamErrors(u, e, k);
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
  MetricFamily connections = Family(kConnections);
  MetricFamily timeouts = Family(kTimeouts);
  MetricFamily pauses = Family(kPauses);
  int64_t open = 0;
  for (const MappedShard& m : shards_) open += m.w->connections_.load(std::memory_order_relaxed);
  ClientMetric c;
  c.gauge.value = static_cast<double>(open);
  connections.metric.push_back(std::move(c));
  for (int t = 0; t < static_cast<int>(DownstreamTimeout::kCount); ++t) {
    uint64_t n = 0;
    for (const MappedShard& m : shards_) n += m.w->timeouts_[t].Get();
    ClientMetric cm;
    cm.label = {L("reason", DownstreamTimeoutName(static_cast<DownstreamTimeout>(t)))};
    cm.counter.value = static_cast<double>(n);
    timeouts.metric.push_back(std::move(cm));
  }
  for (int p = 0; p < static_cast<int>(AcceptPause::kCount); ++p) {
    uint64_t n = 0;
    for (const MappedShard& m : shards_) n += m.w->accept_pauses_[p].Get();
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

void RequestStatsCollector::ReadPair(size_t pair, PairCounts* out) const {
  std::array<uint64_t, kFineBuckets> mine;
  for (const MappedShard& m : shards_) {
    if (m.pair[pair] < 0) continue;
    const auto& slot = m.w->route_slots_[m.pair[pair]];
    uint64_t count = 0, successes = 0, errors5xx = 0, rq = 0, rs = 0, sum = 0, mn = 0, mx = 0;
    ReadConsistently(slot.seq, [&] {
      count = slot.count.Get();
      if (count == 0) return;
      successes = slot.successes.Get();
      errors5xx = slot.errors5xx.Get();
      rq = slot.request_bytes.Get();
      rs = slot.response_bytes.Get();
      sum = slot.sum_ns.Get();
      mn = slot.min_ns.Get();
      mx = slot.max_ns.Get();
      for (int b = 0; b < kFineBuckets; ++b) mine[b] = slot.fine[b].Get();
    });
    if (count == 0) continue;
    out->requests += count;
    out->successes += successes;
    out->errors5xx += errors5xx;
    out->request_bytes += rq;
    out->response_bytes += rs;
    out->sum_ns += sum;
    if (mn != 0 && (out->min_ns == 0 || mn < out->min_ns)) out->min_ns = mn;
    out->max_ns = std::max(out->max_ns, mx);
    for (int b = 0; b < kFineBuckets; ++b) out->fine[b] += mine[b];
  }
}

std::vector<RouteSummary> RequestStatsCollector::Summaries() const {
  std::vector<RouteSummary> out;
  const size_t routes = layout_.routes.size();
  for (size_t u = 0; u < layout_.upstreams.size(); ++u) {
    for (size_t r = 0; r < routes; ++r) {
      PairCounts c;
      ReadPair(u * routes + r, &c);
      RouteSummary s;
      s.upstream = layout_.upstreams[u];
      s.route = layout_.routes[r];
      s.requests = c.requests;
      s.successes = c.successes;
      s.errors5xx = c.errors5xx;
      s.request_bytes = c.request_bytes;
      s.response_bytes = c.response_bytes;
      const uint64_t sum_ns = c.sum_ns, min_ns = c.min_ns, max_ns = c.max_ns;
      const auto& fine = c.fine;
      if (s.requests == 0) continue;
      uint64_t total = 0;
      for (uint64_t n : fine) total += n;
      auto quantile_ms = [&](double q) {
        // The rank-th smallest sample (1-based, nearest rank), reported as its bucket's
        // midpoint and clamped to the exact min and max: in integer nanoseconds, so that
        // min <= p50 <= ... <= max holds exactly after the same division.
        int b = FineQuantileBucket(fine, total, q);
        uint64_t ns = std::clamp<uint64_t>(FineBucketMidpoint(b) * 1000, min_ns, max_ns);
        return static_cast<double>(ns) / 1e6;
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

int FineQuantileBucket(const std::array<uint64_t, kFineBuckets>& fine, uint64_t total, double q) {
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int b = 0; b < kFineBuckets; ++b) {
    seen += fine[b];
    if (seen >= rank) return b;
  }
  return kFineBuckets - 1;
}

std::vector<UpstreamTotals> RequestStatsCollector::Totals() const {
  const size_t routes = layout_.routes.size();
  std::vector<UpstreamTotals> out(layout_.upstreams.size());
  for (size_t u = 0; u < out.size(); ++u) {
    UpstreamTotals& t = out[u];
    for (size_t r = 0; r < routes; ++r) {
      PairCounts c;
      ReadPair(u * routes + r, &c);
      t.requests += c.requests;
      t.successes += c.successes;
      t.errors5xx += c.errors5xx;
      for (int b = 0; b < kFineBuckets; ++b) t.fine[b] += c.fine[b];
    }
  }
  return out;
}

}  // namespace speedmon::metrics
