// The proxy's fixed shape, built once from the config on the main thread and then shared
// read-only by every thread: upstreams with their endpoints, routes, and the listener ->
// upstream map. The only mutable part is each endpoint's health flag: written by the
// health checker (main thread), read by workers without locks. Endpoint addresses are
// not here: names are resolved again and again (proxy/resolver.h), and each worker holds
// the latest AddressTable it was sent.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "metrics/request_stats.h"

namespace speedmon::proxy {

// A resolved socket address, ready for bind() or connect().
struct SocketAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct EndpointState {
  std::string label;  // "host:port" as configured; the `endpoint` label value
  std::atomic<bool> healthy{true};
};

struct UpstreamState {
  config::UpstreamConfig config;
  std::vector<std::unique_ptr<EndpointState>> endpoints;
};

class Topology {
 public:
  // Fails with kInvalidArgument for a listener naming an upstream the config does not
  // define (config::Load refuses such a config). Resolves nothing.
  static base::StatusOr<std::unique_ptr<Topology>> Build(const config::Config& config);

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

// Resolves a config address to its first socket address (blocking getaddrinfo): for
// listeners, and IP-literal endpoints. kUnavailable "cannot resolve host:port: <reason>".
base::StatusOr<SocketAddress> Resolve(const config::Address& address);
// Every address getaddrinfo gives, in its order (Resolve takes the first). "cannot resolve
// host:port: <reason>": kNotFound when the answer is that the name has no address,
// kUnavailable when the lookup itself failed (a timeout, a server failure).
base::StatusOr<std::vector<SocketAddress>> ResolveEvery(const config::Address& address);

}  // namespace speedmon::proxy
