// Serialises metric families for GET /metrics: Prometheus text format 0.0.4, or
// OpenMetrics 1.0 when the scraper asks for it, and gzip when it accepts it.
//
// Pure functions but for gzip's per-thread zlib stream; any thread. The admin server (main thread)
// calls them per scrape.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <string_view>
#include <vector>

#include "metrics/text_format.h"

namespace speedmon::metrics {

// Picks the format from an Accept header value: OpenMetrics when
// "application/openmetrics-text" is listed (with a non-zero q), else text 0.0.4.
Format NegotiateFormat(std::string_view accept);

// The Content-Type header value for a format.
const char* ContentType(Format format);

// Appends the exposition of `families` to `out`. Families with no samples are skipped;
// label values and help text are escaped; OpenMetrics output ends with "# EOF".
void Serialize(const std::vector<prometheus::MetricFamily>& families, Format format,
               TextBuffer* out);
// Serialize without the "# EOF", for a scrape that writes more families after these.
void AppendFamilies(const std::vector<prometheus::MetricFamily>& families, Format format,
                    TextBuffer* out);

// True when an Accept-Encoding header value allows gzip (q > 0).
bool AcceptsGzip(std::string_view accept_encoding);

// Replaces `out` with `in` gzip-compressed (level 1: scrapes are frequent and the text
// compresses ~10x at any level). Each thread keeps its zlib stream between calls. Returns
// false on a zlib failure, leaving `out` unspecified.
bool Gzip(std::string_view in, std::string* out);

}  // namespace speedmon::metrics
