// Per-worker request statistics: preallocated slots, plain single-writer increments on the
// request path, merged at scrape time into Prometheus text (AppendText) or metric families
// (Collect).
//
// Threads: each WorkerStats is written by exactly one worker thread (Record*, InFlight*)
// and read by the main thread (AppendText, Collect, Summaries) at any time. Every field is
// a relaxed atomic: the writer does load+store (a plain mov on x86, no lock prefix), readers
// see each value whole.
//
// Consistency: RecordRequest writes everything one request touches in its (upstream,
// route) slot (the count by method and code, the count, the histogram, sum, min, max and
// bytes) between two stores of the slot's sequence number, which is odd meanwhile (a
// seqlock with one writer; on x86 the two extra stores and fences are plain movs). A
// reader copies the slot and retries when the number was odd or moved, so a scrape shows
// a request in every request family of its shard (requests_total, the duration histogram,
// request and response bytes) or in none, and the sum of requests_total over method and
// code equals the histogram's _count for each (upstream, route). The reader never waits
// for long: it yields after a few tries and, should a writer stay stopped halfway for
// longer than kMaxReadWait (far longer than a preempted thread waits for a core), takes
// its last copy, each value still whole.
// Upstream errors, in-flight and connection counters are separate events, read one value
// at a time.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/text_format.h"

namespace speedmon::metrics {

// A counter written by one thread and read by others.
class SingleWriterCounter {
 public:
  void Add(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }
  void SetMax(uint64_t n) {
    if (n > v_.load(std::memory_order_relaxed)) v_.store(n, std::memory_order_relaxed);
  }
  // For minimums: 0 means "no value yet".
  void SetMinNonZero(uint64_t n) {
    uint64_t cur = v_.load(std::memory_order_relaxed);
    if (cur == 0 || n < cur) v_.store(n, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> v_{0};
};

// Methods with their own label value; anything else is "other".
enum class Method : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kPatch,
  kOptions,
  kConnect,
  kTrace,
  kOther,
  kCount
};
Method MethodFromString(std::string_view m);
const char* MethodName(Method m);

// Status codes are folded into a small index: common codes keep their exact value, any
// other code counts under its class ("2xx", ...), so label values stay bounded.
int CodeIndex(int status);
std::string CodeLabel(int code_index);
constexpr int kCodeSlots = 37;

// An HTTP exchange succeeded when it was answered 2xx or 3xx (a 404 is not a success),
// everywhere speedmon reports a success rate; the recording rules count the same codes.
constexpr bool IsSuccess(int status) { return status >= 200 && status < 400; }

enum class UpstreamErrorKind : uint8_t { kConnect, kTimeout, kReset, kBadResponse, kCount };
const char* UpstreamErrorKindName(UpstreamErrorKind k);

// Why speedmon cut a client connection on a timer (pokemon_speedrun_downstream_timeouts_total).
enum class DownstreamTimeout : uint8_t {
  kHeader,        // the request head did not arrive within header_timeout (408)
  kRequestBody,   // the client sent no request body bytes for idle_timeout
  kResponseRead,  // the client read none of the response for idle_timeout
  kIdle,          // a keep-alive connection stayed idle for idle_timeout
  kCount
};
const char* DownstreamTimeoutName(DownstreamTimeout t);

// Why a worker stopped accepting for a while (pokemon_speedrun_downstream_accept_pauses_total).
enum class AcceptPause : uint8_t {
  kMaxConnections,  // [proxy] max_connections (or the file-descriptor budget) reached
  kFdLimit,         // accept() failed with EMFILE/ENFILE/ENOBUFS/ENOMEM
  kCount
};
const char* AcceptPauseName(AcceptPause p);

// The fixed shape of the slots, decided once from the config.
struct StatsLayout {
  std::vector<std::string> upstreams;
  std::vector<std::vector<std::string>> endpoints;  // per upstream, "host:port"
  std::vector<std::string> routes;                  // the last one is "other"

  int other_route() const { return static_cast<int>(routes.size()) - 1; }
};

// Latency histogram buckets exposed to Prometheus (seconds), +Inf implied.
inline constexpr std::array<double, 15> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// Fine log-linear buckets (8 per power of two, in microseconds) behind the percentiles of
// /api/v1/upstreams: within 6.25 % of the true value, whatever the spread.
constexpr int kFineBuckets = 16 + 27 * 8;
int FineBucket(uint64_t micros);
uint64_t FineBucketMidpoint(int bucket);

// One worker's stats. Allocated once; never resized.
class WorkerStats {
 public:
  explicit WorkerStats(const StatsLayout& layout);

