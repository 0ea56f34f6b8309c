// Tests of the speedrun Service (service.h) on real SQLite files in a temporary
// directory: answers, duplicates, garbage that must change nothing, metrics, restart,
// retention, limits and store failures.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "speedrun/testing.h"

namespace speedmon::speedrun {
namespace {

using nlohmann::json;
using testing::Answer;
using testing::Experiment;
using testing::ExperimentsBody;
using testing::Kind;
using testing::PostAndWait;
using testing::ReuseAndWait;
using testing::SlaBody;
using testing::Snapshot;
using testing::TempDir;

class ServiceTest : public ::testing::Test {
 protected:
  std::unique_ptr<Service> Make(config::SpeedrunConfig sr = {}, ServiceLimits limits = {},
                                config::SlaConfig sla = {}) {
    registry_ = std::make_shared<prometheus::Registry>();
    if (sr.store_path == "speedmon.db") sr.store_path = dir_.File("speedrun.db");
    auto s = std::make_unique<Service>(sr, sla, registry_, limits);
    base::Status status = s->Open();
    EXPECT_TRUE(status.ok()) << status.ToString();
    return s;
  }
  double Metric(const std::string& key) {
    auto snap = Snapshot(*registry_);
    auto it = snap.find(key);
    return it == snap.end() ? std::nan("") : it->second;
  }
  bool Has(const std::string& key) { return Snapshot(*registry_).count(key) > 0; }

  TempDir dir_;
  std::shared_ptr<prometheus::Registry> registry_;
};

const char kSuccessUnknown[] =
    "pokemon_speedrun_experiments_total{status=\"success\",strategy=\"unknown\"}";

TEST_F(ServiceTest, SingleExperimentIsCreatedThenDuplicate) {
  auto s = Make();
  Answer a = PostAndWait(*s, Kind::kExperiments,
                         Experiment("e1", "SUCCESS", R"(,"script_compilation_time_ms":87.3,
                             "checkpoint_loading_time_ms":425.8)"));
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.body, R"({"experiment_id":"e1","status":"created"})");
  EXPECT_EQ(Metric(kSuccessUnknown), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_success_rate"), 100);
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_duration_seconds_count"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_duration_seconds_sum"), 2);
  EXPECT_EQ(Metric("pokemon_speedrun_script_compilation_seconds_bucket{le=\"0.075\"}"), 0);
  EXPECT_EQ(Metric("pokemon_speedrun_script_compilation_seconds_bucket{le=\"0.1\"}"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_checkpoint_loading_seconds_bucket{le=\"0.5\"}"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_script_compilation_average_seconds"), 87.3 / 1000);
  EXPECT_EQ(s->Value("speedrun.average_script_compilation_ms"), 87.3);
  EXPECT_EQ(s->Value("speedrun.average_checkpoint_loading_ms"), 425.8);
  EXPECT_EQ(s->Value("speedrun.experiment_success_rate"), 100);

  auto before = Snapshot(*registry_);
  a = PostAndWait(*s, Kind::kExperiments, Experiment("e1", "failure"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"experiment_id":"e1","status":"duplicate"})");
  EXPECT_EQ(Snapshot(*registry_), before);
}

TEST_F(ServiceTest, BatchesCountDuplicatesWithinAndAcross) {
  auto s = Make();
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a")).status, 201);
  Answer a = PostAndWait(*s, Kind::kExperiments,
                         "[" + Experiment("a") + "," + Experiment("b", "failure") + "," +
                             Experiment("b") + "," + Experiment("c", "Timeout") + "]");
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.body, R"({"accepted":2,"duplicates":2})");
  a = PostAndWait(*s, Kind::kExperiments, Experiment("d") + "\n\n" + Experiment("a") + "\n",
                  "application/x-ndjson");
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.body, R"({"accepted":1,"duplicates":1})");
  a = PostAndWait(*s, Kind::kExperiments, "[]");
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.body, R"({"accepted":0,"duplicates":0})");
  EXPECT_EQ(Metric(kSuccessUnknown), 2);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"failure\",strategy=\"unknown\"}"),
            1);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"timeout\",strategy=\"unknown\"}"),
            1);
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_success_rate"), 50);
  EXPECT_EQ(json::parse(ExperimentsBody(*s))["total"], 4);
  EXPECT_EQ(s->CountExperiments().total, 4u);
  EXPECT_EQ(s->CountExperiments().successes, 2u);
}

