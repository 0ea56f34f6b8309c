// Payloads, the HTTP client and the notifier against real HTTP servers on 127.0.0.1.
// Test thread plus the servers' and the notifier's threads.
#include "alerting/notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "alerting/http_client.h"
#include "alerting/payload.h"
#include "alerting/test_receiver.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::TestReceiver;

constexpr milliseconds kWait{10000};  // an upper bound for things to happen, not a gate

Time At(int64_t ms) { return Time{} + milliseconds(ms); }

AlertNotice Notice(const std::string& name, bool resolved = false, bool transition = true) {
  AlertNotice n;
  n.labels = {{"alertname", name}, {"severity", "critical"}, {"rule_id", "r_" + name}};
  n.annotations = {{"summary", name + " summary"}, {"description", "shared"}};
  n.fingerprint = Fingerprint(n.labels);
  n.starts_at = At(1767225600000);         // 2026-01-01T00:00:00.000Z
  n.ends_at = At(1767225600000 + 240123);  // 2026-01-01T00:04:00.123Z
  n.resolved = resolved;
  n.transition = transition;
  n.generator_url = "http://127.0.0.1:8000/api/v1/alerts";
  return n;
}

// Polls `pred` until true or kWait has passed.
template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

// A port nobody listens on (bound once, then released).
uint16_t FreePort() {
  TestReceiver r;
  return r.port();
}

