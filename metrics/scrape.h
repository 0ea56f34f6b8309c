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
// are a few dozen series; the caller appends them (`rest`), those on prometheus-cpp
// registries through FamilySet (family.h) and custom collectables through AppendFamilies.
//
// Every family goes straight into one text buffer, and that buffer is the body the admin
// server sends (ScrapeBody::text): nothing is copied after it is written.
//
// Threads: the thread that owns `stats` (the main thread, which also sends the answer).
// Each calling thread keeps its text buffer and zlib stream between calls; the buffer is
// written into again once the admin server has sent the answer that held it, so once a
// scrape of the largest size has been written, the next allocates nothing for its text.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "metrics/exposition.h"
#include "metrics/request_stats.h"

namespace speedmon::metrics {

// The body of one scrape: `text`, or when compressed (text null) `gzip`.
struct ScrapeBody {
  // Shared with WriteScrape, which writes the next scrape on this thread into it once no
  // one else holds it, or into a new buffer while it is still being sent.
  std::shared_ptr<const TextBuffer> text;
  std::string gzip;
};

// Appends, in a format, the families a scrape shows after the request statistics', without
// OpenMetrics' "# EOF".
using AppendText = std::function<void(Format, TextBuffer*)>;

// The exposition, in `format`, of `stats`'s families followed by what `rest` appends
// (when it is set) and, in OpenMetrics, "# EOF": with `rest` appending families through
// AppendFamilies, the same bytes as Serialize over stats.Collect() and those families.
// With `gzip` it is gzip-compressed, unless zlib fails, when the plain text is returned.
ScrapeBody WriteScrape(const RequestStatsCollector& stats, const AppendText& rest, Format format,
                       bool gzip);

}  // namespace speedmon::metrics