struct Garbage {
  std::string name;
  std::string body;
  std::string content_type;
  int status;
  std::string answer;
};

TEST_F(ServiceTest, GarbageIsAnsweredAtOnceAndChangesNothing) {
  ServiceLimits limits;
  limits.max_body_bytes = 12 * 1024 * 1024;  // so the 10 MB cases reach the parser
  auto s = Make({}, limits);
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("first")).status, 201);
  std::string batch = "[";
  for (int i = 0; i < 5; ++i) {
    batch += (i ? "," : "") + Experiment("b" + std::to_string(i), i == 3 ? "done" : "success");
  }
  batch += "]";
  const std::vector<Garbage> cases = {
      {"truncated JSON", R"({"experiment_id":"x","status":)", "application/json", 400,
       R"({"error":"invalid JSON: parse error at line 1, column 31: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal","field":null})"},
      {"100k nested arrays", std::string(100000, '['), "application/json", 400,
       R"({"error":"JSON nested deeper than 32 levels","field":null})"},
      {"10 MB string",
       Experiment("x", "success", R"(,"error_message":")" + std::string(10 << 20, 'z') + "\""),
       "application/json", 400,
       R"({"error":"error_message must be 0 to 4096 characters","field":"error_message"})"},
      {"wrong type", R"({"experiment_id":["x"],"status":"success","duration_seconds":1})",
       "application/json", 400,
       R"({"error":"experiment_id must be a string","field":"experiment_id"})"},
      {"bad item in a batch", batch, "application/json", 400,
       R"({"error":"status must be one of success, failure, timeout, error, cancelled","field":"items[3].status"})"},
      {"bad line in NDJSON", Experiment("n1") + "\n" + R"({"experiment_id":"n2"})",
       "application/x-ndjson", 400, R"({"error":"status is required","field":"items[1].status"})"},
      {"wrong content type", Experiment("x"), "text/plain", 415,
       R"({"error":"unsupported Content-Type \"text/plain\": use application/json or application/x-ndjson","field":null})"},
      {"oversized body", "[" + std::string(12 * 1024 * 1024, ' ') + "]", "application/json", 413,
       R"({"error":"body larger than 12582912 bytes","field":null})"},
      {"infinity", Experiment("x", "success", R"(,"performance_score":1e999)"), "application/json",
       400, R"({"error":"invalid JSON: number overflow parsing '1e999'","field":null})"},
      {"a scalar", "true", "application/json", 400,
       R"({"error":"body must be a JSON object or array","field":null})"},
      {"empty", "", "application/json", 400, R"({"error":"empty body","field":null})"},
  };
  const auto before = Snapshot(*registry_);
  const std::string experiments_before = ExperimentsBody(*s, 1000);
  const std::string sla_before = SlaBody(*s);
  for (const Garbage& g : cases) {
    SCOPED_TRACE(g.name);
    bool synchronous = false;
    Answer a = PostAndWait(*s, Kind::kExperiments, g.body, g.content_type, &synchronous);
    EXPECT_TRUE(synchronous);
    EXPECT_EQ(a.status, g.status);
    EXPECT_EQ(a.body, g.answer);
  }
  // The same for patterns, one case per check.
  Answer a = PostAndWait(*s, Kind::kPatterns,
                         R"([{"pattern_id":"p","pattern_type":"battle","quality_score":0.5},
                             {"pattern_id":"q","pattern_type":"battle","quality_score":2}])");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body, R"({"error":"quality_score must be <= 1","field":"items[1].quality_score"})");
  // Nothing changed: metrics, the recent list, SLA, and then the next good write still works.
  EXPECT_EQ(Snapshot(*registry_), before);
  EXPECT_EQ(ExperimentsBody(*s, 1000), experiments_before);
  EXPECT_EQ(SlaBody(*s), sla_before);
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("b3")).status, 201);
  s->Close();
  Store store;
  ASSERT_TRUE(store.Open(dir_.File("speedrun.db")).ok());
  EXPECT_EQ(store.CountRows("experiments"), 2);
  EXPECT_EQ(store.CountRows("patterns"), 0);
}

