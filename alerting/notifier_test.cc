// Payloads, the HTTP client and the notifier against real HTTP servers on 127.0.0.1.
// Test thread plus the servers' and the notifier's threads.
#include "alerting/notifier.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
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
        (void)!send(c, p.data(), p.size(), MSG_NOSIGNAL);
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

config::HttpUrl Url(const std::string& text) {
  base::StatusOr<config::HttpUrl> u = config::ParseHttpUrl(text);
  if (u.ok()) return std::move(u).value();
  ADD_FAILURE() << text << ": " << u.status().ToString();
  return config::HttpUrl();
}

config::HttpUrl Url(const config::Address& to, const std::string& path = "/x") {
  return config::HttpUrl{false, to, path};
}

// The transport error of a request that must fail: its code is kUnavailable.
std::string Error(const base::StatusOr<HttpResponse>& r) {
  if (r.ok()) return "HTTP " + std::to_string(r->status);
  EXPECT_EQ(r.status().code(), base::StatusCode::kUnavailable) << r.status().ToString();
  return r.status().message();
}

TEST(HttpClientTest, PostReachesTheServerAndStatusComesBack) {
  TestReceiver receiver;
  receiver.SetStatus(202);
  auto r = HttpRequest(Url(receiver.url("/api/v2/alerts")), "POST", "[1,2]", kWait);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 202);
  EXPECT_EQ(r->body, "{}");
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/api/v2/alerts");
  EXPECT_EQ(requests[0].body, "[1,2]");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(requests[0].headers.at("content-length"), "5");
  EXPECT_EQ(requests[0].headers.at("host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(requests[0].headers.at("connection"), "close");
  EXPECT_EQ(requests[0].headers.at("user-agent"), "speedmon");
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
  EXPECT_EQ(requests[0].headers.count("expect"), 0u);
}

TEST(HttpClientTest, BasicAuthAndBearerTokenHeaders) {
  TestReceiver receiver;
  config::HttpClientConfig basic;
  basic.basic_auth_username = "speedmon";
  basic.basic_auth_password = "pa ss:w";
  ASSERT_TRUE(HttpRequest(Url(receiver.url("/a")), "POST", "{}", kWait, basic).ok());
  config::HttpClientConfig bearer;
  bearer.bearer_token = "tok-123";
  ASSERT_TRUE(HttpRequest(Url(receiver.url("/b")), "GET", "", kWait, bearer).ok());
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 2u);
  // base64("speedmon:pa ss:w")
  EXPECT_EQ(requests[0].headers.at("authorization"), "Basic c3BlZWRtb246cGEgc3M6dw==");
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].headers.at("authorization"), "Bearer tok-123");
  EXPECT_EQ(requests[1].headers.count("content-type"), 0u);
}

TEST(HttpClientTest, BodiesAndBrokenAnswers) {
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                    "lo\r\n6;ext=1\r\n world\r\n0\r\n\r\n"});
    auto r = HttpRequest(Url(s.address()), "GET", "", kWait);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "hello world");
  }
  {
    CannedServer s({"HTTP/1.0 200 OK\r\n\r\nuntil", " close"});
    auto r = HttpRequest(Url(s.address()), "GET", "", kWait);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "until close");
  }
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)),
              "truncated response: transfer closed with 5 bytes remaining to read");
  }
  {
    CannedServer s({"SMTP ready\r\n\r\n"});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)),
              "Unsupported protocol: Received HTTP/0.9 when not allowed");
  }
  {
    CannedServer s({});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)),
              "connection closed without a response");
  }
  {
    CannedServer s({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)),
              "recv: Illegal or missing hexadecimal sequence in chunked-encoding");
  }
}

TEST(HttpClientTest, RedirectsAreNotFollowed) {
  TestReceiver elsewhere;
  CannedServer s({"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + elsewhere.url("/moved") +
                  "\r\nContent-Length: 0\r\n\r\n"});
  auto r = HttpRequest(Url(s.address()), "POST", "[]", kWait);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 307);
  EXPECT_EQ(elsewhere.Requests().size(), 0u);
}

