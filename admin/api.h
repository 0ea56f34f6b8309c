// The admin API: one handler per route of admin/router.h, thin by design: read the
// request, call the component that owns the answer, render it. This file is also the one
// place where a library's base::Status becomes an HTTP status (HttpStatusFor).
//
// Errors are JSON {"error": "<message>", "field": "<field>" | null} (base::JsonError).
// Writes (POST, DELETE) need "Authorization: Bearer <token>" when [admin].auth_token is
// set. docs/API.md lists every route with its answers.
//
// Threads: Handle() runs on the main loop; answers may come later from the speedrun
// writer thread through the Responder.
#pragma once

#include <functional>

#include "admin/server.h"
#include "base/status.h"
#include "config/config.h"
#include "metrics/text_format.h"

namespace speedmon::alerting {
class Service;
}
namespace speedmon::metrics {
class SystemCollector;
class TimeseriesRing;
}  // namespace speedmon::metrics
namespace speedmon::proxy {
class DataPlane;
}
namespace speedmon::speedrun {
class Service;
struct WriteResult;
}  // namespace speedmon::speedrun

namespace speedmon::admin {

class EventLog;

// What the handlers read and call. Every pointer is non-null and outlives the Api.
struct ApiParts {
  const config::AdminConfig* config = nullptr;
  const proxy::DataPlane* data_plane = nullptr;
  metrics::SystemCollector* system = nullptr;
  speedrun::Service* speedrun = nullptr;
  alerting::Service* alerts = nullptr;
  EventLog* events = nullptr;
  const metrics::TimeseriesRing* timeseries = nullptr;  // the status page's charts
  // Appends every family /metrics shows after the data plane's request statistics, in
  // one consistent cut per component, without OpenMetrics' "# EOF" (metrics::WriteScrape).
  std::function<void(metrics::Format, metrics::TextBuffer*)> append_metrics;
  // False once the daemon drains (then /ready answers 503).
  std::function<bool()> serving;
};

class Api {
 public:
  explicit Api(ApiParts parts) : p_(std::move(parts)) {}
  // Answers `req` through `respond`, now or later (exactly once).
  void Handle(const Request& req, Responder respond) const;

 private:
  // False (and answers 401) when a write lacks the configured bearer token.
  bool Authorized(const Request& req, const Responder& respond) const;

  ApiParts p_;
};

// The HTTP status for a Status code: 400 invalid argument, 401 unauthenticated, 404 not
// found, 409 already exists or failed precondition, 413 too large, 415 unsupported
// format, 503 unavailable, 500 internal (and OK: 200).
int HttpStatusFor(base::StatusCode code);
// The error answer for a non-OK status: HttpStatusFor and the JSON error body.
Response ErrorResponse(const base::Status& status);
// A speedrun write's answer: 201 for what was created (one record or a batch), 200 for a
// duplicate or a counted reuse, or ErrorResponse. The body is speedrun::ToJson(result).
Response WriteResponse(const base::StatusOr<speedrun::WriteResult>& result);

}  // namespace speedmon::admin
