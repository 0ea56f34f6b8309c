// The proxy's fixed shape, built once from the config on the main thread and then shared
// read-only by every thread: upstreams with resolved endpoint addresses, routes, and
// the listener -> upstream map. The only mutable part is each endpoint's health flag:
// written by the health checker (main thread), read by workers without locks.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "metrics/request_stats.h"

namespace speedmon::proxy {

struct EndpointState {
  std::string label;  // "host:port" as configured; the `endpoint` label value
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::atomic<bool> healthy{true};
};

struct UpstreamState {
  config::UpstreamConfig config;
  std::vector<std::unique_ptr<EndpointState>> endpoints;
};

class Topology {
 public:
  // Resolves every endpoint address (blocking getaddrinfo; at start only). On failure
  // returns null and sets *error.
  static std::unique_ptr<Topology> Build(const config::Config& config, std::string* error);

  const std::vector<UpstreamState>& upstreams() const { return upstreams_; }
  UpstreamState& upstream(int i) { return upstreams_[i]; }
  const UpstreamState& upstream(int i) const { return upstreams_[i]; }
  // Upstream index of each listener, in config order.
  int ListenerUpstream(int listener) const { return listener_upstream_[listener]; }
  // The route label index for a request target: the first route whose prefix starts
  // the path; routes().size()-1 ("other") when none does.
  int RouteIndex(std::string_view target) const;
  const std::vector<std::string>& route_names() const { return layout_.routes; }
  const metrics::StatsLayout& layout() const { return layout_; }
  int HealthyCount() const;
  int EndpointCount() const;

 private:
  std::vector<UpstreamState> upstreams_;
  std::vector<int> listener_upstream_;
  std::vector<std::string> route_prefixes_;
  metrics::StatsLayout layout_;
};

// Resolves a config address to a socket address. false (and *error) on failure.
bool Resolve(const config::Address& address, sockaddr_storage* out, socklen_t* len,
             std::string* error);

}  // namespace speedmon::proxy
