// Name resolution for upstream endpoints, behind an interface the tests replace, and the
// refresher that keeps every endpoint's addresses current on the main loop (strict DNS:
// every address a name resolves to carries traffic; a name with no address leaves its
// endpoint with none, which is unhealthy, never a start failure; a lookup that fails
// without an answer, such as a DNS server timing out, keeps the last good addresses, as
// Envoy's strict DNS clusters do, so a resolver's hiccup does not empty a pool that the
// health checks still see serving).
//
// Threads: Resolver::Resolve blocks and runs on libuv's thread pool (uv_queue_work), or
// on the main thread once at start before any loop runs. EndpointResolver is main loop
// only; what it publishes (AddressTable) is immutable and shared with the workers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "metrics/family.h"
#include "proxy/topology.h"

struct uv_loop_s;

namespace speedmon::proxy {

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Every address `address.host` resolves to for TCP on `address.port`, without
  // duplicates and in a stable order (sorted), at least one. Otherwise "cannot resolve
  // host:port: <reason>", kNotFound when the answer is that the name has no address, and
  // kUnavailable when no answer came (a timeout, a server failure): the refresher drops
  // an endpoint's addresses on the first and keeps its last good ones on the second.
  // Blocking; safe from any thread.
  virtual base::StatusOr<std::vector<SocketAddress>> Resolve(const config::Address& address) = 0;
};

// getaddrinfo(3): /etc/hosts, DNS, whatever nsswitch.conf says, read afresh each call.
std::shared_ptr<Resolver> SystemResolver();

// True when `host` is an IPv4 or IPv6 literal (nothing to resolve, ever).
bool IsIpLiteral(const std::string& host);

bool operator==(const SocketAddress& a, const SocketAddress& b);
// "127.0.0.1:8081", "[::1]:8081".
std::string FormatSocketAddress(const SocketAddress& a);

// The addresses of every endpoint, [upstream][endpoint] in config order; an endpoint
// whose name does not resolve has none. Never changed once published.
struct AddressTable {
  std::vector<std::vector<std::vector<SocketAddress>>> addresses;
  const std::vector<SocketAddress>& at(int upstream, int endpoint) const {
    return addresses[upstream][endpoint];
  }
  bool Contains(int upstream, int endpoint, const sockaddr_storage& addr, socklen_t len) const;
};
using AddressTablePtr = std::shared_ptr<const AddressTable>;

class EndpointResolverImpl;

class EndpointResolver {
 public:
  // `on_change` runs on the main loop with each new table (after a refresh changed any
  // endpoint's addresses, or its resolvability). Metrics register on `families`:
  // pokemon_speedrun_upstream_dns_resolutions_total{upstream,endpoint,result} (names
  // only; success and failure exist from the start at 0),
  // pokemon_speedrun_upstream_dns_changes_total{upstream,endpoint} and
  // pokemon_speedrun_upstream_endpoint_addresses{upstream,endpoint}.
  EndpointResolver(uv_loop_s* loop, const std::vector<config::UpstreamConfig>& upstreams,
                   std::shared_ptr<Resolver> resolver, metrics::FamilySet& families,
                   std::function<void(AddressTablePtr)> on_change);
  ~EndpointResolver();
  EndpointResolver(const EndpointResolver&) = delete;
  EndpointResolver& operator=(const EndpointResolver&) = delete;

  // Resolves every endpoint now, blocking: at start, before any loop runs, so that
  // the first requests find the addresses (as a strict-DNS cluster warms before its
  // listeners take traffic). A name that fails is logged and counted, never an error.
  void ResolveAll();
  // Instead of ResolveAll, for a reload: every endpoint `previous` also has (the same
  // host:port) starts with its addresses there, IP literals are parsed, and a name new
  // to this config starts without addresses and is resolved on the pool as soon as
  // Start() runs. Never blocks.
  void Inherit(const EndpointResolver& previous);
  // Starts the refresh timers (each upstream every `dns_refresh`; none for an upstream
  // of IP literals only).
  void Start();
  // Closes the timers (the loop finishes them); a resolution running on the pool is
  // dropped when it returns. Idempotent.
  void Stop();
  // Resolves the names of `upstream` now on the thread pool (tests; the timers call it).
  void RefreshUpstream(int upstream);

  AddressTablePtr table() const;
  // Completed resolutions of names, successful or not (tests wait on it).
  uint64_t resolutions() const;

 private:
  std::shared_ptr<EndpointResolverImpl> impl_;
};

}  // namespace speedmon::proxy