TEST_F(ServiceTest, MissingAndFormContentTypesAreJson) {
  auto s = Make();
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a"), "").status, 201);
  EXPECT_EQ(
      PostAndWait(*s, Kind::kExperiments, Experiment("b"), "application/x-www-form-urlencoded")
          .status,
      201);
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("c"), "application/json; charset=UTF-8")
                .status,
            201);
}

TEST_F(ServiceTest, PatternsReusesAndQuality) {
  auto s = Make();
  Answer a = PostAndWait(*s, Kind::kPatterns,
                         R"({"pattern_id":"a/b","pattern_type":"Battle","quality_score":0.7,
                             "reuse_count":2})");
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.body, R"({"pattern_id":"a/b","status":"created"})");
  a = PostAndWait(*s, Kind::kPatterns,
                  R"({"pattern_id":"a/b","pattern_type":"movement","quality_score":0.1})");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"pattern_id":"a/b","status":"duplicate"})");
  a = PostAndWait(
      *s, Kind::kPatterns,
      "{\"pattern_id\":\"m\",\"pattern_type\":\"menu_navigation\",\"quality_score\":0.7}"
      "\n{\"pattern_id\":\"d\",\"pattern_type\":\"dialogue\",\"quality_score\":0.7}",
      "application/x-ndjson");
  EXPECT_EQ(a.body, R"({"accepted":2,"duplicates":0})");
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_discoveries_total{pattern_type=\"battle\"}"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_discoveries_total{pattern_type=\"movement\"}"), 0);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_discoveries_total{pattern_type=\"dialogue\"}"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_quality_average"), 0.7);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_requirement_compliant{requirement=\"pattern_quality\"}"),
            1);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 2);

  a = ReuseAndWait(*s, "a/b");  // ids arrive decoded (the admin router decodes the URL)
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"pattern_id":"a/b","reuse_count":3,"status":"counted"})");
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 3);
  a = ReuseAndWait(*s, "nope");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, R"({"error":"unknown pattern","field":"pattern_id"})");
  a = ReuseAndWait(*s, "bad\xff");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body, R"({"error":"pattern_id must be UTF-8","field":"pattern_id"})");
  EXPECT_EQ(ReuseAndWait(*s, "").status, 400);
  EXPECT_EQ(ReuseAndWait(*s, std::string(129, 'p')).status, 400);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 3);
  EXPECT_EQ(s->Value("speedrun.pattern_quality_average"), 0.7);
}

