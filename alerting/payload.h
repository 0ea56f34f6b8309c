// What a notifier sends: one alert notice, and the two JSON bodies built from a batch
// of them (Alertmanager's API v2 and the Alertmanager-style webhook).
//
// Thread: notices are built on the main thread and copied to the sender threads, which
// build the bodies; these are plain functions with no shared state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "alerting/value_source.h"

namespace speedmon::alerting {

using Time = std::chrono::system_clock::time_point;

// One alert instance as it leaves speedmon.
struct AlertNotice {
  std::string fingerprint;  // of `labels` (Fingerprint below); identifies the instance
  Labels labels;            // alertname, severity, rule_id, rule labels, series labels
  Labels annotations;       // summary, description, ... (templates expanded)
  Time starts_at;           // when it fired
  // Firing: how long Alertmanager should trust it without hearing again
  // (now + 4 * max(evaluation_interval, resend_interval)). Resolved: the resolution time.
  Time ends_at;
  bool resolved = false;
  // Fired or resolved at this evaluation (not a periodic re-send). Webhooks get only
  // these; Alertmanagers get every notice.
  bool transition = false;
  std::string generator_url;
};

// RFC 3339 in UTC with milliseconds: "2026-11-28T16:55:12.123Z".
std::string FormatRfc3339(Time t);

// 16 hex digits: FNV-1a 64 over the sorted label pairs (separators keep {a="bc"} and
// {ab="c"} apart). Stable across runs and builds.
std::string Fingerprint(const Labels& labels);

// POST {alertmanager}/api/v2/alerts body: a JSON array, one object per notice:
//   [{"labels": {...}, "annotations": {...}, "startsAt": "...", "endsAt": "...",
//     "generatorURL": "..."}]
std::string AlertmanagerBody(const std::vector<AlertNotice>& notices);

// The webhook body: Alertmanager's webhook format (version 4), so receivers written for
// Alertmanager read it unchanged:
//   {"version": "4",
//    "groupKey": "speedmon",
//    "truncatedAlerts": 0,
//    "status": "firing" if any alert in the batch fires, else "resolved",
//    "receiver": "speedmon",
//    "groupLabels": {},
//    "commonLabels": labels every alert shares (same name and value),
//    "commonAnnotations": annotations every alert shares,
//    "externalURL": external_url,
//    "alerts": [{"status": "firing|resolved", "labels": {...}, "annotations": {...},
//                "startsAt": RFC 3339, "endsAt": RFC 3339 resolution time, or
//                "0001-01-01T00:00:00Z" while firing (as Alertmanager sends it),
//                "generatorURL": "...", "fingerprint": "..."}]}
std::string WebhookBody(const std::vector<AlertNotice>& notices, const std::string& external_url);

}  // namespace speedmon::alerting
