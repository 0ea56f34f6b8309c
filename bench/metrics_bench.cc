// Micro-benchmarks for the metrics path: what one request pays to be recorded
// (WorkerStats::RecordRequest, on a worker thread in the daemon) and what one scrape pays
// to merge the shards and serialise them (RequestStatsCollector::Collect +
// metrics::Serialize, on the main thread), for the default layout (4 upstreams x 11 routes
// + "other") and for 100 upstreams x 8 routes. Single-threaded; built as part of
// speedmon_microbench by bench/CMakeLists.txt.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/json.h"
#include "metrics/exposition.h"
#include "metrics/request_stats.h"
#include "metrics/scrape.h"
#include "metrics/timeseries.h"

// Every operator new in this binary is counted, so a benchmark can report allocations per
// iteration ("allocs"). zlib's own mallocs are not operator new and are not counted.
namespace {
std::atomic<uint64_t> g_allocs{0};
}  // namespace

[[gnu::noinline]] void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would then see malloc() paired with operator delete, or free() with
// operator new, and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace speedmon::metrics {
namespace {

// Sets the "allocs" counter: operator new calls per iteration since `start`.
void ReportAllocs(benchmark::State& state, uint64_t start) {
  state.counters["allocs"] =
      benchmark::Counter(static_cast<double>(g_allocs.load(std::memory_order_relaxed) - start),
                         benchmark::Counter::kAvgIterations);
}

// The shards the daemon has with `workers = 0` on this 2-core machine.
constexpr int kWorkers = 2;

StatsLayout MakeLayout(int upstreams, int routes) {
  StatsLayout layout;
  for (int u = 0; u < upstreams; ++u) {
    layout.upstreams.push_back("emulator-" + std::to_string(u + 1));
    layout.endpoints.push_back({"127.0.0.1:" + std::to_string(8081 + u)});
  }
  for (int r = 0; r < routes; ++r) layout.routes.push_back("route_" + std::to_string(r));
  layout.routes.push_back("other");
  return layout;
}

// Every (upstream, route) has seen traffic with a few methods and codes, so each cell of
// every family is present in the scrape: the worst case for a layout of this size.
void Fill(const StatsLayout& layout, WorkerStats* stats) {
  const int upstreams = static_cast<int>(layout.upstreams.size());
  const int routes = static_cast<int>(layout.routes.size());
  uint64_t duration_ns = 180'000;
  for (int u = 0; u < upstreams; ++u) {
    for (int r = 0; r < routes; ++r) {
      stats->RecordRequest(u, r, Method::kGet, 200, duration_ns, 0, 1024);
      stats->RecordRequest(u, r, Method::kPost, 200, duration_ns * 3, 64, 20480);
      stats->RecordRequest(u, r, Method::kPost, 503, duration_ns / 2, 64, 80);
      duration_ns = duration_ns * 7 % 9'000'000 + 1000;
    }
    stats->RecordUpstreamError(u, 0, UpstreamErrorKind::kConnect);
  }
}

void BM_RecordRequest(benchmark::State& state) {
  StatsLayout layout = MakeLayout(4, 11);
  WorkerStats stats(layout);
  // Vary the slot and the latency a little, as live traffic does, without a branch the
  // compiler could hoist: a fixed pattern of 64 requests.
  uint64_t i = 0;
  for (auto _ : state) {
    int upstream = static_cast<int>(i & 3);
    int route = static_cast<int>((i >> 2) % 12);
    uint64_t duration_ns = 100'000 + (i & 63) * 9'000;
    stats.RecordRequest(upstream, route, Method::kPost, 200, duration_ns, 64, 20480);
    ++i;
  }
  benchmark::ClobberMemory();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordRequest);

class ScrapeFixture {
 public:
  // fill = false: no traffic yet (every known series at 0, requests_total empty).
  ScrapeFixture(int upstreams, int routes, bool fill = true)
      : layout_(MakeLayout(upstreams, routes)) {
    std::vector<const WorkerStats*> shards;
    for (int w = 0; w < kWorkers; ++w) {
      stats_.push_back(std::make_unique<WorkerStats>(layout_));
      if (fill) Fill(layout_, stats_.back().get());
      shards.push_back(stats_.back().get());
    }
    collector_ = std::make_unique<RequestStatsCollector>(layout_, shards);
  }
  const RequestStatsCollector& collector() const { return *collector_; }

