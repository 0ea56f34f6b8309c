// The admin API's routes as a table: method and path in, the route and its path
// parameter out, or why not (404, or 405 with the methods the path allows).
//
// Pure and allocation-free except for the decoded parameter; used on the main thread by
// the admin handlers and by fuzz/admin_router_fuzz.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace speedmon::admin {

enum class Route : uint8_t {
  kMetrics,       // GET /metrics
  kStatusPage,    // GET / and /index.html
  kHealthz,       // GET /healthz
  kReady,         // GET /ready
  kUpstreams,     // GET /api/v1/upstreams
  kRequests,      // GET /api/v1/requests
  kExperiments,   // GET, POST /api/v1/experiments
  kExperiment,    // GET /api/v1/experiments/{id}
  kPatterns,      // GET, POST /api/v1/patterns
  kPattern,       // GET /api/v1/patterns/{id}
  kPatternReuse,  // POST /api/v1/patterns/{id}/reuse
  kSummary,       // GET /api/v1/summary
  kEvents,        // POST /api/v1/events
  kSystem,        // GET /api/v1/system
  kProcesses,     // GET, POST /api/v1/processes
  kProcess,       // DELETE /api/v1/processes/{name}
  kAlerts,        // GET /api/v1/alerts
  kAlertRules,    // GET, POST /api/v1/alert-rules
  kAlertRule,     // DELETE /api/v1/alert-rules/{id}
  kSla,           // GET /api/v1/sla
  kTimeseries,    // GET /api/v1/timeseries
};

// Methods as bits, for a route's allowed set. HEAD is allowed wherever GET is.
enum Method : uint8_t { kGet = 1, kPost = 2, kDelete = 4 };

struct RouteMatch {
  enum class Result : uint8_t {
    kFound,             // route (and param) are set
    kNotFound,          // 404
    kMethodNotAllowed,  // 405; allow lists the path's methods ("GET, HEAD, POST")
    kBadParameter,      // 400: the {id} segment has a malformed %-escape
  };
  Result result = Result::kNotFound;
  Route route = Route::kHealthz;
  std::string param;       // the percent-decoded {id}, when the route has one
  std::string allow;       // for kMethodNotAllowed: the Allow header ("GET, HEAD, POST")
  std::string allow_text;  // for kMethodNotAllowed: the same for people ("GET or POST")
};

// Matches exact paths; {id} is one non-empty segment (no '/') and is percent-decoded.
RouteMatch MatchRoute(std::string_view method, std::string_view path);

}  // namespace speedmon::admin
