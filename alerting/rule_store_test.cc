// The rule changes file: parse, write back, atomic save, and what it refuses.
#include "alerting/rule_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace speedmon::alerting {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/speedmon-rules-XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return dir;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RuleStoreTest, SaveAndLoadRoundTrip) {
  std::string path = TempDir() + "/rules.json";
  base::StatusOr<RuleChanges> empty = LoadRuleChanges(path);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->added.empty());
  EXPECT_TRUE(empty->deleted.empty());

  RuleChanges c;
  base::StatusOr<Rule> r =
      RuleFromJson(R"({"rule_id":"disk","metric_name":"system.disk_percent","operator":"gt",)"
                   R"("threshold_value":90,"minimum_duration_seconds":120,"severity":"critical"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  c.added.push_back(*r);
  c.deleted = {"high_cpu_usage", "slow_checkpoint_loading"};
  ASSERT_TRUE(SaveRuleChanges(path, c).ok());
  EXPECT_EQ(Read(path),
            R"({"deleted":["high_cpu_usage","slow_checkpoint_loading"],"rules":[)"
            R"({"aggregation":"none","annotations":{},"description":"","for":"2m","id":"disk",)"
            R"("keep_firing_for":"0s","labels":{},"metric":"system.disk_percent","name":"disk",)"
            R"("operator":">","severity":"critical","threshold":90.0}],"version":1})"
            "\n");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no temporary left behind

  base::StatusOr<RuleChanges> back = LoadRuleChanges(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->added.size(), 1u);
  EXPECT_TRUE(back->added[0].SameDefinition(*r));
  EXPECT_EQ(back->added[0].origin, RuleOrigin::kApi);
  EXPECT_EQ(back->deleted, c.deleted);
}

TEST(RuleStoreTest, RefusesMalformedFilesSayingWhere) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"version":2})", "version must be 1"},
      {R"({"version":1,"rules":{}})", "rules must be an array"},
      {R"({"version":1,"rules":[{"id":"a"}]})", "rules[0]: metric is required"},
      {R"({"version":1,"rules":[{"id":"a","metric":"m","operator":">","threshold":1},)"
       R"({"id":"a","metric":"m","operator":">","threshold":2}]})",
       "rules[1]: duplicate id \"a\""},
      {R"({"version":1,"deleted":[1]})", "deleted must be an array of rule ids"},
      {R"({"version":1,"extra":true})", "unknown field \"extra\""},
  };
  for (const Case& c : cases) {
    base::StatusOr<RuleChanges> r = ParseRuleChanges(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().message(), c.error) << c.text;
  }
  std::string path = TempDir() + "/rules.json";
  std::ofstream(path) << "{";
  base::StatusOr<RuleChanges> r = LoadRuleChanges(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "alert rules file " + path + ": not valid JSON");
}

TEST(RuleStoreTest, SaveFailsCleanlyWhereItCannotWrite) {
  base::Status s = SaveRuleChanges("/nonexistent-dir/rules.json", RuleChanges());
  EXPECT_EQ(s.code(), base::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(),
            "alert rules file /nonexistent-dir/rules.json: create: No such file or directory");
}

}  // namespace
}  // namespace speedmon::alerting
