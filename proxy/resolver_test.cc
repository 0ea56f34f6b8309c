#include "proxy/resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <uv.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace speedmon::proxy {
namespace {

SocketAddress V4(const char* ip, uint16_t port) {
  SocketAddress a;
  auto* s = reinterpret_cast<sockaddr_in*>(&a.addr);
  s->sin_family = AF_INET;
  s->sin_port = htons(port);
  inet_pton(AF_INET, ip, &s->sin_addr);
  a.len = sizeof(sockaddr_in);
  return a;
}

// The seam: answers from a map the test edits; a name it lacks does not resolve.
class FakeResolver final : public Resolver {
 public:
  base::StatusOr<std::vector<SocketAddress>> Resolve(const config::Address& address) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_[address.host];
    if (unanswered_.contains(address.host)) {
      return base::UnavailableError("cannot resolve " + address.ToString() + ": timed out");
    }
    auto it = answers_.find(address.host);
    if (it == answers_.end()) {
      return base::NotFoundError("cannot resolve " + address.ToString() + ": no such name");
    }
    std::vector<SocketAddress> out;
    for (const std::string& ip : it->second) out.push_back(V4(ip.c_str(), address.port));
    return out;
  }
  void Set(const std::string& host, std::vector<std::string> ips) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_[host] = std::move(ips);
  }
  void Remove(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.erase(host);
  }
  // Lookups of `host` fail without an answer (a DNS server timing out) until Answer.
  void Unanswered(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    unanswered_.insert(host);
  }
  void Answer(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    unanswered_.erase(host);
  }
  int calls(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[host];
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> answers_;
  std::set<std::string> unanswered_;
  std::map<std::string, int> calls_;
};

double Value(prometheus::Registry& registry, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label) have[l.name] = l.value;
      if (have != labels) continue;
      return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return -1;  // no such series
}

