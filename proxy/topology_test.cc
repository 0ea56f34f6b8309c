#include "proxy/topology.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace speedmon::proxy {
namespace {

config::ListenerConfig Listener(const char* name, uint16_t port, const char* upstream) {
  config::ListenerConfig l;
  l.name = name;
  l.address = config::Address{"127.0.0.1", port};
  l.upstream = upstream;
  return l;
}

config::RouteConfig Route(const char* name, const char* prefix) {
  config::RouteConfig r;
  r.name = name;
  r.prefix = prefix;
  return r;
}

config::Config TwoUpstreams() {
  config::Config c;
  config::UpstreamConfig a;
  a.name = "emu-a";
  a.endpoints = {config::Address{"127.0.0.1", 8081}, config::Address{"127.0.0.1", 8082}};
  config::UpstreamConfig b;
  b.name = "emu-b";
  b.endpoints = {config::Address{"::1", 9000}};
  c.upstreams = {a, b};
  c.routes = {Route("initialize", "/initialize"), Route("action", "/action"),
              Route("actions", "/actions"),  // never matched: /action comes first
              Route("root_status", "/status")};
  c.listeners = {Listener("to-b", 18081, "emu-b"), Listener("to-a", 18082, "emu-a")};
  return c;
}

std::unique_ptr<Topology> Build(const config::Config& c) {
  base::StatusOr<std::unique_ptr<Topology>> t = Topology::Build(c);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(TopologyRouteTest, FirstPrefixInConfigOrderWinsOtherwiseOther) {
  auto t = Build(TwoUpstreams());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->route_names(),
            (std::vector<std::string>{"initialize", "action", "actions", "root_status", "other"}));
  EXPECT_EQ(t->RouteIndex("/initialize"), 0);
  EXPECT_EQ(t->RouteIndex("/initialize?seed=1"), 0);
  EXPECT_EQ(t->RouteIndex("/action"), 1);
  EXPECT_EQ(t->RouteIndex("/actions/7"), 1);  // a plain prefix: /action starts it
  EXPECT_EQ(t->RouteIndex("/status"), 3);
  EXPECT_EQ(t->RouteIndex("/statusx"), 3);
}

TEST(TopologyRouteTest, UnmatchedPathsAreOther) {
  auto t = Build(TwoUpstreams());
  ASSERT_NE(t, nullptr);
  const int other = static_cast<int>(t->route_names().size()) - 1;
  EXPECT_EQ(other, 4);
  EXPECT_EQ(t->RouteIndex("/"), other);
  EXPECT_EQ(t->RouteIndex(""), other);
  EXPECT_EQ(t->RouteIndex("/act"), other);     // shorter than every prefix
  EXPECT_EQ(t->RouteIndex("/Status"), other);  // case-sensitive
  EXPECT_EQ(t->RouteIndex("*"), other);        // OPTIONS *
  EXPECT_EQ(t->route_names()[other], "other");
}

TEST(TopologyRouteTest, NoRoutesMeansEverythingIsOther) {
  config::Config c = TwoUpstreams();
  c.routes.clear();
  auto t = Build(c);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->route_names(), std::vector<std::string>{"other"});
  EXPECT_EQ(t->RouteIndex("/initialize"), 0);
}

TEST(TopologyUpstreamTest, ListenersMapToUpstreamsByName) {
  auto t = Build(TwoUpstreams());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ListenerUpstream(0), 1);  // to-b
  EXPECT_EQ(t->ListenerUpstream(1), 0);  // to-a
  ASSERT_EQ(t->upstreams().size(), 2u);
  EXPECT_EQ(t->upstream(0).config.name, "emu-a");
  EXPECT_EQ(t->upstream(1).config.name, "emu-b");
}

TEST(TopologyUpstreamTest, EndpointsAreLabelledAsConfigured) {
  auto t = Build(TwoUpstreams());
  ASSERT_NE(t, nullptr);
  const UpstreamState& a = t->upstream(0);
  ASSERT_EQ(a.endpoints.size(), 2u);
  EXPECT_EQ(a.endpoints[0]->label, "127.0.0.1:8081");
  EXPECT_EQ(a.endpoints[1]->label, "127.0.0.1:8082");
  const UpstreamState& b = t->upstream(1);
  ASSERT_EQ(b.endpoints.size(), 1u);
  EXPECT_EQ(b.endpoints[0]->label, "[::1]:9000");
  // The metrics layout lists the same names.
  EXPECT_EQ(t->layout().upstreams, (std::vector<std::string>{"emu-a", "emu-b"}));
  EXPECT_EQ(t->layout().endpoints[0],
            (std::vector<std::string>{"127.0.0.1:8081", "127.0.0.1:8082"}));
  EXPECT_EQ(t->layout().routes, t->route_names());
}

TEST(TopologyUpstreamTest, HealthyCountFollowsTheFlags) {
  auto t = Build(TwoUpstreams());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->EndpointCount(), 3);
  EXPECT_EQ(t->HealthyCount(), 3);  // healthy until a health check says otherwise
  t->upstream(0).endpoints[1]->healthy.store(false);
  EXPECT_EQ(t->HealthyCount(), 2);
}

TEST(TopologyUpstreamTest, UnknownUpstreamIsAnError) {
  config::Config c = TwoUpstreams();
  c.listeners.push_back(Listener("lost", 18083, "emu-z"));
  EXPECT_EQ(Topology::Build(c).status(),
            base::InvalidArgumentError("listener lost names unknown upstream emu-z"));
}

}  // namespace
}  // namespace speedmon::proxy
