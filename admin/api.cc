// The admin API's handlers. See api.h.
#include "admin/api.h"

#include <nlohmann/json.hpp>

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "admin/pool_api.h"
#include "admin/router.h"
#include "admin/status_page.h"
#include "alerting/service.h"
#include "base/boundary.h"
#include "base/json.h"
#include "base/url.h"
#include "metrics/exposition.h"
#include "metrics/scrape.h"
#include "metrics/system_collector.h"
#include "metrics/timeseries.h"
#include "proxy/data_plane.h"
#include "speedrun/service.h"
#include "sysprobe/process_watcher.h"

namespace speedmon::admin {

namespace {

using nlohmann::json;

Response Json(int status, const json& body) {
  Response r;
  r.status = status;
  r.body = base::ToJson(body);
  r.body.push_back('\n');
  return r;
}

Response Error(int status, std::string_view message, std::string_view field = {}) {
  Response r;
  r.status = status;
  r.body = base::JsonError(message, field);
  r.body.push_back('\n');
  return r;
}

// ?limit=N: absent -> fallback; junk, zero or out of size_t -> nullopt.
std::optional<size_t> ParseLimit(const Request& req, size_t fallback) {
  std::optional<std::string_view> param = base::QueryParam(req.query, "limit");
  if (!param) return fallback;
  std::string_view v = *param;
  size_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n == 0) return std::nullopt;
  return n;
}

// The speedrun service's `done` for a write: answers it with WriteResponse.
speedrun::WriteDone AnswerWrite(Responder respond) {
  return [respond = std::move(respond)](base::StatusOr<speedrun::WriteResult> r) {
    respond(WriteResponse(r));
  };
}

// A store read's `done`: 200 with the document, or ErrorResponse.
speedrun::ReadDone AnswerRead(Responder respond) {
  return [respond = std::move(respond)](base::StatusOr<json> r) {
    respond(r.ok() ? Json(200, *r) : ErrorResponse(r.status()));
  };
}

// ?limit=N&cursor=C (and ?type=T for patterns) of a list route.
base::StatusOr<speedrun::ListQuery> ParseListQuery(const Request& req, bool patterns) {
  speedrun::ListQuery q;
  std::optional<size_t> limit = ParseLimit(req, 100);
  if (!limit || *limit > speedrun::kMaxPageSize) {
    return base::InvalidArgumentError("limit must be an integer from 1 to 1000", "limit");
  }
  q.limit = *limit;
  if (std::optional<std::string_view> cursor = base::QueryParam(req.query, "cursor")) {
    std::optional<int64_t> before = speedrun::DecodeCursor(*cursor);
    if (!before) {
      return base::InvalidArgumentError("cursor must be a \"next\" value of an earlier answer",
                                        "cursor");
    }
    q.before = *before;
  }
  if (std::optional<std::string_view> type = base::QueryParam(req.query, "type")) {
    if (!patterns) return base::InvalidArgumentError("type is only for patterns", "type");
    q.type = speedrun::ParsePatternType(*type);
    if (!q.type) {
      return base::InvalidArgumentError(
          "type must be one of movement, battle, menu_navigation, item_usage, dialogue, "
          "optimization",
          "type");
    }
  }
  return q;
}

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Constant time in the token's length, so a wrong guess teaches nothing by timing.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

}  // namespace

bool Api::Authorized(const Request& req, const Responder& respond) const {
  const std::string& token = p_.config->auth_token;
  if (token.empty()) return true;
  std::string_view h = req.Header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() > kBearer.size() && strncasecmp(h.data(), kBearer.data(), kBearer.size()) == 0 &&
      SameToken(h.substr(kBearer.size()), token)) {
    return true;
  }
  Response r = Error(401, "this write needs \"Authorization: Bearer <token>\"");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"speedmon\"");
  respond(std::move(r));
  return false;
}