// One connection, one canned response, written in pieces: for the client's parser.
class CannedServer {
 public:
  explicit CannedServer(std::vector<std::string> pieces, bool answer = true) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 4);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (!answer) return;  // listen only: connects succeed, nothing is ever read
    thread_ = std::thread([this, pieces = std::move(pieces)] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)!read(c, buf, sizeof(buf));
      for (const auto& p : pieces) {
        (void)!write(c, p.data(), p.size());
        std::this_thread::sleep_for(milliseconds(2));
      }
      close(c);
    });
  }
  ~CannedServer() {
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  config::Address address() const { return config::Address{"127.0.0.1", port_}; }

 private:
  int fd_;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(PayloadTest, Rfc3339) {
  EXPECT_EQ(FormatRfc3339(At(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(At(1767225600123)), "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(At(951782400000)), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(At(-1)), "1969-12-31T23:59:59.999Z");
}

TEST(PayloadTest, FingerprintSeparatesNamesFromValues) {
  EXPECT_EQ(Fingerprint({{"a", "bc"}}), Fingerprint({{"a", "bc"}}));
  EXPECT_NE(Fingerprint({{"a", "bc"}}), Fingerprint({{"ab", "c"}}));
  EXPECT_NE(Fingerprint({}), Fingerprint({{"", ""}}));
  EXPECT_EQ(Fingerprint({}).size(), 16u);
}

TEST(PayloadTest, AlertmanagerBodyExact) {
  EXPECT_EQ(AlertmanagerBody({Notice("HighCpuUsage")}),
            R"([{"annotations":{"description":"shared","summary":"HighCpuUsage summary"},)"
            R"("endsAt":"2026-01-01T00:04:00.123Z",)"
            R"("generatorURL":"http://127.0.0.1:8000/api/v1/alerts",)"
            R"("labels":{"alertname":"HighCpuUsage","rule_id":"r_HighCpuUsage",)"
            R"("severity":"critical"},"startsAt":"2026-01-01T00:00:00.000Z"}])");
  EXPECT_EQ(AlertmanagerBody({}), "[]");
}

TEST(PayloadTest, WebhookBodyExact) {
  AlertNotice a = Notice("A");
  AlertNotice b = Notice("B", /*resolved=*/true);
  json body = json::parse(WebhookBody({a, b}, "http://127.0.0.1:8000"));
  json expected = json::parse(R"({
    "version": "4", "groupKey": "speedmon", "truncatedAlerts": 0, "status": "firing",
    "receiver": "speedmon", "groupLabels": {},
    "commonLabels": {"severity": "critical"},
    "commonAnnotations": {"description": "shared"},
    "externalURL": "http://127.0.0.1:8000",
    "alerts": [
      {"status": "firing",
       "labels": {"alertname": "A", "rule_id": "r_A", "severity": "critical"},
       "annotations": {"description": "shared", "summary": "A summary"},
       "startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
       "generatorURL": "http://127.0.0.1:8000/api/v1/alerts", "fingerprint": "FA"},
      {"status": "resolved",
       "labels": {"alertname": "B", "rule_id": "r_B", "severity": "critical"},
       "annotations": {"description": "shared", "summary": "B summary"},
       "startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-01T00:04:00.123Z",
       "generatorURL": "http://127.0.0.1:8000/api/v1/alerts", "fingerprint": "FB"}]})");
  expected["alerts"][0]["fingerprint"] = a.fingerprint;
  expected["alerts"][1]["fingerprint"] = b.fingerprint;
  EXPECT_EQ(body, expected);
  EXPECT_EQ(json::parse(WebhookBody({b}, ""))["status"], "resolved");
}

TEST(HttpClientTest, PostReachesTheServerAndStatusComesBack) {
  TestReceiver receiver;
  receiver.SetStatus(202);
  config::Address to = config::ParseHttpUrl(receiver.url())->address;
  HttpResponse r = HttpRequest(to, "POST", "/api/v2/alerts", "[1,2]", kWait);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "{}");
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/api/v2/alerts");
  EXPECT_EQ(requests[0].body, "[1,2]");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(requests[0].headers.at("host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(requests[0].headers.at("connection"), "close");
}

TEST(HttpClientTest, ChunkedAndCloseDelimitedBodies) {
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                    "lo\r\n6;ext=1\r\n world\r\n0\r\n\r\n"});
    HttpResponse r = HttpRequest(s.address(), "GET", "/x", "", kWait);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.body, "hello world");
  }
  {
    CannedServer s({"HTTP/1.0 200 OK\r\n\r\nuntil", " close"});
    HttpResponse r = HttpRequest(s.address(), "GET", "/x", "", kWait);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.body, "until close");
  }
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"});
    HttpResponse r = HttpRequest(s.address(), "GET", "/x", "", kWait);
    EXPECT_EQ(r.error, "malformed or truncated response");
    EXPECT_EQ(r.status, 0);
  }
  {
    CannedServer s({"SMTP ready\r\n\r\n"});
    EXPECT_EQ(HttpRequest(s.address(), "GET", "/x", "", kWait).error, "malformed response");
  }
  {
    CannedServer s({});
    EXPECT_EQ(HttpRequest(s.address(), "GET", "/x", "", kWait).error,
              "connection closed without a response");
  }
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"});
    EXPECT_EQ(HttpRequest(s.address(), "GET", "/x", "", kWait).error, "malformed response");
  }
}

TEST(HttpClientTest, RefusedAndTimedOut) {
  config::Address closed{"127.0.0.1", FreePort()};
  HttpResponse r = HttpRequest(closed, "POST", "/", "x", kWait);
  EXPECT_EQ(r.error, "connect: Connection refused");
  EXPECT_EQ(r.status, 0);

  CannedServer silent({}, /*answer=*/false);
  r = HttpRequest(silent.address(), "POST", "/", "x", milliseconds(200));
  EXPECT_EQ(r.error, "read: timed out");

  config::Address unresolvable{"no-such-host.invalid", 80};
  r = HttpRequest(unresolvable, "GET", "/", "", milliseconds(2000));
  EXPECT_EQ(r.error.rfind("resolve no-such-host.invalid: ", 0), 0u) << r.error;
}

TEST(HttpClientTest, CancelEndsAHungRequest) {
  // A peer that accepts and never answers: only the cancel pipe can end the wait before
  // the (long) timeout, and the error says which of the two happened.
  CannedServer silent({}, /*answer=*/false);
  int cancel[2];
  ASSERT_EQ(pipe(cancel), 0);
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    char b = 1;
    ASSERT_EQ(write(cancel[1], &b, 1), 1);
  });
  HttpResponse r =
      HttpRequest(silent.address(), "POST", "/", "x", std::chrono::minutes(5), cancel[0]);
  canceller.join();
  EXPECT_EQ(r.error, "cancelled");
  EXPECT_EQ(r.status, 0);
  close(cancel[0]);
  close(cancel[1]);
}

