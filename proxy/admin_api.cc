// The admin API's handlers: thin — parse the path, call the library, serialise.
// Main thread.
#include <nlohmann/json.hpp>

#include <strings.h>

#include <charconv>

#include "metrics/exposition.h"
#include "proxy/server_impl.h"

namespace speedmon::proxy {

namespace {

using nlohmann::json;

AdminResponse Json(int status, const json& body) {
  AdminResponse r;
  r.status = status;
  r.body = body.dump();
  r.body.push_back('\n');
  return r;
}

AdminResponse Error(int status, std::string_view message, std::string_view field = {}) {
  AdminResponse r;
  r.status = status;
  r.body = JsonError(message, field);
  r.body.push_back('\n');
  return r;
}

// Parses ?limit=N: absent -> fallback; junk, negative or zero -> nullopt.
std::optional<size_t> ParseLimit(const AdminRequest& req, size_t fallback, size_t max) {
  std::string v = req.QueryParam("limit", "");
  if (v.empty()) return fallback;
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

std::vector<prometheus::MetricFamily> ServerImpl::CollectAll() const {
  std::vector<prometheus::MetricFamily> all = request_stats->Collect();
  auto more = registry->Collect();
  all.insert(all.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return all;
}

void ServerImpl::HandleAdmin(const AdminRequest& req, Responder respond) {
  const std::string& path = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";

  if (path == "/metrics") {
    if (!get) return respond(Error(405, "use GET"));
    auto format = metrics::NegotiateFormat(req.Header("accept"));
    AdminResponse r;
    r.content_type = metrics::ContentType(format);
    metrics::Serialize(CollectAll(), format, &r.body);
    if (metrics::AcceptsGzip(req.Header("accept-encoding"))) {
      std::string gz;
      if (metrics::Gzip(r.body, &gz)) {
        r.body.swap(gz);
        r.headers.emplace_back("Content-Encoding", "gzip");
      }
    }
    r.headers.emplace_back("Vary", "Accept, Accept-Encoding");
    return respond(std::move(r));
  }
  if (path == "/healthz") {
    if (!get) return respond(Error(405, "use GET"));
    return respond(Json(200, {{"status", "ok"}}));
  }
  if (path == "/ready") {
    if (!get) return respond(Error(405, "use GET"));
    int healthy = topology->HealthyCount();
    bool ready = listeners_up && !draining && healthy > 0;
    return respond(Json(ready ? 200 : 503, {{"ready", ready},
                                            {"listeners_up", listeners_up && !draining},
                                            {"healthy_endpoints", healthy},
                                            {"endpoints", topology->EndpointCount()}}));
  }
  if (path == "/api/v1/upstreams") {
    if (!get) return respond(Error(405, "use GET"));
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
  if (path == "/api/v1/requests") {
    if (!get) return respond(Error(405, "use GET"));
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
  if (path == "/api/v1/experiments") {
    if (req.method == "POST") {
      if (!Authorized(req, respond)) return;
      return speedrun->PostExperiments(req.body, req.Header("content-type"),
                                       [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
    }
    if (!get) return respond(Error(405, "use GET or POST"));
    return respond(FromAnswer(speedrun->GetExperiments(req.query)));
  }
  if (path == "/api/v1/patterns") {
    if (req.method != "POST") return respond(Error(405, "use POST"));
    if (!Authorized(req, respond)) return;
    return speedrun->PostPatterns(req.body, req.Header("content-type"),
                                  [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
  }
  constexpr std::string_view kPatterns = "/api/v1/patterns/";
  constexpr std::string_view kReuse = "/reuse";
  if (path.starts_with(kPatterns) && path.ends_with(kReuse) &&
      path.size() > kPatterns.size() + kReuse.size()) {
    if (req.method != "POST") return respond(Error(405, "use POST"));
    if (!Authorized(req, respond)) return;
    std::string_view id = std::string_view(path).substr(
        kPatterns.size(), path.size() - kPatterns.size() - kReuse.size());
    if (id.find('/') != std::string_view::npos) return respond(Error(404, "no such path: " + path));
    return speedrun->PostPatternReuse(id,
                                      [respond](speedrun::Answer a) { respond(FromAnswer(a)); });
  }
  if (path == "/api/v1/sla") {
    if (!get) return respond(Error(405, "use GET"));
    return respond(FromAnswer(speedrun->GetSla()));
  }
  respond(Error(404, "no such path: " + path));
}

}  // namespace speedmon::proxy
