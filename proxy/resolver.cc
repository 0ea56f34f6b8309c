// Endpoint name resolution and its periodic refresh. See resolver.h.
#include "proxy/resolver.h"

#include <arpa/inet.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "base/boundary.h"
#include "base/log.h"

namespace speedmon::proxy {

namespace {

bool Less(const SocketAddress& a, const SocketAddress& b) {
  if (a.len != b.len) return a.len < b.len;
  return std::memcmp(&a.addr, &b.addr, a.len) < 0;
}

class GetaddrinfoResolver final : public Resolver {
 public:
  base::StatusOr<std::vector<SocketAddress>> Resolve(const config::Address& address) override {
    base::StatusOr<std::vector<SocketAddress>> every = ResolveEvery(address);
    if (!every.ok()) return every.status();
    std::vector<SocketAddress> out = std::move(every).value();
    std::sort(out.begin(), out.end(), Less);
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
};

std::string Join(const std::vector<SocketAddress>& addrs) {
  if (addrs.empty()) return "nothing";
  std::string s;
  for (const auto& a : addrs) s += (s.empty() ? "" : ", ") + FormatSocketAddress(a);
  return s;
}

}  // namespace

std::shared_ptr<Resolver> SystemResolver() { return std::make_shared<GetaddrinfoResolver>(); }

bool IsIpLiteral(const std::string& host) {
  in6_addr buf;
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.len == b.len && std::memcmp(&a.addr, &b.addr, a.len) == 0;
}

std::string FormatSocketAddress(const SocketAddress& a) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a.addr.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(s6->sin6_port));
  }
  const auto* s4 = reinterpret_cast<const sockaddr_in*>(&a.addr);
  inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(s4->sin_port));
}

bool AddressTable::Contains(int upstream, int endpoint, const sockaddr_storage& addr,
                            socklen_t len) const {
  for (const SocketAddress& a : at(upstream, endpoint)) {
    if (a.len == len && std::memcmp(&a.addr, &addr, len) == 0) return true;
  }
  return false;
}

// One endpoint as the refresher sees it.
struct ResolvedEndpoint {
  config::Address address;
  std::string upstream, label;
  bool is_name = false;
  bool known = false;  // resolved (or failed) at least once: changes are logged after that
  bool failed = false;
  std::string error;
  prometheus::Counter* success = nullptr;  // names only
  prometheus::Counter* failure = nullptr;
  prometheus::Counter* changes = nullptr;
  prometheus::Gauge* addresses = nullptr;
};

class EndpointResolverImpl : public std::enable_shared_from_this<EndpointResolverImpl> {
 public:
  // One refresh of one upstream's names on the pool: what to resolve in, what came out.
  struct Job {
    uv_work_t req;
    std::shared_ptr<EndpointResolverImpl> owner;
    std::shared_ptr<Resolver> resolver;
    int upstream = 0;
    std::vector<int> endpoints;
    std::vector<config::Address> in;
    std::vector<base::StatusOr<std::vector<SocketAddress>>> out;
  };

  uv_loop_t* loop = nullptr;
  std::shared_ptr<Resolver> resolver;
  std::function<void(AddressTablePtr)> on_change;
  std::vector<std::vector<ResolvedEndpoint>> endpoints;  // [upstream][endpoint]
  std::vector<int64_t> refresh_ms;                       // per upstream; 0 = IP literals only
  std::vector<uv_timer_t*> timers;                       // per upstream, null when none
  std::vector<bool> in_flight;                           // per upstream
  std::vector<bool> resolve_at_start;                    // per upstream: a name not known yet
  AddressTablePtr table;
  uint64_t resolutions = 0;
  bool stopped = false;

  // Applies one resolution of endpoint [u][e]; true when its addresses changed.
  bool Apply(int u, int e, const base::StatusOr<std::vector<SocketAddress>>& result,
             AddressTable* next) {
    ResolvedEndpoint& ep = endpoints[u][e];
    ++resolutions;
    std::vector<SocketAddress>& now = next->addresses[u][e];
    const std::string who = "endpoint " + ep.upstream + "/" + ep.label;
    if (!result.ok()) {
      ep.failure->Increment();
      if (result.status().code() != base::StatusCode::kNotFound && !now.empty()) {
        // No answer, so nothing is known to have moved: keep serving the last addresses.
        if (!ep.failed) {
          base::LogWarning(who + ": " + result.status().message() + "; keeping " + Join(now) +
                           " until it resolves");
        }
        ep.failed = true;
        return false;
      }
      bool changed = !now.empty();
      if (changed || !ep.failed || !ep.known) {
        base::LogWarning(who + ": " + result.status().message() +
                         (now.empty() ? "; unhealthy until it resolves"
                                      : "; was " + Join(now) + ", unhealthy until it resolves"));
      }
      ep.failed = true;
      ep.known = true;
      now.clear();
      ep.addresses->Set(0);
      if (changed) ep.changes->Increment();
      return changed;
    }
    ep.success->Increment();
    bool changed = now != *result;
    if (changed || ep.failed || !ep.known) {
      base::LogInfo(who + " resolves to " + Join(*result) +
                    (ep.known ? " (was " + Join(now) + ")" : ""));
    }
    if (changed && ep.known) ep.changes->Increment();
    ep.failed = false;
    ep.known = true;
    now = *result;
    ep.addresses->Set(static_cast<double>(now.size()));
    return changed;
  }