TEST(HttpClientTest, ResponsesOverTheCapFail) {
  const std::string big(kMaxResponseBytes + 1, 'x');
  {
    // Announced: refused from the Content-Length, before the body is read.
    CannedServer s(
        {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)), "response larger than 4 MiB");
  }
  {
    // Unannounced (until close): cut when the cap is passed.
    CannedServer s({"HTTP/1.0 200 OK\r\n\r\n", big});
    EXPECT_EQ(Error(HttpRequest(Url(s.address()), "GET", "", kWait)), "response larger than 4 MiB");
  }
  {
    // Exactly the cap is fine.
    CannedServer s({"HTTP/1.0 200 OK\r\n\r\n", big.substr(1)});
    auto r = HttpRequest(Url(s.address()), "GET", "", kWait);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body.size(), kMaxResponseBytes);
  }
}

TEST(HttpClientTest, RefusedTimedOutAndUnresolvable) {
  config::Address closed{"127.0.0.1", FreePort()};
  EXPECT_EQ(Error(HttpRequest(Url(closed), "POST", "x", kWait)), "connect: Connection refused");

  CannedServer silent({}, /*answer=*/false);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Error(HttpRequest(Url(silent.address()), "POST", "x", milliseconds(200))),
            "read: timed out after 200 ms");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(1500));

  // .invalid never resolves (RFC 6761); a failure within the deadline either way.
  start = std::chrono::steady_clock::now();
  std::string error =
      Error(HttpRequest(Url("http://no-such-host.invalid:80/"), "GET", "", milliseconds(2000)));
  EXPECT_TRUE(error == "resolve no-such-host.invalid: timed out after 2000 ms" ||
              error ==
                  "resolve no-such-host.invalid: failed (Could not resolve host: "
                  "no-such-host.invalid)")
      << error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2500));
}