class NotifierTest : public ::testing::Test {
 protected:
  std::unique_ptr<Notifier> Make(std::vector<TargetConfig> targets, size_t max_pending = 1024) {
    NotifierOptions o;
    o.max_pending = max_pending;
    o.initial_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    o.external_url = "http://127.0.0.1:8000";
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    std::string error;
    auto n = Notifier::Create(targets, o, &error);
    EXPECT_TRUE(n) << error;
    return n;
  }
  static TargetConfig Am(const std::string& url) {
    return TargetConfig{TargetKind::kAlertmanager, url, milliseconds(2000)};
  }
  static TargetConfig Hook(const std::string& url) {
    return TargetConfig{TargetKind::kWebhook, url, milliseconds(2000)};
  }
  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(NotifierTest, EveryAlertmanagerGetsEveryAlertAndWebhooksOnlyTransitions) {
  TestReceiver am1, am2, hook;
  auto n = Make({Am(am1.url()), Am(am2.url("/prefix/")), Hook(hook.url("/hook"))});
  n->Send({Notice("A"), Notice("B", false, /*transition=*/false)});
  ASSERT_TRUE(n->WaitIdle(kWait));

  for (TestReceiver* r : {&am1, &am2}) {
    auto req = r->Requests();
    ASSERT_EQ(req.size(), 1u);
    EXPECT_EQ(req[0].body, AlertmanagerBody({Notice("A"), Notice("B", false, false)}));
  }
  EXPECT_EQ(am1.Requests()[0].path, "/api/v2/alerts");
  EXPECT_EQ(am2.Requests()[0].path, "/prefix/api/v2/alerts");
  auto hooks = hook.Requests();
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].path, "/hook");
  EXPECT_EQ(hooks[0].body, WebhookBody({Notice("A")}, "http://127.0.0.1:8000"));

  auto stats = n->Stats();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[0].target, am1.url());
  EXPECT_EQ(stats[0].sent, 2u);
  EXPECT_EQ(stats[2].sent, 1u);
  EXPECT_EQ(stats[2].failed + stats[2].dropped + stats[2].queued, 0u);
}

TEST_F(NotifierTest, BacksOffWhileDownAndDeliversOnceBack) {
  const uint16_t port = FreePort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto n = Make({Am(url)});
  n->Send({Notice("A")});
  ASSERT_TRUE(Eventually([&] { return n->Stats()[0].failed >= 3; }));
  EXPECT_FALSE(n->WaitIdle(milliseconds(0)));
  // Logged once per outage, not once per retry.
  EXPECT_EQ(Log(), (std::vector<std::string>{"alerting: sending to " + url +
                                             " failed (connect: Connection refused); "
                                             "retrying with back-off"}));

  TestReceiver back(port);
  ASSERT_EQ(back.port(), port);
  ASSERT_TRUE(back.WaitForRequests(1, kWait));
  ASSERT_TRUE(n->WaitIdle(kWait));
  EXPECT_EQ(back.Requests()[0].body, AlertmanagerBody({Notice("A")}));
  EXPECT_EQ(n->Stats()[0].sent, 1u);
  EXPECT_EQ(Log().back().rfind("alerting: " + url + " reachable again after ", 0), 0u);
}

TEST_F(NotifierTest, ServerErrorsAreRetriedClientErrorsDropped) {
  TestReceiver r;
  r.SetStatus(503);
  auto n = Make({Am(r.url())});
  n->Send({Notice("A")});
  ASSERT_TRUE(r.WaitForRequests(2, kWait));
  r.SetStatus(200);
  ASSERT_TRUE(n->WaitIdle(kWait));
  EXPECT_EQ(n->Stats()[0].sent, 1u);
  EXPECT_GE(n->Stats()[0].failed, 2u);

  TestReceiver refusing;
  refusing.SetStatus(400);
  auto m = Make({Am(refusing.url())});
  m->Send({Notice("A"), Notice("B")});
  ASSERT_TRUE(m->WaitIdle(kWait));
  EXPECT_EQ(refusing.Requests().size(), 1u);  // not retried
  EXPECT_EQ(m->Stats()[0].failed, 2u);
  EXPECT_EQ(m->Stats()[0].sent, 0u);
  EXPECT_EQ(m->Stats()[0].queued, 0u);
}

