// Integration: speedmon's alerting against the real Prometheus Alertmanager (Debian's
// prometheus-alertmanager) on a loopback port, started and stopped by pid.
// Test thread plus the notifier's sender thread and the Alertmanager process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "alerting/service.h"
#include "alerting/test_receiver.h"
#include "nlohmann/json.hpp"

namespace speedmon::alerting {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kBinary = "/usr/bin/prometheus-alertmanager";
constexpr milliseconds kWait{30000};  // an upper bound for things to happen, not a gate

template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return pred();
}

// One Alertmanager process: no clustering, storage and config in a temp dir.
class Alertmanager {
 public:
  Alertmanager() {
    char tmpl[] = "/tmp/speedmon-am-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/alertmanager.yml") << "route:\n  receiver: \"null\"\n"
                                                 "receivers:\n  - name: \"null\"\n";
    testing::TestReceiver probe;  // a free loopback port, released at once
    port_ = probe.port();
  }
  ~Alertmanager() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Starts the binary on port(); true once GET /-/ready answers 200.
  bool Start() {
    const std::string log = dir_ + "/alertmanager.log";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::string config = "--config.file=" + dir_ + "/alertmanager.yml";
      std::string storage = "--storage.path=" + dir_ + "/data";
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl(kBinary, kBinary, config.c_str(), storage.c_str(), listen.c_str(),
            "--cluster.listen-address=", static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ < 0) return false;
    config::HttpUrl u{false, {"127.0.0.1", port_}, "/-/ready"};
    return Eventually([&] {
      auto r = HttpRequest(u, "GET", "", milliseconds(1000));
      return r.ok() && r->status == 200;
    });
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  // GET /api/v2/alerts (active ones): the alerts whose labels include `alertname`.
  json Alerts(const std::string& alertname) const {
    config::HttpUrl u{false, {"127.0.0.1", port_}, "/api/v2/alerts?active=true"};
    auto r = HttpRequest(u, "GET", "", milliseconds(5000));
    json out = json::array();
    if (!r.ok() || r->status != 200) return out;
    json all = json::parse(r->body, nullptr, false);
    if (!all.is_array()) return out;
    for (const auto& a : all) {
      if (a["labels"].value("alertname", "") == alertname) out.push_back(a);
    }
    return out;
  }

  std::string Log() const {
    std::ifstream in(dir_ + "/alertmanager.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

class MapSource : public ValueSource {
 public:
  base::StatusOr<std::vector<Sample>> Query(const std::string& metric,
                                            const std::map<std::string, std::string>&) override {
    auto it = values.find(metric);
    if (it == values.end()) return std::vector<Sample>{};
    return std::vector<Sample>{Sample{{}, it->second}};
  }
  std::map<std::string, double> values;
};

uint64_t Failed(const Service& s) { return s.NotifierStats()[0].failed; }
uint64_t Sent(const Service& s) { return s.NotifierStats()[0].sent; }

TEST(AlertmanagerIntegrationTest, FiresResolvesAndSurvivesAnOutage) {
  // scripts/install-deps.sh installs it: a missing binary is a failure, never a skip.
  ASSERT_EQ(access(kBinary, X_OK), 0) << kBinary << " is not installed (scripts/install-deps.sh)";
  Alertmanager am;
  ASSERT_TRUE(am.Start()) << am.Log();

  config::AlertingConfig c;
  c.default_rules = true;
  c.evaluation_interval = seconds(15);
  c.resend_interval = seconds(60);
  c.alertmanagers.push_back({am.url(), milliseconds(2000)});
  auto source = std::make_shared<MapSource>();
  ServiceOptions o;
  o.initial_backoff = milliseconds(100);
  o.max_backoff = milliseconds(1000);
  o.log = [](const std::string&) {};
  base::StatusOr<std::unique_ptr<Service>> created = Service::Create(c, source, o);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<Service> s = std::move(created).value();
  ASSERT_TRUE(s->AddRule(R"({"id":"cpu_runbook","name":"CpuWithRunbook",)"
                         R"("metric":"system.cpu_percent","operator":">","threshold":85,)"
                         R"("severity":"critical","labels":{"team":"speedrun"},)"
                         R"("annotations":{"summary":"CPU {{ $value }}%",)"
                         R"("runbook_url":"http://runbooks/cpu"}})")
                  .ok());

  // CPU above 85 % for the default rule's 2 minutes: evaluated 2 minutes ago and now,
  // so the alert's times are real and Alertmanager treats it as current.
  source->values["pokemon_speedrun_system_cpu_percent"] = 97.5;
  const Time now = std::chrono::system_clock::now();
  s->Evaluate(now - seconds(120));  // the custom rule (for 0) fires and is sent
  EXPECT_EQ(json::parse(s->AlertsJson(now))["alerts"].size(), 2u);
  ASSERT_TRUE(s->WaitIdle(kWait));
  s->Evaluate(now);  // HighCpuUsage fires; the custom one is re-sent (resend_interval)

  json alerts;
  ASSERT_TRUE(Eventually([&] { return (alerts = am.Alerts("HighCpuUsage")).size() == 1; }))
      << am.Log();
  const json& a = alerts[0];
  EXPECT_EQ(a["labels"], json({{"alertname", "HighCpuUsage"},
                               {"severity", "critical"},
                               {"rule_id", "high_cpu_usage"}}));
  EXPECT_EQ(a["annotations"],
            json({{"summary", "High CPU usage"},
                  {"description", "CPU usage is 97.5%, above 85% for 2 minutes."}}));
  EXPECT_EQ(a["status"]["state"], "active");
  EXPECT_EQ(a["startsAt"], FormatRfc3339(now));
  EXPECT_EQ(a["endsAt"], FormatRfc3339(now + 4 * seconds(60)));
  EXPECT_EQ(a["generatorURL"], "http://127.0.0.1:8000/api/v1/alerts");

  json custom = am.Alerts("CpuWithRunbook");
  ASSERT_EQ(custom.size(), 1u);
  EXPECT_EQ(custom[0]["labels"], json({{"alertname", "CpuWithRunbook"},
                                       {"severity", "critical"},
                                       {"rule_id", "cpu_runbook"},
                                       {"team", "speedrun"}}));
  EXPECT_EQ(custom[0]["annotations"],
            json({{"summary", "CPU 97.5%"}, {"runbook_url", "http://runbooks/cpu"}}));

  // The CPU recovers: both resolve, with endsAt = now, and leave the active list.
  source->values["pokemon_speedrun_system_cpu_percent"] = 40;
  s->Evaluate(std::chrono::system_clock::now());
  ASSERT_TRUE(Eventually([&] {
    return am.Alerts("HighCpuUsage").empty() && am.Alerts("CpuWithRunbook").empty();
  })) << am.Log();
  ASSERT_TRUE(s->WaitIdle(kWait));
  EXPECT_EQ(Failed(*s), 0u);
  EXPECT_EQ(Sent(*s), 5u);  // custom fired + re-sent, HighCpuUsage fired, two resolved

  // Alertmanager goes away: speedmon keeps evaluating and answering, counts the failed
  // sends, and delivers once Alertmanager is back on the same port.
  am.Stop();
  source->values["pokemon_speedrun_system_memory_percent"] = 95;
  const Time later = std::chrono::system_clock::now();
  s->Evaluate(later - seconds(120));
  s->Evaluate(later);
  ASSERT_TRUE(Eventually([&] { return Failed(*s) >= 2; }));
  EXPECT_EQ(json::parse(s->AlertsJson(later))["alerts"][0]["name"], "HighMemoryUsage");
  EXPECT_EQ(Sent(*s), 5u);

  ASSERT_TRUE(am.Start()) << am.Log();
  ASSERT_TRUE(Eventually([&] { return am.Alerts("HighMemoryUsage").size() == 1; })) << am.Log();
  json mem = am.Alerts("HighMemoryUsage")[0];
  EXPECT_EQ(mem["labels"]["rule_id"], "high_memory_usage");
  EXPECT_EQ(mem["startsAt"], FormatRfc3339(later));
  ASSERT_TRUE(s->WaitIdle(kWait));
  EXPECT_EQ(Sent(*s), 6u);

  auto metrics = s->collectable()->Collect();
  bool found = false;
  for (const auto& f : metrics) {
    if (f.name != "pokemon_speedrun_alert_notifications_total") continue;
    for (const auto& m : f.metric) {
      if (m.label[0].value == "failed") {
        found = true;
        EXPECT_GE(m.counter.value, 2);
        EXPECT_EQ(m.label[1].value, am.url());
      }
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace speedmon::alerting