class EndpointResolverTest : public ::testing::Test {
 protected:
  void SetUp() override { uv_loop_init(&loop_); }
  void TearDown() override {
    if (resolver_) resolver_->Stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    resolver_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void Make(std::vector<config::Address> endpoints) {
    config::UpstreamConfig u;
    u.name = "emu";
    u.endpoints = std::move(endpoints);
    u.dns_refresh = config::Duration(100);
    resolver_ = std::make_unique<EndpointResolver>(
        &loop_, std::vector<config::UpstreamConfig>{u}, fake_, families_,
        [this](AddressTablePtr t) { published_.push_back(std::move(t)); });
  }
  // One refresh on the thread pool, run to its end on this loop.
  void RefreshAndWait() {
    uint64_t before = resolver_->resolutions();
    resolver_->RefreshUpstream(0);
    while (resolver_->resolutions() == before) uv_run(&loop_, UV_RUN_ONCE);
  }
  double Resolutions(const char* endpoint, const char* result) {
    return Value(registry_, "pokemon_speedrun_upstream_dns_resolutions_total",
                 {{"upstream", "emu"}, {"endpoint", endpoint}, {"result", result}});
  }
  double Addresses(const char* endpoint) {
    return Value(registry_, "pokemon_speedrun_upstream_endpoint_addresses",
                 {{"upstream", "emu"}, {"endpoint", endpoint}});
  }

  uv_loop_t loop_;
  prometheus::Registry registry_;
  metrics::FamilySet families_{registry_};
  std::shared_ptr<FakeResolver> fake_ = std::make_shared<FakeResolver>();
  std::unique_ptr<EndpointResolver> resolver_;
  std::vector<AddressTablePtr> published_;
};

TEST_F(EndpointResolverTest, EveryAddressOfANameIsKeptAndLiteralsAreNotLookedUp) {
  fake_->Set("emu.test", {"10.0.0.1", "10.0.0.2"});
  Make({config::Address{"emu.test", 8081}, config::Address{"127.0.0.1", 9000}});
  // Known labels exist at 0 before any resolution.
  EXPECT_EQ(Resolutions("emu.test:8081", "success"), 0);
  EXPECT_EQ(Resolutions("emu.test:8081", "failure"), 0);
  EXPECT_EQ(Resolutions("127.0.0.1:9000", "success"), -1);  // a literal is never resolved
  resolver_->ResolveAll();
  AddressTablePtr t = resolver_->table();
  ASSERT_EQ(t->at(0, 0).size(), 2u);
  EXPECT_EQ(FormatSocketAddress(t->at(0, 0)[0]), "10.0.0.1:8081");
  EXPECT_EQ(FormatSocketAddress(t->at(0, 0)[1]), "10.0.0.2:8081");
  ASSERT_EQ(t->at(0, 1).size(), 1u);
  EXPECT_EQ(FormatSocketAddress(t->at(0, 1)[0]), "127.0.0.1:9000");
  EXPECT_EQ(fake_->calls("127.0.0.1"), 0);
  EXPECT_EQ(Resolutions("emu.test:8081", "success"), 1);
  EXPECT_EQ(Addresses("emu.test:8081"), 2);
  EXPECT_EQ(Addresses("127.0.0.1:9000"), 1);
  EXPECT_TRUE(published_.empty());  // the start's table is read, not published
}

TEST_F(EndpointResolverTest, ANameThatDoesNotResolveIsAnEndpointWithoutAddressesNotAnError) {
  Make({config::Address{"missing.test", 8081}, config::Address{"127.0.0.1", 9000}});
  resolver_->ResolveAll();
  EXPECT_TRUE(resolver_->table()->at(0, 0).empty());
  EXPECT_EQ(resolver_->table()->at(0, 1).size(), 1u);
  EXPECT_EQ(Resolutions("missing.test:8081", "failure"), 1);
  EXPECT_EQ(Resolutions("missing.test:8081", "success"), 0);
  EXPECT_EQ(Addresses("missing.test:8081"), 0);
  // Still failing: counted again, no change published.
  RefreshAndWait();
  EXPECT_EQ(Resolutions("missing.test:8081", "failure"), 2);
  EXPECT_TRUE(published_.empty());
  // It appears: published, with its address.
  fake_->Set("missing.test", {"10.0.0.9"});
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 1u);
  ASSERT_EQ(published_[0]->at(0, 0).size(), 1u);
  EXPECT_EQ(FormatSocketAddress(published_[0]->at(0, 0)[0]), "10.0.0.9:8081");
  EXPECT_EQ(Addresses("missing.test:8081"), 1);
}

TEST_F(EndpointResolverTest, AMovedNameIsPublishedOnceAndTheOldTableStaysAsItWas) {
  fake_->Set("emu.test", {"10.0.0.1"});
  Make({config::Address{"emu.test", 8081}});
  resolver_->ResolveAll();
  AddressTablePtr before = resolver_->table();
  RefreshAndWait();  // same answer: nothing published, nothing changed
  EXPECT_TRUE(published_.empty());
  EXPECT_EQ(Value(registry_, "pokemon_speedrun_upstream_dns_changes_total",
                  {{"upstream", "emu"}, {"endpoint", "emu.test:8081"}}),
            0);
  fake_->Set("emu.test", {"10.0.0.2", "10.0.0.3"});
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0], resolver_->table());
  ASSERT_EQ(published_[0]->at(0, 0).size(), 2u);
  EXPECT_EQ(FormatSocketAddress(published_[0]->at(0, 0)[0]), "10.0.0.2:8081");
  // A worker still holding the old table sees what it saw (immutable snapshots).
  ASSERT_EQ(before->at(0, 0).size(), 1u);
  EXPECT_EQ(FormatSocketAddress(before->at(0, 0)[0]), "10.0.0.1:8081");
  EXPECT_TRUE(before->Contains(0, 0, V4("10.0.0.1", 8081).addr, sizeof(sockaddr_in)));
  EXPECT_FALSE(published_[0]->Contains(0, 0, V4("10.0.0.1", 8081).addr, sizeof(sockaddr_in)));
  EXPECT_EQ(Value(registry_, "pokemon_speedrun_upstream_dns_changes_total",
                  {{"upstream", "emu"}, {"endpoint", "emu.test:8081"}}),
            1);
  // The name goes away: the endpoint is left without addresses, published.
  fake_->Remove("emu.test");
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_TRUE(published_[1]->at(0, 0).empty());
  EXPECT_EQ(Resolutions("emu.test:8081", "failure"), 1);
  EXPECT_EQ(Resolutions("emu.test:8081", "success"), 3);
}