TEST_F(ServiceTest, AReuseRetriedWithItsIdempotencyKeyCountsOnce) {
  auto s = Make();
  ASSERT_EQ(PostAndWait(*s, Kind::kPatterns,
                        R"([{"pattern_id":"p","pattern_type":"battle","quality_score":0.5},
                            {"pattern_id":"q","pattern_type":"battle","quality_score":0.5}])")
                .status,
            201);
  Answer a = ReuseAndWait(*s, "p", "k-1");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"pattern_id":"p","reuse_count":1,"status":"counted"})");
  ASSERT_EQ(ReuseAndWait(*s, "p", "k-2").status, 200);
  // The retry of k-1 answers what k-1 answered, and counts nothing.
  a = ReuseAndWait(*s, "p", "k-1");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"pattern_id":"p","reuse_count":1,"status":"duplicate"})");
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 2);
  // A key belongs to one pattern.
  a = ReuseAndWait(*s, "q", "k-1");
  EXPECT_EQ(a.status, 409);
  EXPECT_EQ(
      a.body,
      R"({"error":"Idempotency-Key was already used for pattern p","field":"Idempotency-Key"})");
  EXPECT_EQ(ReuseAndWait(*s, "p", "bad\xff").status, 400);
  EXPECT_EQ(ReuseAndWait(*s, "p", std::string(129, 'k')).status, 400);
  // Without a key every post counts, as before.
  EXPECT_EQ(ReuseAndWait(*s, "q").body, R"({"pattern_id":"q","reuse_count":1,"status":"counted"})");
  EXPECT_EQ(ReuseAndWait(*s, "q").body, R"({"pattern_id":"q","reuse_count":2,"status":"counted"})");
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 4);
}

TEST_F(ServiceTest, ExperimentsAreListedNewestFirst) {
  auto s = Make();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(PostAndWait(*s, Kind::kExperiments,
                          Experiment("e" + std::to_string(i), "success",
                                     R"(,"timestamp":"2024-05-01T12:00:00Z")"))
                  .status,
              201);
  }
  json j = json::parse(ExperimentsBody(*s, 2));
  ASSERT_EQ(j["experiments"].size(), 2u);
  EXPECT_EQ(j["experiments"][0]["experiment_id"], "e4");
  EXPECT_EQ(j["experiments"][1]["experiment_id"], "e3");
  EXPECT_EQ(j["experiments"][0]["timestamp"], 1714564800.0);
  EXPECT_EQ(j["experiments"][0]["script_length"], nullptr);
  EXPECT_EQ(j["total"], 5);
  EXPECT_TRUE(j["next"].is_string());
  j = json::parse(ExperimentsBody(*s, 5));
  EXPECT_EQ(j["experiments"].size(), 5u);
  EXPECT_EQ(j["next"], nullptr);
}

TEST_F(ServiceTest, SlaAnswerAndGaugesFollowData) {
  auto s = Make();
  // No data: only the overall gauge is exported, and it says compliant.
  EXPECT_EQ(Metric("pokemon_speedrun_sla_compliance"), 1);
  EXPECT_FALSE(Has("pokemon_speedrun_experiment_success_rate"));
  EXPECT_FALSE(Has("pokemon_speedrun_script_compilation_average_seconds"));
  EXPECT_FALSE(Has("pokemon_speedrun_pattern_quality_average"));
  EXPECT_TRUE(std::isnan(s->Value("speedrun.experiment_success_rate")));
  EXPECT_TRUE(std::isnan(s->Value("speedrun.average_script_compilation_ms")));
  EXPECT_TRUE(std::isnan(s->Value("no.such.name")));
  EXPECT_EQ(s->Value("speedrun.sla_compliance"), 1);

  std::string batch = "[";
  for (int i = 0; i < 20; ++i) {
    batch += (i ? "," : "") + Experiment("e" + std::to_string(i), i == 0 ? "error" : "success",
                                         i < 10 ? R"(,"script_compilation_time_ms":50)" : "");
  }
  batch += "]";
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, batch).status, 201);
  json sla = json::parse(SlaBody(*s));
  EXPECT_EQ(sla, json::parse(R"({"overall_sla_compliant":true,
      "individual_compliance":{"experiment_success_rate":true,"script_compilation":true,
        "checkpoint_loading":null,"pattern_quality":null,"system_availability":null},
      "values":{"experiment_success_rate":95.0,"script_compilation":100.0,
        "checkpoint_loading":null,"pattern_quality":null,"system_availability":null},
      "targets":{"experiment_success_rate":95.0,"script_compilation":95.0,
        "checkpoint_loading":95.0,"pattern_quality":0.7,"system_availability":99.0},
      "latency_targets_ms":{"script_compilation":100.0,"checkpoint_loading":500.0},
      "window":{"experiments":20,"patterns":0}})"));
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_success_rate"), 95);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_requirement_compliant{requirement=\"experiment_success_"
                   "rate\"}"),
            1);
  EXPECT_FALSE(
      Has("pokemon_speedrun_sla_requirement_compliant{requirement=\"checkpoint_"
          "loading\"}"));
  EXPECT_EQ(s->Value("speedrun.average_script_compilation_ms"), 50);
  EXPECT_EQ(s->Value("pokemon_speedrun_script_compilation_average_seconds"), 0.05);

  s->SetHealthyProcessRatio(75);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_requirement_compliant{requirement=\"system_"
                   "availability\"}"),
            0);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_compliance"), 0);
  EXPECT_EQ(s->Value("speedrun.system_availability"), 75);
  EXPECT_EQ(json::parse(SlaBody(*s))["overall_sla_compliant"], false);
  s->SetHealthyProcessRatio(std::nan(""));
  EXPECT_FALSE(
      Has("pokemon_speedrun_sla_requirement_compliant{requirement=\"system_"
          "availability\"}"));
  EXPECT_EQ(Metric("pokemon_speedrun_sla_compliance"), 1);

  config::SlaConfig strict;
  strict.experiment_success_rate_min = 96;
  s->SetSlaConfig(strict);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_compliance"), 0);
  EXPECT_EQ(json::parse(SlaBody(*s))["targets"]["experiment_success_rate"], 96.0);
}

