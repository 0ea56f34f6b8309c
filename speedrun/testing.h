// Test helpers for the speedrun tests (not part of the library): a temporary directory,
// synchronous posting with the answer a client gets (admin::WriteResponse, so these tests
// link admin/), and a flat snapshot of a registry's metrics.
//
// Test thread only; PostAndWait blocks until the Service's writer thread answers.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <prometheus/registry.h>

#include "admin/api.h"
#include "base/json.h"
#include "speedrun/service.h"

namespace speedmon::speedrun::testing {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "speedrun_test.XXXXXX").string();
    path_ = mkdtemp(templ.data()) ? templ : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The admin API's answer to a write: HTTP status and JSON body (without the newline).
struct Answer {
  int status = 0;
  std::string body;
};
inline Answer ToAnswer(const base::StatusOr<WriteResult>& result) {
  admin::Response r = admin::WriteResponse(result);
  if (!r.body.empty() && r.body.back() == '\n') r.body.pop_back();
  return Answer{r.status, std::move(r.body)};
}

// Posts and waits for the answer; `synchronous` tells whether done ran before the call
// returned (bad input is answered that way).
enum class Kind { kExperiments, kPatterns };
inline Answer PostAndWait(Service& s, Kind kind, std::string_view body,
                          std::string_view content_type = "application/json",
                          bool* synchronous = nullptr) {
  auto promise = std::make_shared<std::promise<Answer>>();
  std::future<Answer> answer = promise->get_future();
  auto done = [promise](base::StatusOr<WriteResult> r) { promise->set_value(ToAnswer(r)); };
  if (kind == Kind::kExperiments) {
    s.PostExperiments(body, content_type, done);
  } else {
    s.PostPatterns(body, content_type, done);
  }
  if (synchronous) {
    *synchronous = answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  return answer.get();
}

inline Answer ReuseAndWait(Service& s, std::string_view pattern_id, std::string_view key = {}) {
  auto promise = std::make_shared<std::promise<Answer>>();
  std::future<Answer> answer = promise->get_future();
  s.PostPatternReuse(pattern_id, key,
                     [promise](base::StatusOr<WriteResult> r) { promise->set_value(ToAnswer(r)); });
  return answer.get();
}

// GET /api/v1/experiments?limit=N and GET /api/v1/sla bodies, as the API renders them.
inline std::string ExperimentsBody(Service& s, size_t limit = 100) {
  auto promise = std::make_shared<std::promise<std::string>>();
  std::future<std::string> body = promise->get_future();
  ListQuery q;
  q.limit = limit;
  s.ListExperiments(q, [promise](base::StatusOr<nlohmann::json> r) {
    promise->set_value(r.ok() ? base::ToJson(*r) : r.status().ToString());
  });
  return body.get();
}
inline std::string SlaBody(const Service& s) { return base::ToJson(s.GetSla()); }

// Every sample of the registry as `name{label="value",...}` -> value; histograms as
// name_count, name_sum and name_bucket{le="..."} (cumulative).
inline std::map<std::string, double> Snapshot(prometheus::Registry& registry) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    for (const prometheus::ClientMetric& m : family.metric) {
      std::string labels;
      for (const auto& l : m.label) {
        labels += (labels.empty() ? "" : ",") + l.name + "=\"" + l.value + "\"";
      }
      auto key = [&](const std::string& suffix, const std::string& extra = "") {
        std::string all = labels;
        if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
        return family.name + suffix + (all.empty() ? "" : "{" + all + "}");
      };
      switch (family.type) {
        case prometheus::MetricType::Counter:
          out[key("")] = m.counter.value;
          break;
        case prometheus::MetricType::Gauge:
          out[key("")] = m.gauge.value;
          break;
        case prometheus::MetricType::Histogram:
          out[key("_count")] = static_cast<double>(m.histogram.sample_count);
          out[key("_sum")] = m.histogram.sample_sum;
          for (const auto& b : m.histogram.bucket) {
            std::ostringstream le;
            le << b.upper_bound;
            out[key("_bucket", "le=\"" + le.str() + "\"")] =
                static_cast<double>(b.cumulative_count);
          }
          break;
        default:
          break;
      }
    }
  }
  return out;
}

inline std::string Experiment(const std::string& id, const std::string& status = "success",
                              const std::string& extra = "") {
  return R"({"experiment_id":")" + id + R"(","status":")" + status + R"(","duration_seconds":2)" +
         extra + "}";
}

}  // namespace speedmon::speedrun::testing