  // One completed (or failed) exchange. duration in nanoseconds; bytes are body bytes.
  void RecordRequest(int upstream, int route, Method method, int status, uint64_t duration_ns,
                     uint64_t request_bytes, uint64_t response_bytes);
  void RecordUpstreamError(int upstream, int endpoint, UpstreamErrorKind kind);
  void InFlightAdd(int upstream, int delta);
  void RecordTimeout(DownstreamTimeout t) { timeouts_[static_cast<int>(t)].Add(1); }
  void RecordAcceptPause(AcceptPause p) { accept_pauses_[static_cast<int>(p)].Add(1); }
  void ConnectionsAdd(int delta) {
    connections_.store(connections_.load(std::memory_order_relaxed) + delta,
                       std::memory_order_relaxed);
  }

 private:
  friend class RequestStatsCollector;
  friend class WorkerStatsPeer;  // scrape_test.cc: a write stopped halfway
  struct RouteSlot {
    // Odd while RecordRequest writes this slot and its cells of codes_ (see the top).
    std::atomic<uint64_t> seq{0};
    SingleWriterCounter count, successes, errors5xx, sum_ns, min_ns, max_ns, request_bytes,
        response_bytes;
    std::array<SingleWriterCounter, kDurationBuckets.size() + 1> buckets;
    std::array<SingleWriterCounter, kFineBuckets> fine;
  };
  int routes_;
  int max_endpoints_;
  std::unique_ptr<SingleWriterCounter[]> codes_;       // [upstream][route][method][code]
  std::unique_ptr<RouteSlot[]> route_slots_;           // [upstream][route]
  std::unique_ptr<SingleWriterCounter[]> errors_;      // [upstream][endpoint][kind]
  std::unique_ptr<std::atomic<int64_t>[]> in_flight_;  // [upstream]
  std::array<SingleWriterCounter, static_cast<int>(DownstreamTimeout::kCount)> timeouts_;
  std::array<SingleWriterCounter, static_cast<int>(AcceptPause::kCount)> accept_pauses_;
  std::atomic<int64_t> connections_{0};
  size_t upstreams_;
};

// Latency summary of one (upstream, route) merged over workers, for the JSON API.
struct RouteSummary {
  std::string upstream, route;
  uint64_t requests = 0, errors5xx = 0, request_bytes = 0, response_bytes = 0;
  uint64_t successes = 0;  // answered 2xx or 3xx, the one meaning of success
  // successes * 100 / requests; 0 without requests.
  double success_percent() const {
    return requests == 0 ? 0.0
                         : static_cast<double>(successes * 100) / static_cast<double>(requests);
  }
  double min_ms = 0, avg_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

// One upstream's counts since start, summed over its routes and the workers: the status
// page's charts (metrics/timeseries.h) take the difference of two of these.
struct UpstreamTotals {
  uint64_t requests = 0;
  uint64_t successes = 0;  // answered 2xx or 3xx (IsSuccess)
  uint64_t errors5xx = 0;
  std::array<uint64_t, kFineBuckets> fine{};  // durations, FineBucket()
};

// The bucket holding the nearest-rank q-quantile (rank ceil(q * total), at least 1) of a
// fine histogram whose counts add up to `total` > 0.
int FineQuantileBucket(const std::array<uint64_t, kFineBuckets>& fine, uint64_t total, double q);

// Merges the shards of all workers. AppendText writes GET /metrics' request families
// (metrics/scrape.h); Collect() is the prometheus-cpp hook (the alert evaluator's values);
// Summaries() serves /api/v1/upstreams. All three run on the main thread only: the first
// two share the scratch state below.
//
// AppendText is hand-written beside prometheus-cpp's MetricFamily path because these
// families are nearly all of a scrape (100 upstreams x 8 routes: 19,000 of 19,301 series) and
// the MetricFamily path paid, per series, a ClientMetric with its own label vector and
// label strings, then a second pass to escape and print them. AppendText keeps the text
// of every label set, escaped, from construction (per (upstream, route): route and
// upstream; per (method, code): the name and those two labels; per bucket: le), reads
// only the cells that ever counted, and writes into a TextBuffer with one capacity check
// per (upstream, route). Measured on the request families of 100 upstreams x 8 routes
// with every cell filled (bench/metrics_bench.cc, callgrind): 50.8 M instructions and
// 10,214 allocations per plain scrape through MetricFamily, 3.0 M and 1 (the returned
// body) through AppendText; the default layout 2.75 M -> 0.27 M. Details:
// docs/BENCHMARKS.md, "Scrape path micro-benchmarks".
class RequestStatsCollector : public prometheus::Collectable {
 public:
  // A shard and the layout it was built with. After a reload changed the layout, the
  // shards of the old one keep counting under the new: each series sums the shards
  // whose layout has its labels (matched by name), so a counter of an upstream and
  // route that stayed never goes back; labels the new layout dropped are not shown.
  struct Shard {
    Shard(const WorkerStats* s, std::shared_ptr<const StatsLayout> l)
        : stats(s), layout(std::move(l)) {}
    const WorkerStats* stats;
    std::shared_ptr<const StatsLayout> layout;
  };
  RequestStatsCollector(std::vector<Shard> shards, StatsLayout layout);
  // Every shard built with `layout`.
  RequestStatsCollector(StatsLayout layout, std::vector<const WorkerStats*> workers);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Appends the request families in `format`: the same bytes as
  // Serialize(Collect(), format, ...) over the same counts, without the families and
  // without OpenMetrics' "# EOF" (WriteScrape writes it).
  void AppendText(Format format, TextBuffer* out) const;
  std::vector<RouteSummary> Summaries() const;
  // One per layout().upstreams, in that order; each (upstream, route) slot read
  // consistently, so a request is in all of an upstream's figures or in none.
  std::vector<UpstreamTotals> Totals() const;
  const StatsLayout& layout() const { return layout_; }
  // Adds every count of `src` (built with `from`) to `dst` (built with `to`), label sets
  // matched by name; what `to` lacks is dropped. Keeps the counts of a data plane
  // generation that stopped in one shard. REQUIRES: nothing writes `src` any more, and
  // only the calling thread writes `dst` and reads it (the scrape's thread).
  static void Fold(const WorkerStats& src, const StatsLayout& from, WorkerStats* dst,
                   const StatsLayout& to);

