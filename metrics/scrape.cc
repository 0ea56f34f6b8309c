// One GET /metrics answer. See scrape.h.
#include "metrics/scrape.h"

namespace speedmon::metrics {

ScrapeBody WriteScrape(const RequestStatsCollector& stats, const AppendText& rest, Format format,
                       bool gzip) {
  // Kept between scrapes (capacity included); see scrape.h.
  thread_local std::shared_ptr<TextBuffer> text;
  if (text == nullptr || text.use_count() > 1) {
    // The last scrape's text is still being sent (or this is the first): write into a new
    // buffer as large, and let the old one go with its answer.
    auto fresh = std::make_shared<TextBuffer>();
    if (text != nullptr) fresh->Reserve(text->capacity());
    text = std::move(fresh);
  }
  text->clear();
  stats.AppendText(format, text.get());
  if (rest) rest(format, text.get());
  if (format == Format::kOpenMetrics) text->Append("# EOF\n");
  ScrapeBody body;
  if (gzip && Gzip(text->view(), &body.gzip)) return body;
  body.gzip.clear();
  body.text = text;
  return body;
}

}  // namespace speedmon::metrics
