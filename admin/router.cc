// The admin route table. See router.h.
#include "admin/router.h"

#include <optional>

#include "base/url.h"

namespace speedmon::admin {
namespace {

struct Entry {
  std::string_view prefix;  // the path, or the part before {id}
  std::string_view suffix;  // after {id}; only for routes with a parameter
  bool has_param;
  Route route;
  uint8_t methods;
};

// One row per route. A {id} is one segment, so "/api/v1/patterns/{id}" never matches
// ".../{id}/reuse" and the order does not matter.
constexpr Entry kRoutes[] = {
    {"/metrics", "", false, Route::kMetrics, kGet},
    {"/", "", false, Route::kStatusPage, kGet},
    {"/index.html", "", false, Route::kStatusPage, kGet},
    {"/healthz", "", false, Route::kHealthz, kGet},
    {"/ready", "", false, Route::kReady, kGet},
    {"/api/v1/upstreams", "", false, Route::kUpstreams, kGet},
    {"/api/v1/requests", "", false, Route::kRequests, kGet},
    {"/api/v1/experiments", "", false, Route::kExperiments, kGet | kPost},
    {"/api/v1/experiments/", "", true, Route::kExperiment, kGet},
    {"/api/v1/patterns", "", false, Route::kPatterns, kGet | kPost},
    {"/api/v1/patterns/", "", true, Route::kPattern, kGet},
    {"/api/v1/patterns/", "/reuse", true, Route::kPatternReuse, kPost},
    {"/api/v1/summary", "", false, Route::kSummary, kGet},
    {"/api/v1/events", "", false, Route::kEvents, kPost},
    {"/api/v1/system", "", false, Route::kSystem, kGet},
    {"/api/v1/processes", "", false, Route::kProcesses, kGet | kPost},
    {"/api/v1/processes/", "", true, Route::kProcess, kDelete},
    {"/api/v1/alerts", "", false, Route::kAlerts, kGet},
    {"/api/v1/alert-rules", "", false, Route::kAlertRules, kGet | kPost},
    {"/api/v1/alert-rules/", "", true, Route::kAlertRule, kDelete},
    {"/api/v1/sla", "", false, Route::kSla, kGet},
    {"/api/v1/timeseries", "", false, Route::kTimeseries, kGet},
};

uint8_t MethodBit(std::string_view method) {
  if (method == "GET" || method == "HEAD") return kGet;
  if (method == "POST") return kPost;
  if (method == "DELETE") return kDelete;
  return 0;
}

// The allowed methods joined by `separator`; HEAD (implied by GET) only when asked.
std::string MethodList(uint8_t methods, std::string_view separator, bool with_head) {
  std::string out;
  auto add = [&](std::string_view m) {
    if (!out.empty()) out.append(separator);
    out.append(m);
  };
  if (methods & kGet) {
    add("GET");
    if (with_head) add("HEAD");
  }
  if (methods & kPost) add("POST");
  if (methods & kDelete) add("DELETE");
  return out;
}

// The {id} segment of `path` for `e`, or false when the path does not have this shape.
bool ParamOf(const Entry& e, std::string_view path, std::string_view* param) {
  if (!path.starts_with(e.prefix) || !path.ends_with(e.suffix)) return false;
  if (path.size() <= e.prefix.size() + e.suffix.size()) return false;
  *param = path.substr(e.prefix.size(), path.size() - e.prefix.size() - e.suffix.size());
  return param->find('/') == std::string_view::npos;
}

}  // namespace

RouteMatch MatchRoute(std::string_view method, std::string_view path) {
  RouteMatch m;
  for (const Entry& e : kRoutes) {
    std::string_view param;
    if (e.has_param ? !ParamOf(e, path, &param) : path != e.prefix) continue;
    if ((MethodBit(method) & e.methods) == 0) {
      m.result = RouteMatch::Result::kMethodNotAllowed;
      m.allow = MethodList(e.methods, ", ", true);
      m.allow_text = MethodList(e.methods, " or ", false);
      return m;
    }
    m.route = e.route;
    if (e.has_param) {
      std::optional<std::string> decoded = base::PercentDecode(param);
      if (!decoded) {
        m.result = RouteMatch::Result::kBadParameter;
        return m;
      }
      m.param = std::move(*decoded);
    }
    m.result = RouteMatch::Result::kFound;
    return m;
  }
  return m;
}

}  // namespace speedmon::admin