TEST_F(NotifierTest, QueueIsBoundedDroppingTheOldest) {
  const uint16_t port = FreePort();
  auto n = Make({Am("http://127.0.0.1:" + std::to_string(port))}, /*max_pending=*/3);
  n->Send({Notice("A"), Notice("B"), Notice("C"), Notice("D"), Notice("E")});
  EXPECT_EQ(n->Stats()[0].dropped, 2u);
  ASSERT_TRUE(Eventually([&] { return n->Stats()[0].failed >= 3; }));

  TestReceiver back(port);
  ASSERT_TRUE(back.WaitForRequests(1, kWait));
  ASSERT_TRUE(n->WaitIdle(kWait));
  EXPECT_EQ(back.Requests()[0].body, AlertmanagerBody({Notice("C"), Notice("D"), Notice("E")}));
  EXPECT_EQ(n->Stats()[0].dropped, 2u);
  EXPECT_EQ(n->Stats()[0].sent, 3u);
}

TEST_F(NotifierTest, ANewerNoticeReplacesTheQueuedOneForTheSameAlert) {
  const uint16_t port = FreePort();
  auto n = Make({Am("http://127.0.0.1:" + std::to_string(port))});
  n->Send({Notice("A")});
  n->Send({Notice("A", /*resolved=*/true)});
  ASSERT_TRUE(Eventually([&] { return n->Stats()[0].failed >= 2; }));
  TestReceiver back(port);
  ASSERT_TRUE(back.WaitForRequests(1, kWait));
  ASSERT_TRUE(n->WaitIdle(kWait));
  EXPECT_EQ(back.Requests()[0].body, AlertmanagerBody({Notice("A", true)}));
  EXPECT_EQ(n->Stats()[0].dropped, 0u);
}

TEST_F(NotifierTest, LargeBatchesAreSplit) {
  TestReceiver r;
  auto n = Make({Am(r.url())});
  std::vector<AlertNotice> many;
  for (int i = 0; i < 150; ++i) many.push_back(Notice("N" + std::to_string(i)));
  n->Send(many);
  ASSERT_TRUE(n->WaitIdle(kWait));
  size_t total = 0;
  for (const auto& req : r.Requests()) {
    size_t count = json::parse(req.body).size();
    EXPECT_LE(count, 64u);
    total += count;
  }
  EXPECT_EQ(total, 150u);
  EXPECT_EQ(n->Stats()[0].sent, 150u);
}

TEST_F(NotifierTest, BadUrlIsRefusedAtCreate) {
  std::string error;
  EXPECT_FALSE(Notifier::Create({Hook("https://x/hook")}, {}, &error));
  EXPECT_EQ(error, "webhook URL \"https://x/hook\": only http:// URLs are supported");
  EXPECT_FALSE(Notifier::Create({Am("http://:1")}, {}, &error));
  EXPECT_EQ(error,
            "alertmanager URL \"http://:1\": expected http://host:port[/path] (IPv6 in brackets, "
            "port 1..65535)");
  EXPECT_FALSE(Notifier::Create({Hook("http://127.0.0.1:1/hook?x=1")}, {}, &error));
  EXPECT_EQ(error,
            "webhook URL \"http://127.0.0.1:1/hook?x=1\": queries and fragments are not supported");
}

TEST_F(NotifierTest, StopWithAPendingQueueReturns) {
  auto n = Make({Am("http://127.0.0.1:" + std::to_string(FreePort()))});
  n->Send({Notice("A")});
  n->Stop();
  n->Stop();
  EXPECT_EQ(n->Stats()[0].sent, 0u);
}

}  // namespace
}  // namespace speedmon::alerting