  void Start(int u) {
    if (refresh_ms[u] <= 0 || stopped) return;
    auto* t = new uv_timer_t;
    uv_timer_init(loop, t);
    t->data = this;
    timers[u] = t;
    uint64_t every = static_cast<uint64_t>(refresh_ms[u]);
    uv_timer_start(
        t,
        [](uv_timer_t* timer) {
          auto* self = static_cast<EndpointResolverImpl*>(timer->data);
          base::Guard(base::Component::kHealth, "dns refresh", [&] {
            for (size_t i = 0; i < self->timers.size(); ++i) {
              if (self->timers[i] == timer) self->Refresh(static_cast<int>(i));
            }
          });
        },
        every, every);
  }

  void Refresh(int u) {
    if (stopped || in_flight[u]) return;  // the last one still runs: skip a round
    auto job = std::make_unique<Job>();
    job->owner = shared_from_this();
    job->resolver = resolver;
    job->upstream = u;
    for (size_t e = 0; e < endpoints[u].size(); ++e) {
      if (!endpoints[u][e].is_name) continue;
      job->endpoints.push_back(static_cast<int>(e));
      job->in.push_back(endpoints[u][e].address);
    }
    if (job->in.empty()) return;
    job->req.data = job.get();
    int rc = uv_queue_work(
        loop, &job->req,
        [](uv_work_t* req) {
          auto* j = static_cast<Job*>(req->data);
          // The pool thread's top frame: a resolver that throws fails its names.
          for (const auto& a : j->in) {
            base::StatusOr<std::vector<SocketAddress>> r =
                base::UnavailableError("cannot resolve " + a.ToString() + ": internal error");
            base::Guard(base::Component::kHealth, "dns resolve",
                        [&] { r = j->resolver->Resolve(a); });
            j->out.push_back(std::move(r));
          }
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<Job> j(static_cast<Job*>(req->data));
          EndpointResolverImpl* self = j->owner.get();
          base::Guard(base::Component::kHealth, "dns result", [&] { self->Finish(*j); });
        });
    if (rc != 0) return;
    in_flight[u] = true;
    job.release();  // the after-work callback owns it
  }

  void Finish(const Job& j) {
    in_flight[j.upstream] = false;
    if (stopped || j.out.size() != j.in.size()) return;
    auto next = std::make_shared<AddressTable>(*table);
    bool changed = false;
    for (size_t i = 0; i < j.in.size(); ++i) {
      changed = Apply(j.upstream, j.endpoints[i], j.out[i], next.get()) || changed;
    }
    if (!changed) return;
    table = next;
    if (on_change) on_change(table);
  }
};

EndpointResolver::EndpointResolver(uv_loop_s* loop,
                                   const std::vector<config::UpstreamConfig>& upstreams,
                                   std::shared_ptr<Resolver> resolver, metrics::FamilySet& families,
                                   std::function<void(AddressTablePtr)> on_change)
    : impl_(std::make_shared<EndpointResolverImpl>()) {
  impl_->loop = loop;
  impl_->resolver = std::move(resolver);
  impl_->on_change = std::move(on_change);
  auto& resolutions = families.AddCounter(
      "pokemon_speedrun_upstream_dns_resolutions_total",
      "Resolutions of endpoint host names, by result (success, failure); a name that fails "
      "leaves its endpoint without addresses (unhealthy).");
  auto& changes = families.AddCounter("pokemon_speedrun_upstream_dns_changes_total",
                                      "Times an endpoint's set of resolved addresses changed.");
  auto& addresses = families.AddGauge(
      "pokemon_speedrun_upstream_endpoint_addresses",
      "Addresses an endpoint resolves to now; each carries traffic. 0: its name does not "
      "resolve.");
  auto table = std::make_shared<AddressTable>();
  for (const auto& uc : upstreams) {
    auto& per = impl_->endpoints.emplace_back();
    table->addresses.emplace_back(uc.endpoints.size());
    bool any_name = false;
    for (const auto& a : uc.endpoints) {
      ResolvedEndpoint& ep = per.emplace_back();
      ep.address = a;
      ep.upstream = uc.name;
      ep.label = a.ToString();
      ep.is_name = !IsIpLiteral(a.host);
      any_name = any_name || ep.is_name;
      prometheus::Labels labels{{"upstream", ep.upstream}, {"endpoint", ep.label}};
      ep.addresses = &addresses.Add(labels);
      ep.changes = &changes.Add(labels);
      if (ep.is_name) {
        auto with = [&](const char* result) {
          prometheus::Labels l = labels;
          l["result"] = result;
          return &resolutions.Add(l);
        };
        ep.success = with("success");
        ep.failure = with("failure");
      }
    }
    impl_->refresh_ms.push_back(any_name ? uc.dns_refresh.count() : 0);
  }
  impl_->timers.assign(upstreams.size(), nullptr);
  impl_->in_flight.assign(upstreams.size(), false);
  impl_->resolve_at_start.assign(upstreams.size(), false);
  impl_->table = table;
}