// The window's counts and sums are exported from the start at 0, and every status of a
// strategy once the strategy is seen; a time of 0 is not measured (not in the histogram).
TEST_F(ServiceTest, WindowCountsAndStatusesFromTheStart) {
  auto s = Make();
  const char* counts[] = {"experiments",
                          "experiments_successful",
                          "compilations_measured",
                          "compilations_under_target",
                          "script_compilation_seconds",
                          "checkpoint_loads_measured",
                          "checkpoint_loads_under_target",
                          "checkpoint_loading_seconds",
                          "patterns",
                          "pattern_quality"};
  for (const char* c : counts) {
    EXPECT_EQ(Metric(std::string("pokemon_speedrun_sla_window_") + c), 0) << c;
  }
  for (const char* status : {"success", "failure", "timeout", "error", "cancelled"}) {
    EXPECT_EQ(Metric(std::string("pokemon_speedrun_experiments_total{status=\"") + status +
                     "\",strategy=\"other\"}"),
              0)
        << status;
  }
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments,
                        "[" +
                            Experiment("a", "success",
                                       R"(,"script_compilation_time_ms":87.5,)"
                                       R"("checkpoint_loading_time_ms":600,"ai_strategy":"ga")") +
                            "," +
                            Experiment("b", "failure",
                                       R"(,"script_compilation_time_ms":0.0,)"
                                       R"("checkpoint_loading_time_ms":0,"ai_strategy":"ga")") +
                            "]")
                .status,
            201);
  ASSERT_EQ(PostAndWait(*s, Kind::kPatterns,
                        R"([{"pattern_id":"p1","pattern_type":"battle","quality_score":0.75},)"
                        R"({"pattern_id":"p2","pattern_type":"movement","quality_score":0.5}])")
                .status,
            201);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_experiments"), 2);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_experiments_successful"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_compilations_measured"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_compilations_under_target"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_script_compilation_seconds"), 0.0875);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_checkpoint_loads_measured"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_checkpoint_loads_under_target"), 0);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_checkpoint_loading_seconds"), 0.6);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_patterns"), 2);
  EXPECT_EQ(Metric("pokemon_speedrun_sla_window_pattern_quality"), 1.25);
  EXPECT_EQ(Metric("pokemon_speedrun_script_compilation_seconds_count"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_checkpoint_loading_seconds_count"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_script_compilation_average_seconds"), 0.0875);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"ga\"}"), 1);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"timeout\",strategy=\"ga\"}"), 0);
  // The record keeps what was posted.
  EXPECT_EQ(json::parse(ExperimentsBody(*s, 1))["experiments"][0]["script_compilation_time_ms"],
            0.0);
}

