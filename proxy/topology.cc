// Building the proxy's shape from the config. See topology.h.
#include "proxy/topology.h"

#include <netdb.h>

#include <cstring>

namespace speedmon::proxy {

base::StatusOr<std::vector<SocketAddress>> ResolveEvery(const config::Address& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(address.port);
  int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    std::string message = "cannot resolve " + address.ToString() + ": " + gai_strerror(rc);
    // An answer that the name has no address is news about the name; anything else (a
    // timeout, a server failure, no memory) is news about the lookup only.
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY) {
      return base::NotFoundError(std::move(message));
    }
    return base::UnavailableError(std::move(message));
  }
  std::vector<SocketAddress> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress a;
    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) return base::NotFoundError("cannot resolve " + address.ToString());
  return out;
}

base::StatusOr<SocketAddress> Resolve(const config::Address& address) {
  base::StatusOr<std::vector<SocketAddress>> all = ResolveEvery(address);
  // A listener or an IP literal that cannot be placed is unavailable, whatever the answer.
  if (!all.ok()) return base::UnavailableError(all.status().message());
  return all->front();
}

base::StatusOr<std::unique_ptr<Topology>> Topology::Build(const config::Config& config) {
  auto t = std::make_unique<Topology>();
  t->upstreams_.reserve(config.upstreams.size());
  for (const auto& uc : config.upstreams) {
    UpstreamState& us = t->upstreams_.emplace_back();
    us.config = uc;
    std::vector<std::string> labels;
    for (const auto& addr : uc.endpoints) {
      auto ep = std::make_unique<EndpointState>();
      ep->label = addr.ToString();
      labels.push_back(ep->label);
      us.endpoints.push_back(std::move(ep));
    }
    t->layout_.upstreams.push_back(uc.name);
    t->layout_.endpoints.push_back(std::move(labels));
  }
  for (const auto& r : config.routes) {
    t->layout_.routes.push_back(r.name);
    t->route_prefixes_.push_back(r.prefix);
  }
  t->layout_.routes.push_back("other");
  for (const auto& l : config.listeners) {
    int idx = config.UpstreamIndex(l.upstream);
    if (idx < 0) {
      return base::InvalidArgumentError("listener " + l.name + " names unknown upstream " +
                                        l.upstream);
    }
    t->listener_upstream_.push_back(idx);
  }
  return t;
}

int Topology::RouteIndex(std::string_view target) const {
  for (size_t i = 0; i < route_prefixes_.size(); ++i) {
    if (target.starts_with(route_prefixes_[i])) return static_cast<int>(i);
  }
  return static_cast<int>(route_prefixes_.size());
}

int Topology::HealthyCount() const {
  int n = 0;
  for (const auto& u : upstreams_) {
    for (const auto& e : u.endpoints) n += e->healthy.load(std::memory_order_relaxed) ? 1 : 0;
  }
  return n;
}

int Topology::EndpointCount() const {
  int n = 0;
  for (const auto& u : upstreams_) n += static_cast<int>(u.endpoints.size());
  return n;
}

}  // namespace speedmon::proxy
