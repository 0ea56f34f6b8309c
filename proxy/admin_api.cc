// The admin API's handlers: thin — parse the path, call the library, serialise.
// Main thread.
#include <nlohmann/json.hpp>

#include <strings.h>

#include <charconv>

#include "admin/router.h"
#include "admin/status_page.h"
#include "base/boundary.h"
#include "base/json.h"
#include "base/url.h"
#include "metrics/exposition.h"
#include "metrics/scrape.h"
#include "proxy/server_impl.h"

namespace speedmon::proxy {

namespace {

using nlohmann::json;

AdminResponse Json(int status, const json& body) {
  AdminResponse r;
  r.status = status;
  r.body = base::ToJson(body);
  r.body.push_back('\n');
  return r;
}

AdminResponse Error(int status, std::string_view message, std::string_view field = {}) {
  AdminResponse r;
  r.status = status;
  r.body = base::JsonError(message, field);
  r.body.push_back('\n');
  return r;
}

// Parses ?limit=N: absent -> fallback; junk, negative or zero -> nullopt.
std::optional<size_t> ParseLimit(const AdminRequest& req, size_t fallback, size_t max) {
  std::optional<std::string_view> param = base::QueryParam(req.query, "limit");
  if (!param) return fallback;
  std::string_view v = *param;
  size_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n == 0) return std::nullopt;
  return std::min(n, max);
}

AdminResponse FromAnswer(const speedrun::Answer& a) {
  AdminResponse r;
  r.status = a.status;
  r.body = a.body;
  r.body.push_back('\n');
  return r;
}

// Constant time in the token's length, so a wrong guess teaches nothing by timing.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

}  // namespace

bool ServerImpl::Authorized(const AdminRequest& req, const Responder& respond) const {
  const std::string& token = config.admin.auth_token;
  if (token.empty()) return true;
  std::string_view h = req.Header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() > kBearer.size() && strncasecmp(h.data(), kBearer.data(), kBearer.size()) == 0 &&
      SameToken(h.substr(kBearer.size()), token)) {
    return true;
  }
  AdminResponse r = Error(401, "this write needs \"Authorization: Bearer <token>\"");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"speedmon\"");
  respond(std::move(r));
  return false;
}