TEST(HttpClientTest, TlsToAPlainServerFailsTheHandshake) {
  auto https = [](const CannedServer& s) {
    return Url("https://127.0.0.1:" + std::to_string(s.address().port) + "/");
  };
  CannedServer plain({"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"});
  std::string error = Error(HttpRequest(https(plain), "GET", "", kWait));
  EXPECT_EQ(error.rfind("TLS: handshake failed: ", 0), 0u) << error;
  CannedServer plain2({"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"});
  config::HttpClientConfig missing_ca;
  missing_ca.tls_ca_file = "/nonexistent/ca.pem";
  error = Error(HttpRequest(https(plain2), "GET", "", kWait, missing_ca));
  EXPECT_EQ(error.rfind("TLS: CA file: ", 0), 0u) << error;
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
  auto start = std::chrono::steady_clock::now();
  auto r = HttpRequest(Url(silent.address()), "POST", "x", std::chrono::minutes(5), {}, cancel[0]);
  canceller.join();
  EXPECT_EQ(Error(r), "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  close(cancel[0]);
  close(cancel[1]);
}

// A DNS server that never answers: the lookup itself hangs (glibc would wait 5 s per try),
// and the request must still end at its deadline, and at once when cancelled. Needs a
// resolver we control, so it runs in a child in its own user, mount and network
// namespaces: /etc/resolv.conf bind-mounted to name 127.0.0.1, where a UDP socket takes
// the queries and never replies. Skipped where namespaces are not allowed.
TEST(HttpClientTest, AHungLookupEndsAtTheDeadlineAndOnCancel) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(report[0]);
    auto say = [&](const std::string& line) {
      (void)!write(report[1], line.data(), line.size());
      _exit(0);
    };
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) say("skip: unshare");
    auto put = [](const char* path, const std::string& text) {
      int fd = open(path, O_WRONLY);
      bool ok = fd >= 0 && write(fd, text.data(), text.size()) == ssize_t(text.size());
      if (fd >= 0) close(fd);
      return ok;
    };
    put("/proc/self/setgroups", "deny");
    if (!put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
        !put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
      say("skip: id maps");
    }
    // Loopback up in the new network namespace.
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) say("skip: lo up");
    std::string conf =
        ::testing::TempDir() + "/speedmon_hung_resolv.conf." + std::to_string(getpid());
    std::ofstream(conf) << "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n";
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount(conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
      say("skip: bind mount");
    }
    int sink = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in dns{};
    dns.sin_family = AF_INET;
    dns.sin_port = htons(53);
    dns.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(sink, reinterpret_cast<sockaddr*>(&dns), sizeof(dns)) != 0) say("skip: bind :53");

    auto t0 = std::chrono::steady_clock::now();
    auto r =
        HttpRequest(Url("http://speedmon-hung-lookup.example:80/"), "GET", "", milliseconds(300));
    auto took1 = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
    int cancel[2];
    if (pipe(cancel) != 0) say("skip: pipe");
    std::thread canceller([&] {
      std::this_thread::sleep_for(milliseconds(100));
      char b = 1;
      (void)!write(cancel[1], &b, 1);
    });
    t0 = std::chrono::steady_clock::now();
    auto c = HttpRequest(Url("http://speedmon-hung-lookup-2.example:80/"), "GET", "",
                         std::chrono::minutes(5), {}, cancel[0]);
    auto took2 = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
    canceller.join();
    say((r.ok() ? "ok" : r.status().message()) + "|" + std::to_string(took1.count()) + "|" +
        (c.ok() ? "ok" : c.status().message()) + "|" + std::to_string(took2.count()));
  }
  close(report[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(report[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(report[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (out.rfind("skip: ", 0) == 0) GTEST_SKIP() << out;
  std::vector<std::string> parts;
  for (size_t pos = 0;;) {
    size_t bar = out.find('|', pos);
    parts.push_back(out.substr(pos, bar - pos));
    if (bar == std::string::npos) break;
    pos = bar + 1;
  }
  ASSERT_EQ(parts.size(), 4u) << out;
  EXPECT_EQ(parts[0], "resolve speedmon-hung-lookup.example: timed out after 300 ms");
  EXPECT_GE(std::stoi(parts[1]), 290);
  EXPECT_LT(std::stoi(parts[1]), 1500);
  EXPECT_EQ(parts[2], "cancelled");
  EXPECT_LT(std::stoi(parts[3]), 1500);
}

class NotifierTest : public ::testing::Test {
 protected:
  std::shared_ptr<Notifier> Make(std::vector<TargetConfig> targets, size_t max_pending = 1024) {
    NotifierOptions o;
    o.max_pending = max_pending;
    o.initial_backoff = milliseconds(20);
    o.max_backoff = milliseconds(100);
    o.external_url = "http://127.0.0.1:8000";
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    base::StatusOr<std::shared_ptr<Notifier>> n = Notifier::Create(targets, o);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? std::move(n).value() : nullptr;
  }
  static TargetConfig Am(const std::string& url) {
    return TargetConfig{TargetKind::kAlertmanager, url, milliseconds(2000), {}};
  }
  static TargetConfig Hook(const std::string& url) {
    return TargetConfig{TargetKind::kWebhook, url, milliseconds(2000), {}};
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
  EXPECT_EQ(
      Notifier::Create({Hook("ftp://x:21/hook")}, {}).status(),
      base::InvalidArgumentError(
          "webhook URL \"ftp://x:21/hook\": only http:// and https:// URLs are supported", "url"));
  EXPECT_EQ(Notifier::Create({Am("http://:1")}, {}).status(),
            base::InvalidArgumentError("alertmanager URL \"http://:1\": expected "
                                       "http://host:port[/path] (IPv6 in brackets, port 1..65535)",
                                       "url"));
  EXPECT_EQ(
      Notifier::Create({Hook("http://127.0.0.1:1/hook?x=1")}, {}).status(),
      base::InvalidArgumentError(
          "webhook URL \"http://127.0.0.1:1/hook?x=1\": queries and fragments are not supported",
          "url"));
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
