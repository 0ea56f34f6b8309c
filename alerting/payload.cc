// JSON bodies for Alertmanager and webhooks. Any thread (pure functions).
#include "alerting/payload.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "base/json.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {
namespace {

using nlohmann::json;

// Labels shared by every map in `maps` (same name and value).
Labels Common(const std::vector<const Labels*>& maps) {
  if (maps.empty()) return {};
  Labels common = *maps.front();
  for (size_t i = 1; i < maps.size(); ++i) {
    for (auto it = common.begin(); it != common.end();) {
      auto other = maps[i]->find(it->first);
      if (other == maps[i]->end() || other->second != it->second) {
        it = common.erase(it);
      } else {
        ++it;
      }
    }
  }
  return common;
}

}  // namespace

std::string FormatRfc3339(Time t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms / 1000;
  int64_t frac = ms % 1000;
  if (frac < 0) {  // before 1970: floor, not truncate
    frac += 1000;
    secs -= 1;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac));
  return buf;
}

std::string Fingerprint(const Labels& labels) {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;  // a byte no UTF-8 text contains: ends the string unambiguously
    h *= 1099511628211ULL;
  };
  for (const auto& [k, v] : labels) {
    mix(k);
    mix(v);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, h);
  return buf;
}

std::string AlertmanagerBody(const std::vector<AlertNotice>& notices) {
  json out = json::array();
  for (const auto& n : notices) {
    out.push_back(json{{"labels", n.labels},
                       {"annotations", n.annotations},
                       {"startsAt", FormatRfc3339(n.starts_at)},
                       {"endsAt", FormatRfc3339(n.ends_at)},
                       {"generatorURL", n.generator_url}});
  }
  return base::ToJson(out);
}

std::string WebhookBody(const std::vector<AlertNotice>& notices, const std::string& external_url) {
  json alerts = json::array();
  bool any_firing = false;
  std::vector<const Labels*> labels, annotations;
  for (const auto& n : notices) {
    any_firing = any_firing || !n.resolved;
    labels.push_back(&n.labels);
    annotations.push_back(&n.annotations);
    alerts.push_back(json{
        {"status", n.resolved ? "resolved" : "firing"},
        {"labels", n.labels},
        {"annotations", n.annotations},
        {"startsAt", FormatRfc3339(n.starts_at)},
        {"endsAt", n.resolved ? FormatRfc3339(n.ends_at) : std::string("0001-01-01T00:00:00Z")},
        {"generatorURL", n.generator_url},
        {"fingerprint", n.fingerprint}});
  }
  json out{{"version", "4"},
           {"groupKey", "speedmon"},
           {"truncatedAlerts", 0},
           {"status", any_firing ? "firing" : "resolved"},
           {"receiver", "speedmon"},
           {"groupLabels", json::object()},
           {"commonLabels", Common(labels)},
           {"commonAnnotations", Common(annotations)},
           {"externalURL", external_url},
           {"alerts", std::move(alerts)}};
  return base::ToJson(out);
}

}  // namespace speedmon::alerting
