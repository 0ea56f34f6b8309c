// Tests of the embedded default config, LoadFromFile, Summary, and garbage input (which
// must give an error, never a crash). Single-threaded; files in a fresh temp directory.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "config/config.h"
#include "config/test_configs.h"

namespace speedmon::config {
namespace {

std::string ReadSourceFile(const std::string& relative) {
  const char* root = std::getenv("SPEEDMON_SOURCE_DIR");
  std::string path = std::string(root != nullptr ? root : ".") + "/" + relative;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(DefaultConfigTest, IsTheFileByteForByte) {
  EXPECT_EQ(DefaultConfigText(), ReadSourceFile("config/default.toml"));
}

TEST(DefaultConfigTest, LoadsWithTheFourEmulatorPool) {
  base::StatusOr<Config> r = LoadFromString(DefaultConfigText(), "<default>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = *r;
  EXPECT_EQ(c.source, "<default>");
  EXPECT_EQ(c.admin.address.ToString(), "127.0.0.1:8000");
  EXPECT_EQ(c.admin.auth_token, "");
  ASSERT_EQ(c.listeners.size(), 4u);
  ASSERT_EQ(c.upstreams.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    std::string name = "emulator-" + std::to_string(i + 1);
    EXPECT_EQ(c.listeners[i].name, name);
    EXPECT_EQ(c.listeners[i].address.ToString(), "127.0.0.1:1808" + std::to_string(i + 1));
    EXPECT_EQ(c.listeners[i].upstream, name);
    const UpstreamConfig& u = c.upstreams[i];
    EXPECT_EQ(u.name, name);
    ASSERT_EQ(u.endpoints.size(), 1u);
    EXPECT_EQ(u.endpoints[0].ToString(), "127.0.0.1:808" + std::to_string(i + 1));
    EXPECT_EQ(u.load_balancing, LoadBalancing::kLeastRequests);
    EXPECT_TRUE(u.health_check.enabled);
    EXPECT_EQ(u.health_check.path, "/status");
    EXPECT_EQ(u.health_check.interval, Duration(5000));
    EXPECT_EQ(u.health_check.timeout, Duration(1000));
    EXPECT_EQ(u.health_check.healthy_threshold, 1u);
    EXPECT_EQ(u.health_check.unhealthy_threshold, 3u);
    EXPECT_EQ(c.UpstreamIndex(name), i);
  }
  const std::vector<std::pair<std::string, std::string>> kRoutes = {
      {"initialize", "/initialize"},
      {"action", "/action"},
      {"status", "/status"},
      {"stop", "/stop"},
      {"evaluate", "/evaluate"},
      {"save_state", "/save_state"},
      {"input", "/input"},
      {"state", "/state"},
      {"reset", "/reset"},
      {"health", "/health"},
      {"checkpoint_load", "/checkpoint/load"}};
  ASSERT_EQ(c.routes.size(), kRoutes.size());
  for (size_t i = 0; i < kRoutes.size(); ++i) {
    EXPECT_EQ(c.routes[i].name, kRoutes[i].first);
    EXPECT_EQ(c.routes[i].prefix, kRoutes[i].second);
  }
  EXPECT_TRUE(c.processes.empty());
  EXPECT_EQ(c.speedrun.store_path, "speedmon.db");
  EXPECT_TRUE(c.alerting.default_rules);
  EXPECT_TRUE(c.alerting.rules.empty());
  EXPECT_EQ(c.alerting.resend_interval, Duration(60000));
  EXPECT_EQ(c.sla.pattern_quality_min, 0.70);
}

TEST(DefaultConfigTest, Summary) {
  base::StatusOr<Config> r = LoadFromString(DefaultConfigText(), "<default>");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Summary(*r),
            "config <default>: ok\n"
            "admin: 127.0.0.1:8000 (writes open to loopback)\n"
            "listeners: 4\n"
            "  emulator-1 127.0.0.1:18081 -> emulator-1\n"
            "  emulator-2 127.0.0.1:18082 -> emulator-2\n"
            "  emulator-3 127.0.0.1:18083 -> emulator-3\n"
            "  emulator-4 127.0.0.1:18084 -> emulator-4\n"
            "upstreams: 4\n"
            "  emulator-1: 127.0.0.1:8081 (least_requests, health check /status every 5s)\n"
            "  emulator-2: 127.0.0.1:8082 (least_requests, health check /status every 5s)\n"
            "  emulator-3: 127.0.0.1:8083 (least_requests, health check /status every 5s)\n"
            "  emulator-4: 127.0.0.1:8084 (least_requests, health check /status every 5s)\n"
            "routes: 11\n"
            "processes: 0\n"
            "alert rules: 0 + defaults, alertmanagers: 0, webhooks: 0\n"
            "store: speedmon.db\n");
}

TEST(SummaryTest, TokenNoHealthCheckMemoryStore) {
  base::StatusOr<Config> r = LoadFromString(ValidConfigText("summary"), "my.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Summary(*r),
            "config my.toml: ok\n"
            "admin: 0.0.0.0:9000 (writes need a token)\n"
            "listeners: 1\n"
            "  l 127.0.0.1:0 -> u\n"
            "upstreams: 1\n"
            "  u: a:1 [::1]:2 (round_robin, no health check)\n"
            "routes: 0\n"
            "processes: 0\n"
            "alert rules: 1, alertmanagers: 0, webhooks: 1\n"
            "store: memory only\n");
}

class LoadFromFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/speedmon_config_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(LoadFromFileTest, GoodFile) {
  std::string path = Write("speedmon.toml", DefaultConfigText());
  base::StatusOr<Config> r = LoadFromFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->source, path);
  EXPECT_EQ(r->listeners.size(), 4u);
}

TEST_F(LoadFromFileTest, ErrorsNameTheFile) {
  std::string path = Write("bad.toml", "[admin]\nadress = \"x\"\n");
  EXPECT_EQ(LoadFromFile(path).status(),
            base::InvalidArgumentError(path + ":2:1: unknown key \"adress\" in [admin]",
                                       "[admin].adress"));
}

TEST_F(LoadFromFileTest, MissingFileAndDirectory) {
  EXPECT_EQ(LoadFromFile(dir_ + "/nope.toml").status(),
            base::NotFoundError(dir_ + "/nope.toml: cannot open: No such file or directory"));
  EXPECT_EQ(LoadFromFile(dir_).status(),
            base::InternalError(dir_ + ": cannot read: Is a directory"));
}

TEST_F(LoadFromFileTest, EmptyAndHugeFiles) {
  // An empty file is every default without listeners: a monitor-only speedmon.
  std::string empty = Write("empty.toml", "");
  base::StatusOr<Config> loaded = LoadFromFile(empty);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(loaded->monitor_only());
  EXPECT_TRUE(loaded->upstreams.empty());
  EXPECT_EQ(loaded->admin.address.ToString(), "127.0.0.1:8000");
  std::string huge = Write("huge.toml", std::string(5 << 20, '#'));
  EXPECT_EQ(LoadFromFile(huge).status(),
            base::TooLargeError(huge + ": config is larger than 4 MiB"));
}

// Garbage: whatever comes in, LoadFromString answers with an error and never crashes.
void ExpectRejected(const std::string& text, const std::string& what) {
  base::Status status = LoadFromString(text, "junk").status();
  ASSERT_FALSE(status.ok()) << what;
  EXPECT_TRUE(status.message().starts_with("junk:")) << what << ": " << status.message();
  EXPECT_GT(status.message().size(), std::string_view("junk: ").size()) << what;
}

TEST(GarbageTest, BinaryBytes) {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  ExpectRejected(all_bytes, "all bytes");
  ExpectRejected(std::string("a = 1\0b = 2\n", 12), "NUL");
  ExpectRejected("a = \"\xff\xfe\"\n", "invalid UTF-8");
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string text(rng() % 2000, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    // May not parse; must not crash.
    EXPECT_FALSE(LoadFromString(text, "junk").ok());
  }
}

TEST(GarbageTest, UnterminatedThings) {
  for (const char* text : {"a = \"abc", "a = \"\"\"abc", "a = '''abc", "a = 'abc", "[admin",
                           "[[listeners]", "a = [1, 2", "a = {b = 1", "a = \"\\", "a =", "= 1",
                           "a.b.", "[a.]", "a = 1979-05-", "a = 0x"}) {
    ExpectRejected(text, text);
  }
}

TEST(GarbageTest, OneMegabyteOfJunk) {
  std::mt19937 rng(7);
  const char kAlphabet[] = "abc=[]{}\"'.,#\n \t0123456789-_:";
  std::string text(1 << 20, ' ');
  for (char& c : text) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  ExpectRejected(text, "1 MiB junk");
  ExpectRejected(std::string(1 << 20, '['), "1 MiB of [");
  ExpectRejected(std::string(1 << 20, '.'), "1 MiB of dots");
  ExpectRejected(std::string(5 << 20, ' '), "5 MiB of spaces");
}

TEST(GarbageTest, DeeplyNested) {
  std::string inline_tables = "a = ";
  for (int i = 0; i < 100000; ++i) inline_tables += "{b=";
  ExpectRejected(inline_tables, "nested inline tables");
  ExpectRejected("a = " + std::string(100000, '['), "nested arrays");
  std::string dotted = "a";
  for (int i = 0; i < 100000; ++i) dotted += ".b";
  ExpectRejected(dotted + " = 1\n", "dotted key");
  ExpectRejected("[" + dotted + "]\n", "dotted table header");
  ExpectRejected("[[" + dotted + "]]\n", "dotted array header");
  ExpectRejected("x = {" + dotted + " = 1}\n", "dotted key in an inline table");
  // Dots inside strings and comments do not count towards the limit...
  std::string many_dots(100000, '.');
  base::StatusOr<Config> r =
      LoadFromString("[proxy]\naccess_log = \"" + many_dots + "\" # " + many_dots +
                         "\n[[listeners]]\nname = 'l'\naddress = '127.0.0.1:0'\n"
                         "upstream = 'u'\n[[upstreams]]\nname = 'u'\n"
                         "endpoints = ['a:1']\ndescription = '''" +
                         many_dots + "'''\n",
                     "junk");
  EXPECT_EQ(r.status(),
            base::InvalidArgumentError("junk:10:1: unknown key \"description\" in [[upstreams]]",
                                       "[[upstreams]].description"));
  // ...and the refusal names the place.
  r = LoadFromString("[proxy]\n" + dotted + " = 1\n", "junk");
  EXPECT_EQ(r.status(), base::InvalidArgumentError(
                            "junk:2:8194: more than 4096 dots outside strings: too deeply dotted "
                            "keys to be a speedmon config"));
}

TEST(GarbageTest, EveryPrefixAndByteFlipOfTheDefault) {
  const std::string& text = DefaultConfigText();
  for (size_t n = 0; n < text.size(); n += 13) {
    base::Status status = LoadFromString(text.substr(0, n), "junk").status();
    EXPECT_TRUE(status.ok() || status.message().starts_with("junk")) << status.ToString();
  }
  std::mt19937 rng(3);
  for (int round = 0; round < 500; ++round) {
    std::string mutated = text;
    for (int flips = 0; flips < 3; ++flips) {
      mutated[rng() % mutated.size()] = static_cast<char>(rng());
    }
    base::Status status = LoadFromString(mutated, "junk").status();
    EXPECT_TRUE(status.ok() || status.message().starts_with("junk")) << status.ToString();
  }
}

}  // namespace
}  // namespace speedmon::config