TEST_F(ServiceTest, StrategyLabelsAreBoundedAndSurviveRestart) {
  config::SpeedrunConfig sr;
  sr.max_strategy_labels = 2;
  {
    auto s = Make(sr);
    std::string batch = "[";
    const char* strategies[] = {"alpha", "beta", "gamma", "alpha", "other", "delta"};
    for (int i = 0; i < 6; ++i) {
      batch +=
          (i ? "," : "") + Experiment("e" + std::to_string(i), "success",
                                      std::string(R"(,"ai_strategy":")") + strategies[i] + "\"");
    }
    ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, batch + "]").status, 201);
    EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"alpha\"}"),
              2);
    EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"beta\"}"),
              1);
    EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"other\"}"),
              3);
    EXPECT_FALSE(Has("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"gamma\"}"));
    // The raw row keeps the strategy as posted.
    json recent = json::parse(ExperimentsBody(*s, 1));
    EXPECT_EQ(recent["experiments"][0]["ai_strategy"], "delta");
  }
  auto s = Make(sr);
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments,
                        "[" + Experiment("f1", "success", R"(,"ai_strategy":"beta")") + "," +
                            Experiment("f2", "success", R"(,"ai_strategy":"epsilon")") + "]")
                .status,
            201);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"beta\"}"), 2);
  EXPECT_EQ(Metric("pokemon_speedrun_experiments_total{status=\"success\",strategy=\"other\"}"), 4);
}

TEST_F(ServiceTest, RestartRestoresCountersWindowsAndRecentExactly) {
  config::SpeedrunConfig sr;
  sr.window_experiments = 10;
  std::map<std::string, double> before;
  std::string sla_before, recent_before;
  {
    auto s = Make(sr);
    for (int i = 0; i < 30; ++i) {
      std::string extra = R"(,"ai_strategy":"s)" + std::to_string(i % 3) +
                          R"(","script_compilation_time_ms":)" + std::to_string(i * 7) +
                          R"(,"checkpoint_loading_time_ms":)" + std::to_string(i * 31) +
                          R"(,"performance_score":0.5,"script_length":12)";
      ASSERT_EQ(
          PostAndWait(*s, Kind::kExperiments,
                      Experiment("e" + std::to_string(i), i % 4 ? "success" : "failure", extra))
              .status,
          201);
    }
    ASSERT_EQ(PostAndWait(*s, Kind::kPatterns,
                          R"([{"pattern_id":"p1","pattern_type":"item_usage","quality_score":0.9},
                              {"pattern_id":"p2","pattern_type":"optimization","quality_score":0.4,
                               "reuse_count":5}])")
                  .status,
              201);
    ASSERT_EQ(ReuseAndWait(*s, "p1", "reuse-1").status, 200);
    before = Snapshot(*registry_);
    sla_before = SlaBody(*s);
    recent_before = ExperimentsBody(*s, 1000);
    s->Close();
  }
  auto s = Make(sr);
  EXPECT_EQ(Snapshot(*registry_), before);
  EXPECT_EQ(SlaBody(*s), sla_before);
  EXPECT_EQ(ExperimentsBody(*s, 1000), recent_before);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_reuses_total"), 6);
  EXPECT_EQ(json::parse(sla_before)["window"]["experiments"], 10);
  // Duplicates are still recognised after the restart, and counting continues.
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("e0")).status, 200);
  EXPECT_EQ(ReuseAndWait(*s, "p1", "reuse-1").body,
            R"({"pattern_id":"p1","reuse_count":1,"status":"duplicate"})");
  EXPECT_EQ(ReuseAndWait(*s, "p1").body,
            R"({"pattern_id":"p1","reuse_count":2,"status":"counted"})");
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("new")).status, 201);
  EXPECT_EQ(json::parse(ExperimentsBody(*s))["total"], 31);
  // 22 of the 30 before the restart (i % 4 != 0) and the new one.
  EXPECT_EQ(s->CountExperiments().total, 31u);
  EXPECT_EQ(s->CountExperiments().successes, 23u);
}

