// One GET /metrics answer. See scrape.h.
#include "metrics/scrape.h"

namespace speedmon::metrics {

bool WriteScrape(const RequestStatsCollector& stats,
                 const std::vector<prometheus::MetricFamily>& rest, Format format, bool gzip,
                 std::string* body) {
  // Kept between scrapes (capacity included); see scrape.h.
  thread_local TextBuffer text;
  thread_local std::string rest_text;
  text.clear();
  stats.AppendText(format, &text);
  rest_text.clear();
  Serialize(rest, format, &rest_text);
  text.Append(rest_text);
  if (gzip && Gzip(text.view(), body)) return true;
  body->assign(text.view());
  return false;
}

}  // namespace speedmon::metrics