TEST_F(EndpointResolverTest, ALookupWithoutAnAnswerKeepsTheLastGoodAddresses) {
  fake_->Set("emu.test", {"10.0.0.1", "10.0.0.2"});
  Make({config::Address{"emu.test", 8081}});
  resolver_->ResolveAll();
  fake_->Unanswered("emu.test");
  RefreshAndWait();
  RefreshAndWait();
  // Counted each time, nothing published: the workers keep both addresses.
  EXPECT_EQ(Resolutions("emu.test:8081", "failure"), 2);
  EXPECT_TRUE(published_.empty());
  ASSERT_EQ(resolver_->table()->at(0, 0).size(), 2u);
  EXPECT_EQ(Addresses("emu.test:8081"), 2);
  EXPECT_EQ(Value(registry_, "pokemon_speedrun_upstream_dns_changes_total",
                  {{"upstream", "emu"}, {"endpoint", "emu.test:8081"}}),
            0);
  // Answered again with one address gone: that is a change.
  fake_->Answer("emu.test");
  fake_->Set("emu.test", {"10.0.0.2"});
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 1u);
  ASSERT_EQ(published_[0]->at(0, 0).size(), 1u);
  EXPECT_EQ(FormatSocketAddress(published_[0]->at(0, 0)[0]), "10.0.0.2:8081");
  // Unanswered, then answered that the name is gone: only the answer empties it.
  fake_->Unanswered("emu.test");
  RefreshAndWait();
  EXPECT_EQ(published_.size(), 1u);
  fake_->Answer("emu.test");
  fake_->Remove("emu.test");
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_TRUE(published_[1]->at(0, 0).empty());
  EXPECT_EQ(Addresses("emu.test:8081"), 0);
  EXPECT_EQ(Resolutions("emu.test:8081", "failure"), 4);
}

TEST_F(EndpointResolverTest, ALookupWithoutAnAnswerAtStartLeavesNoAddress) {
  // Nothing to keep yet: the endpoint starts without addresses, as for an unknown name.
  fake_->Set("emu.test", {"10.0.0.1"});
  fake_->Unanswered("emu.test");
  Make({config::Address{"emu.test", 8081}});
  resolver_->ResolveAll();
  EXPECT_TRUE(resolver_->table()->at(0, 0).empty());
  EXPECT_EQ(Resolutions("emu.test:8081", "failure"), 1);
  fake_->Answer("emu.test");
  RefreshAndWait();
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0]->at(0, 0).size(), 1u);
}

TEST_F(EndpointResolverTest, TheTimerRefreshesEveryPeriodUntilStopped) {
  fake_->Set("emu.test", {"10.0.0.1"});
  Make({config::Address{"emu.test", 8081}});
  resolver_->ResolveAll();
  resolver_->Start();
  fake_->Set("emu.test", {"10.0.0.4"});
  while (published_.empty()) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(FormatSocketAddress(published_[0]->at(0, 0)[0]), "10.0.0.4:8081");
  resolver_->Stop();
  uv_run(&loop_, UV_RUN_DEFAULT);  // returns: the timer is closed, nothing else is armed
  int calls = fake_->calls("emu.test");
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(fake_->calls("emu.test"), calls);
}

TEST(SystemResolverTest, ResolvesLiteralsWithoutALookup) {
  auto r = SystemResolver();
  auto a = r->Resolve(config::Address{"127.0.0.1", 81});
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ(FormatSocketAddress((*a)[0]), "127.0.0.1:81");
  EXPECT_TRUE(IsIpLiteral("::1"));
  EXPECT_TRUE(IsIpLiteral("10.1.2.3"));
  EXPECT_FALSE(IsIpLiteral("emulator-1"));
}

}  // namespace
}  // namespace speedmon::proxy