TEST_F(ServiceTest, RetentionTrimsRowsButKeepsTotals) {
  config::SpeedrunConfig sr;
  sr.retention_rows = 5;
  sr.window_experiments = 3;
  sr.window_patterns = 2;
  {
    auto s = Make(sr);
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("e" + std::to_string(i))).status,
                201);
      ASSERT_EQ(PostAndWait(*s, Kind::kPatterns,
                            R"({"pattern_id":"p)" + std::to_string(i) +
                                R"(","pattern_type":"battle","quality_score":0.5})")
                    .status,
                201);
      ASSERT_EQ(ReuseAndWait(*s, "p" + std::to_string(i), "key-" + std::to_string(i)).status, 200);
    }
    EXPECT_EQ(Metric(kSuccessUnknown), 20);
  }
  {
    Store store;
    ASSERT_TRUE(store.Open(dir_.File("speedrun.db")).ok());
    EXPECT_EQ(store.CountRows("experiments"), 5);
    EXPECT_EQ(store.CountRows("patterns"), 5);
    EXPECT_EQ(store.CountRows("reuse_keys"), 5);  // kept as long as patterns are
  }
  auto s = Make(sr);
  EXPECT_EQ(Metric(kSuccessUnknown), 20);
  EXPECT_EQ(Metric("pokemon_speedrun_pattern_discoveries_total{pattern_type=\"battle\"}"), 20);
  EXPECT_EQ(Metric("pokemon_speedrun_experiment_duration_seconds_count"), 20);
  EXPECT_EQ(json::parse(SlaBody(*s))["window"], json::parse(R"({"experiments":3,"patterns":2})"));
  json recent = json::parse(ExperimentsBody(*s, 4));
  EXPECT_EQ(recent["experiments"][3]["experiment_id"], "e16");
  // Within retention an id is a duplicate; beyond it, it is forgotten (the documented horizon).
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("e15")).status, 200);
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("e0")).status, 201);
  EXPECT_EQ(ReuseAndWait(*s, "p0").status, 404);
  EXPECT_EQ(ReuseAndWait(*s, "p19").status, 200);
}

TEST_F(ServiceTest, InMemoryStoreLeavesNoFile) {
  config::SpeedrunConfig sr;
  sr.store_path = "";
  auto s = Make(sr);
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a")).status, 201);
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a")).status, 200);
  EXPECT_EQ(Metric(kSuccessUnknown), 1);
  s->Close();
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

TEST_F(ServiceTest, OpenErrorsAndClosedService) {
  auto registry = std::make_shared<prometheus::Registry>();
  config::SpeedrunConfig sr;
  sr.store_path = dir_.File("missing/dir/x.db");
  Service missing(sr, {}, registry);
  EXPECT_EQ(missing.Open(), base::UnavailableError("speedrun store " + sr.store_path +
                                                   ": open: unable to open database file"));

  sr.store_path = dir_.File("not-a-db");
  {
    std::FILE* f = std::fopen(sr.store_path.c_str(), "w");
    std::fputs(std::string(4096, 'x').c_str(), f);
    std::fclose(f);
  }
  Service garbage(sr, {}, std::make_shared<prometheus::Registry>());
  EXPECT_EQ(garbage.Open(),
            base::UnavailableError("speedrun store " + sr.store_path +
                                   ": read schema version: file is not a database"));
  // Never opened: writes are refused at once.
  bool synchronous = false;
  Answer a = PostAndWait(garbage, Kind::kExperiments, Experiment("a"), "", &synchronous);
  EXPECT_TRUE(synchronous);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, R"({"error":"speedrun store is not open","field":null})");

  auto s = Make();
  EXPECT_EQ(s->Open(), base::FailedPreconditionError("speedrun service: Open() called twice"));
  s->Close();
  s->Close();
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a")).status, 503);
  EXPECT_EQ(ReuseAndWait(*s, "p").status, 503);
}