void Api::Handle(const Request& req, Responder respond) const {
  RouteMatch match = MatchRoute(req.method, req.path);
  switch (match.result) {
    case RouteMatch::Result::kFound:
      break;
    case RouteMatch::Result::kNotFound:
      return respond(Error(404, "no such path: " + req.path));
    case RouteMatch::Result::kMethodNotAllowed: {
      Response r = Error(405, "use " + match.allow_text);
      r.headers.emplace_back("Allow", match.allow);
      return respond(std::move(r));
    }
    case RouteMatch::Result::kBadParameter: {
      const char* field = match.route == Route::kPatternReuse || match.route == Route::kPattern
                              ? "pattern_id"
                          : match.route == Route::kExperiment ? "experiment_id"
                          : match.route == Route::kProcess    ? "name"
                                                              : "id";
      const char* what = match.route == Route::kAlertRule ? "rule id" : field;
      return respond(Error(400, std::string(what) + " has a malformed %-escape", field));
    }
  }
  switch (match.route) {
    case Route::kMetrics: {
      auto format = metrics::NegotiateFormat(req.Header("accept"));
      Response r;
      r.content_type = metrics::ContentType(format);
      metrics::ScrapeBody body =
          metrics::WriteScrape(*p_.data_plane->request_stats(), p_.append_metrics, format,
                               metrics::AcceptsGzip(req.Header("accept-encoding")));
      if (body.text != nullptr) {
        r.owned_body = body.text->view();
        r.body_owner = std::move(body.text);
      } else {
        r.body = std::move(body.gzip);
        r.headers.emplace_back("Content-Encoding", "gzip");
      }
      r.headers.emplace_back("Vary", "Accept, Accept-Encoding");
      return respond(std::move(r));
    }
    case Route::kStatusPage: {
      Response r;
      r.content_type = "text/html; charset=utf-8";
      r.body = StatusPageHtml();
      return respond(std::move(r));
    }
    case Route::kHealthz: {
      return respond(Json(200, {{"status", "ok"}}));
    }
    case Route::kReady: {
      const proxy::Topology& topology = p_.data_plane->topology();
      int healthy = topology.HealthyCount();
      bool listening = p_.serving() && p_.data_plane->accepting();
      // Monitor-only (no listeners): nothing to forward to, ready once serving.
      bool ready = p_.data_plane->listeners().empty() ? p_.serving() : listening && healthy > 0;
      return respond(Json(ready ? 200 : 503, {{"ready", ready},
                                              {"listeners_up", listening},
                                              {"healthy_endpoints", healthy},
                                              {"endpoints", topology.EndpointCount()}}));
    }
    case Route::kUpstreams: {
      const proxy::Topology& topology = p_.data_plane->topology();
      auto summaries = p_.data_plane->request_stats()->Summaries();
      json ups = json::array();
      for (const proxy::UpstreamState& us : topology.upstreams()) {
        json eps = json::array();
        for (const auto& e : us.endpoints) {
          eps.push_back(
              {{"address", e->label}, {"healthy", e->healthy.load(std::memory_order_relaxed)}});
        }
        json routes = json::array();
        for (const auto& s : summaries) {
          if (s.upstream != us.config.name) continue;
          double success = s.success_percent();  // 2xx and 3xx only
          routes.push_back({{"route", s.route},
                            {"requests", s.requests},
                            {"errors_5xx", s.errors5xx},
                            {"success_rate", success},
                            {"request_bytes", s.request_bytes},
                            {"response_bytes", s.response_bytes},
                            {"latency_ms",
                             {{"min", s.min_ms},
                              {"avg", s.avg_ms},
                              {"p50", s.p50_ms},
                              {"p95", s.p95_ms},
                              {"p99", s.p99_ms},
                              {"max", s.max_ms}}}});
        }
        json listeners = json::array();
        for (const config::ListenerConfig& l : p_.data_plane->listeners()) {
          if (l.upstream != us.config.name) continue;
          listeners.push_back({{"name", l.name}, {"address", l.address.ToString()}});
        }
        ups.push_back({{"name", us.config.name},
                       {"endpoints", eps},
                       {"listeners", listeners},
                       {"routes", routes}});
      }
      return respond(Json(200, {{"upstreams", ups}}));
    }
    case Route::kRequests: {
      std::optional<size_t> limit = ParseLimit(req, 100);
      if (!limit) return respond(Error(400, "limit must be a positive integer", "limit"));
      limit = std::min<size_t>(*limit, 100000);
      json out = json::array();
      for (const proxy::DataPlane::RecentRequest& named : p_.data_plane->RecentRequests(*limit)) {
        const proxy::RequestRecord& r = named.record;
        out.push_back({{"time", r.unix_time},
                       {"upstream", named.upstream},
                       {"endpoint", named.endpoint.empty() ? json(nullptr) : json(named.endpoint)},
                       {"route", named.route},
                       {"method", metrics::MethodName(static_cast<metrics::Method>(r.method))},
                       {"path", std::string(r.path_view())},
                       {"status", r.status},
                       {"duration_ms", static_cast<double>(r.duration_ns) / 1e6},
                       {"request_bytes", r.request_bytes},
                       {"response_bytes", r.response_bytes},
                       {"request_id", std::string(r.id_view())}});
      }
      return respond(Json(200, {{"requests", out}}));
    }
    case Route::kExperiments: {
      if (req.method == "POST") {
        if (!Authorized(req, respond)) return;
        return p_.speedrun->PostExperiments(req.body, req.Header("content-type"),
                                            AnswerWrite(respond));
      }
      base::StatusOr<speedrun::ListQuery> q = ParseListQuery(req, false);
      if (!q.ok()) return respond(ErrorResponse(q.status()));
      return p_.speedrun->ListExperiments(*q, AnswerRead(respond));
    }
    case Route::kExperiment:
      return p_.speedrun->GetExperiment(match.param, AnswerRead(respond));
    case Route::kPatterns: {
      if (req.method == "POST") {
        if (!Authorized(req, respond)) return;
        return p_.speedrun->PostPatterns(req.body, req.Header("content-type"),
                                         AnswerWrite(respond));
      }
      base::StatusOr<speedrun::ListQuery> q = ParseListQuery(req, true);
      if (!q.ok()) return respond(ErrorResponse(q.status()));
      return p_.speedrun->ListPatterns(*q, AnswerRead(respond));
    }
    case Route::kPattern:
      return p_.speedrun->GetPattern(match.param, AnswerRead(respond));
    case Route::kSummary:
      return p_.speedrun->GetSummary(AnswerRead(respond));
    case Route::kEvents: {
      if (!Authorized(req, respond)) return;
      speedrun::BodyLimits limits;
      limits.max_body_bytes = p_.config->max_body_bytes;
      base::StatusOr<DecodedEvents> events =
          ParseEvents(req.body, req.Header("content-type"), limits, NowUnix());
      if (!events.ok()) return respond(ErrorResponse(events.status()));
      EventLog::Result r = p_.events->Record(events->events);
      if (events->single) {
        const PoolEvent& e = events->events[0];
        return respond(Json(r.accepted ? 201 : 200,
                            {{"status", r.accepted ? "created" : "duplicate"},
                             {"event", PoolEventKindName(e.kind)},
                             {"event_id", e.event_id ? json(*e.event_id) : json(nullptr)}}));
      }
      return respond(Json(201, {{"accepted", r.accepted}, {"duplicates", r.duplicates}}));
    }
    case Route::kPatternReuse: {
      if (!Authorized(req, respond)) return;
      return p_.speedrun->PostPatternReuse(match.param, req.Header("Idempotency-Key"),
                                           AnswerWrite(respond));
    }
    case Route::kSystem: {
      auto s = p_.system->sampler().Get();
      json disks = json::array();
      for (const auto& d : s->disks) {
        disks.push_back({{"path", d.path},
                         {"ok", d.ok},
                         {"total_bytes", d.total},
                         {"used_bytes", d.used},
                         {"free_bytes", d.free},
                         {"percent", d.ok ? json(d.percent) : json(nullptr)}});
      }
      return respond(Json(
          200, {{"timestamp", s->timestamp},
                {"cpu_percent", s->cpu_ok ? json(s->cpu_percent) : json(nullptr)},
                {"cpu_count", s->cpu_count},
                {"load_average", {s->load_average_1m, s->load_average_5m, s->load_average_15m}},
                {"memory_total_bytes", s->memory_total},
                {"memory_available_bytes", s->memory_available},
                {"memory_used_bytes", s->memory_used},
                {"memory_percent", s->memory_ok ? json(s->memory_percent) : json(nullptr)},
                {"swap_total_bytes", s->swap_total},
                {"swap_used_bytes", s->swap_used},
                {"swap_percent", s->swap_percent},
                {"disks", disks},
                {"network",
                 {{"bytes_sent", s->bytes_sent},
                  {"bytes_recv", s->bytes_recv},
                  {"packets_sent", s->packets_sent},
                  {"packets_recv", s->packets_recv}}},
                {"process_count", s->process_count},
                {"boot_time", s->boot_time},
                {"uptime_seconds", s->uptime_seconds}}));
    }
    case Route::kProcess: {
      if (!Authorized(req, respond)) return;
      base::Status removed = p_.system->RemoveProcess(match.param);
      if (!removed.ok()) return respond(ErrorResponse(removed));
      return respond(Json(200, {{"deleted", match.param}}));
    }
    case Route::kProcesses: {
      if (req.method == "POST") {
        if (!Authorized(req, respond)) return;
        base::StatusOr<ProcessWatch> watch = ParseProcessWatch(req.body);
        if (!watch.ok()) return respond(ErrorResponse(watch.status()));
        base::StatusOr<sysprobe::ProcessWatcher> watcher =
            sysprobe::ProcessWatcher::Create(watch->selector);
        if (!watcher.ok()) return respond(ErrorResponse(watcher.status()));
        metrics::WatchedProcess w;
        w.name = watch->name;
        w.watcher = std::make_unique<sysprobe::ProcessWatcher>(std::move(watcher).value());
        w.from_api = true;
        w.selector = sysprobe::SelectorText(watch->selector);
        base::StatusOr<bool> added = p_.system->AddProcess(std::move(w));
        if (!added.ok()) return respond(ErrorResponse(added.status()));
        const metrics::WatchedProcess& p =
            *std::find_if(p_.system->processes().begin(), p_.system->processes().end(),
                          [&](const metrics::WatchedProcess& x) { return x.name == watch->name; });
        return respond(
            Json(*added ? 201 : 200, {{"status", *added ? "created" : "duplicate"},
                                      {"name", p.name},
                                      {"selector", p.selector},
                                      {"running", p.last.found},
                                      {"pid", p.last.found ? json(p.last.pid) : json(nullptr)}}));
      }
      p_.system->SampleProcesses();
      json procs = json::array();
      for (const auto& p : p_.system->processes()) {
        const auto& x = p.last;
        procs.push_back({{"name", p.name},
                         {"running", x.found},
                         {"pid", x.found ? json(x.pid) : json(nullptr)},
                         {"state", x.found ? json(std::string(1, x.state)) : json(nullptr)},
                         {"cpu_seconds", x.cpu_seconds},
                         {"resident_bytes", x.resident_bytes},
                         {"virtual_bytes", x.virtual_bytes},
                         {"threads", x.threads},
                         {"open_fds", x.open_fds},
                         {"start_time", x.start_time},
                         {"restarts", x.restarts},
                         {"origin", p.from_api ? "api" : "config"}});
      }
      json eps = json::array();
      for (const auto& h : p_.data_plane->health().Snapshot()) {
        eps.push_back(
            {{"upstream", h.upstream},
             {"endpoint", h.endpoint},
             {"health_checked", h.checked},
             {"healthy", h.healthy},
             {"checks", h.checks},
             {"check_failures", h.check_failures},
             {"failures", h.failures},
             {"last_check", h.last_check_unix > 0 ? json(h.last_check_unix) : json(nullptr)},
             {"last_result", h.last_result.empty() ? json(nullptr) : json(h.last_result)},
             {"last_status", h.last_status},
             {"startup_seconds",
              h.last_startup_seconds >= 0 ? json(h.last_startup_seconds) : json(nullptr)}});
      }
      return respond(Json(200, {{"processes", procs},
                                {"endpoints", eps},
                                {"healthy_endpoints", p_.data_plane->health().healthy()},
                                {"total_endpoints", p_.data_plane->health().total()}}));
    }
    case Route::kAlerts: {
      Response r;
      r.body = p_.alerts->AlertsJson(std::chrono::system_clock::now());
      r.body.push_back('\n');
      return respond(std::move(r));
    }
    case Route::kAlertRules: {
      if (req.method == "POST") {
        if (!Authorized(req, respond)) return;
        base::StatusOr<alerting::Rule> added = p_.alerts->AddRule(req.body);
        if (!added.ok()) return respond(ErrorResponse(added.status()));
        return respond(Json(201, alerting::RuleToJson(*added)));
      }
      Response r;
      r.body = p_.alerts->RulesJson();
      r.body.push_back('\n');
      return respond(std::move(r));
    }
    case Route::kAlertRule: {
      if (!Authorized(req, respond)) return;
      base::Status removed = p_.alerts->RemoveRule(match.param, std::chrono::system_clock::now());
      if (!removed.ok()) return respond(ErrorResponse(removed));
      return respond(Json(200, {{"deleted", match.param}}));
    }
    case Route::kSla:
      return respond(Json(200, p_.speedrun->GetSla()));
    case Route::kTimeseries:
      return respond(Json(200, p_.timeseries->ToJson()));
  }
}

int HttpStatusFor(base::StatusCode code) {
  switch (code) {
    case base::StatusCode::kOk:
      return 200;
    case base::StatusCode::kInvalidArgument:
      return 400;
    case base::StatusCode::kUnauthenticated:
      return 401;
    case base::StatusCode::kNotFound:
      return 404;
    case base::StatusCode::kAlreadyExists:
      return 409;
    case base::StatusCode::kFailedPrecondition:
      return 409;
    case base::StatusCode::kTooLarge:
      return 413;
    case base::StatusCode::kUnsupportedFormat:
      return 415;
    case base::StatusCode::kUnavailable:
      return 503;
    case base::StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Response ErrorResponse(const base::Status& status) {
  return Error(HttpStatusFor(status.code()), status.message(), status.field());
}

Response WriteResponse(const base::StatusOr<speedrun::WriteResult>& result) {
  if (!result.ok()) return ErrorResponse(result.status());
  using Kind = speedrun::WriteResult::Kind;
  bool created = result->kind == Kind::kCreated || result->kind == Kind::kBatch;
  return Json(created ? 201 : 200, speedrun::ToJson(*result));
}

}  // namespace speedmon::admin