EndpointResolver::~EndpointResolver() { Stop(); }

void EndpointResolver::ResolveAll() {
  auto next = std::make_shared<AddressTable>(*impl_->table);
  for (size_t u = 0; u < impl_->endpoints.size(); ++u) {
    for (size_t e = 0; e < impl_->endpoints[u].size(); ++e) {
      ResolvedEndpoint& ep = impl_->endpoints[u][e];
      const int ui = static_cast<int>(u), ei = static_cast<int>(e);
      if (!ep.is_name) {
        // An IP literal is its own address: parsed here without a lookup, once.
        base::StatusOr<SocketAddress> r = Resolve(ep.address);
        if (r.ok()) {
          next->addresses[u][e] = {*r};
        } else {
          base::LogWarning("endpoint " + ep.upstream + "/" + ep.label + ": " +
                           r.status().message());
        }
        ep.known = true;
        ep.addresses->Set(static_cast<double>(next->addresses[u][e].size()));
        continue;
      }
      impl_->Apply(ui, ei, impl_->resolver->Resolve(ep.address), next.get());
    }
  }
  impl_->table = next;
}

void EndpointResolver::Inherit(const EndpointResolver& previous) {
  std::map<std::string, std::pair<size_t, size_t>> known;  // "host:port" -> [u][e] there
  const EndpointResolverImpl& prev = *previous.impl_;
  for (size_t u = 0; u < prev.endpoints.size(); ++u) {
    for (size_t e = 0; e < prev.endpoints[u].size(); ++e) {
      if (prev.endpoints[u][e].known) known.emplace(prev.endpoints[u][e].label, std::pair{u, e});
    }
  }
  auto next = std::make_shared<AddressTable>(*impl_->table);
  for (size_t u = 0; u < impl_->endpoints.size(); ++u) {
    for (size_t e = 0; e < impl_->endpoints[u].size(); ++e) {
      ResolvedEndpoint& ep = impl_->endpoints[u][e];
      auto it = known.find(ep.label);
      if (!ep.is_name || it == known.end()) {
        if (ep.is_name) {
          impl_->resolve_at_start[u] = true;  // resolved on the pool, not here
          continue;
        }
        base::StatusOr<SocketAddress> r = Resolve(ep.address);  // a literal: no lookup
        if (r.ok()) next->addresses[u][e] = {*r};
        ep.known = true;
        ep.addresses->Set(static_cast<double>(next->addresses[u][e].size()));
        continue;
      }
      const ResolvedEndpoint& was = prev.endpoints[it->second.first][it->second.second];
      next->addresses[u][e] = prev.table->addresses[it->second.first][it->second.second];
      ep.known = true;
      ep.failed = was.failed;
      ep.error = was.error;
      ep.addresses->Set(static_cast<double>(next->addresses[u][e].size()));
    }
  }
  impl_->table = next;
}

void EndpointResolver::Start() {
  for (size_t u = 0; u < impl_->endpoints.size(); ++u) {
    impl_->Start(static_cast<int>(u));
    if (impl_->resolve_at_start[u]) impl_->Refresh(static_cast<int>(u));
  }
}

void EndpointResolver::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (uv_timer_t*& t : impl_->timers) {
    if (t == nullptr) continue;
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    t = nullptr;
  }
}

void EndpointResolver::RefreshUpstream(int upstream) { impl_->Refresh(upstream); }

AddressTablePtr EndpointResolver::table() const { return impl_->table; }

uint64_t EndpointResolver::resolutions() const { return impl_->resolutions; }

}  // namespace speedmon::proxy