TEST_F(ServiceTest, CloseAnswersEverythingAcceptedFirst) {
  auto s = Make();
  std::atomic<int> created{0};
  constexpr int kWrites = 2000;
  for (int i = 0; i < kWrites; ++i) {
    s->PostExperiments(Experiment("e" + std::to_string(i)), "application/json",
                       [&](base::StatusOr<WriteResult> r) {
                         created += r.ok() && r->kind == WriteResult::Kind::kCreated;
                       });
  }
  s->Close();
  EXPECT_EQ(created.load(), kWrites);
  Store store;
  ASSERT_TRUE(store.Open(dir_.File("speedrun.db")).ok());
  EXPECT_EQ(store.CountRows("experiments"), kWrites);
}

TEST_F(ServiceTest, FullQueueAnswers503) {
  ServiceLimits limits;
  limits.max_queued_items = 1;
  auto s = Make({}, limits);
  // Hold the writer inside the first answer so later writes stay queued.
  std::mutex mu;
  std::condition_variable cv;
  bool in_done = false, release = false;
  s->PostExperiments(Experiment("a"), "", [&](base::StatusOr<WriteResult>) {
    std::unique_lock lock(mu);
    in_done = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_done; });
  }
  std::atomic<int> second{0};
  s->PostExperiments(Experiment("b"), "",
                     [&](base::StatusOr<WriteResult> r) { second = testing::ToAnswer(r).status; });
  bool synchronous = false;
  Answer a = PostAndWait(*s, Kind::kExperiments, Experiment("c"), "", &synchronous);
  EXPECT_TRUE(synchronous);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, R"({"error":"speedrun store is busy: retry later","field":null})");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  s->Close();
  EXPECT_EQ(second.load(), 201);
}

TEST_F(ServiceTest, StoreFailureAnswers503AndRecordsNothing) {
  auto s = Make();
  ASSERT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("a")).status, 201);
  auto before = Snapshot(*registry_);
  // Another connection holds the write lock past the store's 5 s busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("speedrun.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  Answer a = PostAndWait(*s, Kind::kExperiments, Experiment("b"));
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, "{\"error\":\"speedrun store " + dir_.File("speedrun.db") +
                        ": begin: database is locked\",\"field\":null}");
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(Snapshot(*registry_), before);
  // The store recovers and the refused write can be posted again.
  EXPECT_EQ(PostAndWait(*s, Kind::kExperiments, Experiment("b")).status, 201);
  EXPECT_EQ(Metric(kSuccessUnknown), 2);
}

}  // namespace
}  // namespace speedmon::speedrun

namespace speedmon::speedrun {
namespace {

TEST(CursorTest, RoundTripsAndRefusesWhatItDidNotWrite) {
  for (int64_t seq : {int64_t{1}, int64_t{18}, int64_t{1} << 40, (int64_t{1} << 60) - 1}) {
    EXPECT_EQ(DecodeCursor(EncodeCursor(seq)), seq) << seq;
  }
  EXPECT_EQ(EncodeCursor(18), "c1.12");
  for (const char* bad :
       {"", "c1.", "c1.0", "c1.-1", "c1.G", "c2.12", "12", "c1.12 ", "c1.1000000000000000"}) {
    EXPECT_FALSE(DecodeCursor(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace speedmon::speedrun