  // How long a reader tries before it takes a copy a writer may have torn (see the top).
  static constexpr std::chrono::milliseconds kMaxReadWait{250};

 private:
  // One (upstream, route) summed over the shards, each shard's slot read consistently.
  struct PairSnapshot {
    uint64_t count = 0, sum_ns = 0, request_bytes = 0, response_bytes = 0;
    std::array<uint64_t, kDurationBuckets.size() + 1> buckets{};  // not cumulative
    uint32_t cells_begin = 0, cells_end = 0;                      // in cells_
  };
  // A non-zero count of requests_total: index method * kCodeSlots + code.
  struct Cell {
    uint32_t index;
    uint64_t n;
  };
  // A shard with, per index of layout_, its own index (-1: it has no such label set).
  struct MappedShard {
    const WorkerStats* w = nullptr;
    std::vector<int32_t> pair;                   // [upstream * routes + route]
    std::vector<int32_t> upstream;               // [upstream]
    std::vector<std::vector<int32_t>> endpoint;  // [upstream][endpoint]
  };
  static MappedShard Map(const WorkerStats* stats, const StatsLayout& from, const StatsLayout& to);
  // Fills snap_ and cells_ from the shards.
  void Snapshot() const;
  // One (upstream, route) cell summed over the shards, each shard's slot read
  // consistently (Summaries and Totals).
  struct PairCounts {
    uint64_t requests = 0, successes = 0, errors5xx = 0;
    uint64_t request_bytes = 0, response_bytes = 0;
    uint64_t sum_ns = 0, min_ns = 0, max_ns = 0;  // min_ns 0: none yet
    std::array<uint64_t, kFineBuckets> fine{};
  };
  void ReadPair(size_t pair, PairCounts* out) const;
  // pokemon_speedrun_upstream_errors_total{upstream u, endpoint e, kind k} over the shards.
  uint64_t UpstreamErrors(size_t u, size_t e, int k) const;

  StatsLayout layout_;
  std::vector<MappedShard> shards_;

  // Text fixed at construction, label values escaped and repaired to UTF-8.
  std::vector<std::string> pair_labels_;      // per pair: {route="r",upstream="u"}<space>
  std::vector<std::string> upstream_labels_;  // per upstream: {upstream="u"}<space>
  std::vector<std::vector<std::string>> endpoint_labels_;  // {endpoint="e",kind="
  std::vector<std::string> error_tails_;                   // ",upstream="u"}<space>
  std::vector<std::string> timeout_heads_, pause_heads_;   // name{reason="r"}<space>
  std::vector<std::string> cell_prefix_;  // per cell: requests_total{code="c",method="m",
  size_t max_cell_prefix_ = 0;
  std::array<std::string, kDurationBuckets.size() + 1> le_labels_;  // ,le="0.0005"}<space>
  std::array<std::array<std::string, 2>, 9> headers_;               // per family and format

  // Scratch kept between scrapes (main thread only).
  mutable std::vector<std::vector<uint16_t>> known_cells_;  // per pair: cells seen non-zero
  mutable std::vector<PairSnapshot> snap_;
  mutable std::vector<Cell> cells_;
};

}  // namespace speedmon::metrics