 private:
  StatsLayout layout_;
  std::vector<std::unique_ptr<WorkerStats>> stats_;
  std::unique_ptr<RequestStatsCollector> collector_;
};

// range(0) upstreams, range(1) routes (plus "other").
void BM_Collect(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) benchmark::DoNotOptimize(fixture.collector().Collect());
  ReportAllocs(state, allocs);
}
BENCHMARK(BM_Collect)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// One sample of the status page's charts (admin/timeseries.cc without the host and
// speedrun reads): every (upstream, route) slot's totals, then the differences into the
// ring of 180.
void BM_TimeseriesSample(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  speedmon::metrics::TimeseriesRing ring(fixture.collector().layout().upstreams, 180, 5.0);
  double t = 0;
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    speedmon::metrics::TimeseriesReading r;
    r.unix_seconds = r.monotonic_seconds = t += 5;
    r.upstreams = fixture.collector().Totals();
    ring.Add(r);
  }
  ReportAllocs(state, allocs);
}
BENCHMARK(BM_TimeseriesSample)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// GET /api/v1/timeseries with the ring full (180 samples, every one with requests).
void BM_TimeseriesJson(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  speedmon::metrics::TimeseriesRing ring(fixture.collector().layout().upstreams, 180, 5.0);
  speedmon::metrics::TimeseriesReading r;
  r.upstreams = fixture.collector().Totals();
  for (int i = 0; i <= 180; ++i) {
    r.unix_seconds = r.monotonic_seconds = 5.0 * i;
    r.cpu_percent = r.memory_percent = 12.5 + i;
    for (auto& u : r.upstreams) {
      u.requests += 20 + i;
      u.successes += 19 + i;
      u.fine[100 + i % 50] += 20 + i;
    }
    ring.Add(r);
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = speedmon::base::ToJson(ring.ToJson());
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_TimeseriesJson)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// One scrape of the request families as GET /metrics answered before metrics/scrape.h
// (proxy/admin_api.cc): families, then text into a fresh body, then gzip into another
// string when asked. Not inlined, so that callgrind can count it alone
// (--toggle-collect='*OldScrape*').
[[gnu::noinline]] std::string OldScrape(const RequestStatsCollector& collector, bool gzip) {
  TextBuffer text;
  Serialize(collector.Collect(), Format::kText004, &text);
  std::string body(text.view());
  if (gzip) {
    std::string gz;
    if (Gzip(body, &gz)) body.swap(gz);
  }
  return body;
}

void BM_CollectAndSerialize(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  size_t bytes = 0;
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    std::string body = OldScrape(fixture.collector(), false);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  ReportAllocs(state, allocs);
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CollectAndSerialize)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// What Prometheus asks for by default: text + gzip.
void BM_CollectSerializeGzip(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  size_t bytes = 0;
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    std::string body = OldScrape(fixture.collector(), true);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  ReportAllocs(state, allocs);
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CollectSerializeGzip)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// One scrape of the request families as GET /metrics answers now (metrics/scrape.h): text
// straight from the shards into a kept buffer, which is the body (or gzip of it).
// Not inlined, for callgrind (--toggle-collect='*NewScrape*').
[[gnu::noinline]] ScrapeBody NewScrape(const RequestStatsCollector& collector, bool gzip) {
  return WriteScrape(collector, {}, Format::kText004, gzip);
}

size_t BodySize(const ScrapeBody& body) {
  return body.text != nullptr ? body.text->size() : body.gzip.size();
}

// Scrapes `fixture` once first (the daemon has scraped before: the text buffer has its
// size, the counted cells are known), then once per iteration; each body is let go before
// the next scrape, as the admin server does once it has sent it.
void ScrapeLoop(benchmark::State& state, const ScrapeFixture& fixture, bool gzip) {
  size_t bytes = BodySize(WriteScrape(fixture.collector(), {}, Format::kText004, gzip));
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    ScrapeBody body = NewScrape(fixture.collector(), gzip);
    bytes = BodySize(body);
    benchmark::DoNotOptimize(body.text.get());
  }
  ReportAllocs(state, allocs);
  state.counters["bytes"] = static_cast<double>(bytes);
}

// range(2): 1 with gzip.
void BM_Scrape(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  ScrapeLoop(state, fixture, state.range(2) != 0);
}
BENCHMARK(BM_Scrape)
    ->Args({4, 11, 0})
    ->Args({100, 8, 0})
    ->Args({4, 11, 1})
    ->Args({100, 8, 1})
    ->Unit(benchmark::kMicrosecond);

// A scrape before any traffic: what the series that exist from the start at 0 (every
// upstream x route histogram and byte counter, every upstream x endpoint x kind error
// counter) cost when nothing has been counted yet.
void BM_ScrapeIdle(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), false);
  ScrapeLoop(state, fixture, false);
}
BENCHMARK(BM_ScrapeIdle)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// The request families' text alone, into a kept buffer.
void BM_AppendText(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  TextBuffer text;
  fixture.collector().AppendText(Format::kText004, &text);
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    text.clear();
    fixture.collector().AppendText(Format::kText004, &text);
    benchmark::DoNotOptimize(text.view().data());
  }
  ReportAllocs(state, allocs);
}
BENCHMARK(BM_AppendText)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

// The parts alone: serialising families collected once, and gzip of a finished text.
void BM_SerializeOnly(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  auto families = fixture.collector().Collect();
  TextBuffer out;
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    out.clear();
    Serialize(families, Format::kText004, &out);
    benchmark::DoNotOptimize(out.view().data());
  }
  ReportAllocs(state, allocs);
}
BENCHMARK(BM_SerializeOnly)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

void BM_GzipOnly(benchmark::State& state) {
  ScrapeFixture fixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  TextBuffer serialized;
  Serialize(fixture.collector().Collect(), Format::kText004, &serialized);
  std::string text(serialized.view()), gz;
  uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    gz.clear();
    benchmark::DoNotOptimize(Gzip(text, &gz));
  }
  ReportAllocs(state, allocs);
}
BENCHMARK(BM_GzipOnly)->Args({4, 11})->Args({100, 8})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace speedmon::metrics