// Every family but the request statistics', which metrics::WriteScrape writes from the
// shards itself, ahead of these.
std::vector<prometheus::MetricFamily> ServerImpl::CollectAll() const {
  std::vector<prometheus::MetricFamily> all = system->Collect();
  auto al = alerts->collectable()->Collect();
  all.insert(all.end(), std::make_move_iterator(al.begin()), std::make_move_iterator(al.end()));
  auto runs = speedrun->CollectMetrics();
  all.insert(all.end(), std::make_move_iterator(runs.begin()), std::make_move_iterator(runs.end()));
  auto more = registry->Collect();
  all.insert(all.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  prometheus::MetricFamily errors{
      "pokemon_speedrun_internal_errors_total",
      "Exceptions caught at a boundary (callback or thread top frame), by component; each "
      "answered one request, closed one connection or dropped one batch.",
      prometheus::MetricType::Counter,
      {}};
  for (int c = 0; c < base::kComponentCount; ++c) {
    auto component = static_cast<base::Component>(c);
    prometheus::ClientMetric m;
    m.label = {{"component", std::string(base::ComponentName(component))}};
    m.counter.value = static_cast<double>(base::ExceptionCount(component));
    errors.metric.push_back(std::move(m));
  }
  all.push_back(std::move(errors));
  return all;
}

void ServerImpl::HandleAdmin(const AdminRequest& req, Responder respond) {
  admin::RouteMatch match = admin::MatchRoute(req.method, req.path);
  switch (match.result) {
    case admin::RouteMatch::Result::kFound:
      break;
    case admin::RouteMatch::Result::kNotFound:
      return respond(Error(404, "no such path: " + req.path));
    case admin::RouteMatch::Result::kMethodNotAllowed: {
      AdminResponse r = Error(405, "use " + match.allow_text);
      r.headers.emplace_back("Allow", match.allow);
      return respond(std::move(r));
    }
    case admin::RouteMatch::Result::kBadParameter:
      return match.route == admin::Route::kPatternReuse
                 ? respond(Error(400, "pattern_id has a malformed %-escape", "pattern_id"))
                 : respond(Error(400, "rule id has a malformed %-escape", "id"));
  }
  using admin::Route;
  switch (match.route) {
    case Route::kMetrics: {
      auto format = metrics::NegotiateFormat(req.Header("accept"));
      AdminResponse r;
      r.content_type = metrics::ContentType(format);
      if (metrics::WriteScrape(*request_stats, CollectAll(), format,
                               metrics::AcceptsGzip(req.Header("accept-encoding")), &r.body)) {
        r.headers.emplace_back("Content-Encoding", "gzip");
      }
      r.headers.emplace_back("Vary", "Accept, Accept-Encoding");
      return respond(std::move(r));
    }
    case Route::kStatusPage: {
      AdminResponse r;
      r.content_type = "text/html; charset=utf-8";
      r.body = admin::StatusPageHtml();
      return respond(std::move(r));
    }
    case Route::kHealthz: {
      return respond(Json(200, {{"status", "ok"}}));
    }
    case Route::kReady: {
      int healthy = topology->HealthyCount();
      bool ready = listeners_up && !draining && healthy > 0;
      return respond(Json(ready ? 200 : 503, {{"ready", ready},
                                              {"listeners_up", listeners_up && !draining},
                                              {"healthy_endpoints", healthy},
                                              {"endpoints", topology->EndpointCount()}}));
    }
    case Route::kUpstreams: {
      auto summaries = request_stats->Summaries();
      json ups = json::array();
      for (size_t u = 0; u < topology->upstreams().size(); ++u) {
        const UpstreamState& us = topology->upstream(static_cast<int>(u));
        json eps = json::array();
        for (const auto& e : us.endpoints) {
          eps.push_back(
              {{"address", e->label}, {"healthy", e->healthy.load(std::memory_order_relaxed)}});
        }
        json routes = json::array();
        for (const auto& s : summaries) {
          if (s.upstream != us.config.name) continue;
          double success = s.requests == 0 ? 0.0
                                           : 100.0 * static_cast<double>(s.requests - s.errors5xx) /
                                                 static_cast<double>(s.requests);
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
        ups.push_back({{"name", us.config.name}, {"endpoints", eps}, {"routes", routes}});
      }
      return respond(Json(200, {{"upstreams", ups}}));
    }
    case Route::kRequests: {
      auto limit = ParseLimit(req, 100, 100000);
      if (!limit) return respond(Error(400, "limit must be a positive integer", "limit"));
      std::vector<RequestRecord> all;
      for (const auto& r : recent) r->Snapshot(&all);
      std::sort(all.begin(), all.end(), [](const RequestRecord& a, const RequestRecord& b) {
        return a.unix_time > b.unix_time;
      });
      if (all.size() > *limit) all.resize(*limit);
      json out = json::array();
      for (const auto& r : all) {
        const UpstreamState& us = topology->upstream(r.upstream);
        out.push_back(
            {{"time", r.unix_time},
             {"upstream", us.config.name},
             {"endpoint", r.endpoint >= 0 ? json(us.endpoints[r.endpoint]->label) : json(nullptr)},
             {"route", topology->route_names()[r.route]},
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
        return speedrun->PostExperiments(req.body, req.Header("content-type"),
                                         [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
      }
      return respond(FromAnswer(speedrun->GetExperiments(req.query)));
    }
    case Route::kPatterns: {
      if (!Authorized(req, respond)) return;
      return speedrun->PostPatterns(req.body, req.Header("content-type"),
                                    [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
    }
    case Route::kPatternReuse: {
      if (!Authorized(req, respond)) return;
      return speedrun->PostPatternReuse(match.param,
                                        [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
    }
    case Route::kSystem: {
      auto s = system->sampler().Get();
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
    case Route::kProcesses: {
      system->SampleProcesses();
      json procs = json::array();
      for (const auto& p : system->processes()) {
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
                         {"restarts", x.restarts}});
      }
      json eps = json::array();
      for (const auto& h : health->Snapshot()) {
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
                                {"healthy_endpoints", health->healthy()},
                                {"total_endpoints", health->total()}}));
    }
    case Route::kAlerts: {
      AdminResponse r;
      r.body = alerts->AlertsJson(std::chrono::system_clock::now());
      r.body.push_back('\n');
      return respond(std::move(r));
    }
    case Route::kAlertRules: {
      if (req.method == "POST") {
        if (!Authorized(req, respond)) return;
        alerting::ApiAnswer a = alerts->AddRule(req.body, std::chrono::system_clock::now());
        return respond(FromAnswer(speedrun::Answer{a.status, a.body}));
      }
      AdminResponse r;
      r.body = alerts->RulesJson();
      r.body.push_back('\n');
      return respond(std::move(r));
    }
    case Route::kAlertRule: {
      if (!Authorized(req, respond)) return;
      alerting::ApiAnswer a = alerts->RemoveRule(match.param, std::chrono::system_clock::now());
      return respond(FromAnswer(speedrun::Answer{a.status, a.body}));
    }
    case Route::kSla:
      return respond(FromAnswer(speedrun->GetSla()));
  }
}

}  // namespace speedmon::proxy
