// Micro-benchmarks for sysprobe: what a scrape pays for host and process figures, fresh
// (cache_duration 0: every Get reads /proc and statvfs) and cached. Single-threaded;
// wired into the build by bench/, linked with benchmark::benchmark and speedmon_sysprobe.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "sysprobe/proc_fs.h"
#include "sysprobe/proc_parse.h"
#include "sysprobe/process_watcher.h"
#include "sysprobe/system_sampler.h"

namespace speedmon::sysprobe {
namespace {

void BM_SystemSnapshotFresh(benchmark::State& state) {
  SamplerOptions options;
  options.cache_duration = std::chrono::milliseconds(0);
  SystemSampler sampler(std::move(options));
  sampler.Get();  // the first Get waits for the CPU baseline; keep it out of the loop
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Get());
}
BENCHMARK(BM_SystemSnapshotFresh);

void BM_SystemSnapshotCached(benchmark::State& state) {
  SamplerOptions options;
  options.cache_duration = std::chrono::hours(1);
  SystemSampler sampler(std::move(options));
  sampler.Get();
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Get());
}
BENCHMARK(BM_SystemSnapshotCached);

void BM_ProcessWatcherByPid(benchmark::State& state) {
  ProcessWatcher watcher = ProcessWatcher::Create(ProcessSelector{.pid = getppid()}).value();
  for (auto _ : state) benchmark::DoNotOptimize(watcher.Sample());
}
BENCHMARK(BM_ProcessWatcherByPid);

void BM_SelfSample(benchmark::State& state) {
  ProcFs fs;
  for (auto _ : state) benchmark::DoNotOptimize(SelfSample(fs));
}
BENCHMARK(BM_SelfSample);

void BM_ParseProcStat(benchmark::State& state) {
  std::string text;
  ProcFs().Read("stat", &text);
  for (auto _ : state) benchmark::DoNotOptimize(ParseProcStat(text));
}
BENCHMARK(BM_ParseProcStat);

}  // namespace
}  // namespace speedmon::sysprobe

BENCHMARK_MAIN();
