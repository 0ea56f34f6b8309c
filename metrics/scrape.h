// One GET /metrics answer: the request statistics' families written straight from the
// worker shards (RequestStatsCollector::AppendText), then every other family through
// Serialize, gzip-compressed when the scraper accepts it.
//
// Why not prometheus-cpp's path for all of it: the request families are nearly all of a
// scrape, and building them as prometheus::MetricFamily first cost one ClientMetric with
// its own label strings per series before the text was written; the text buffer also grew
// by doubling into a fresh string on each scrape. See request_stats.h for what AppendText
// keeps instead, and docs/BENCHMARKS.md ("Scrape path micro-benchmarks") for the figures.
// The other families (system, process, speedrun, alerting, health checks, internal errors)
// are a few dozen series and stay on prometheus-cpp's collectables.
//
// Threads: the thread that owns `stats` (the main thread). Each calling thread keeps its
// text buffer and zlib stream between calls, so once a scrape of the largest size has
// been written, the next allocates only the body it returns.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "metrics/exposition.h"
#include "metrics/request_stats.h"

namespace speedmon::metrics {

// Replaces `body` with the exposition, in `format`, of `stats`'s families followed by
// `rest` (in order; families without samples skipped; OpenMetrics' "# EOF" last): the
// same bytes as Serialize over stats.Collect() and `rest`. With `gzip`, the body is
// gzip-compressed and true is returned; should zlib fail, the body is the plain text and
// the result false. Without `gzip`, false.
bool WriteScrape(const RequestStatsCollector& stats,
                 const std::vector<prometheus::MetricFamily>& rest, Format format, bool gzip,
                 std::string* body);

}  // namespace speedmon::metrics
