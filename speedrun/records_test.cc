// Tests for body decoding (body.h) and record validation (records.h): every rule with its
// exact message and field, garbage bodies, limits.
#include <gtest/gtest.h>

#include <string>

#include "speedrun/body.h"
#include "speedrun/records.h"

namespace speedmon::speedrun {
namespace {

using nlohmann::json;

constexpr double kNow = 1700000000.0;
const char kBase[] = R"({"experiment_id":"e1","status":"success","duration_seconds":1.5)";
const char kPatternBase[] = R"({"pattern_id":"p1","pattern_type":"battle","quality_score":0.8)";

// A refusal as a client sees it: the HTTP status admin/api.cc answers for the code,
// the message and the field. nullopt for OK.
struct InputError {
  int status = 0;
  std::string error;
  std::string field;
};
std::optional<InputError> Refusal(const base::Status& s) {
  if (s.ok()) return std::nullopt;
  int status = s.code() == base::StatusCode::kTooLarge            ? 413
               : s.code() == base::StatusCode::kUnsupportedFormat ? 415
               : s.code() == base::StatusCode::kInvalidArgument   ? 400
                                                                  : 500;
  return InputError{status, s.message(), s.field()};
}

// Decodes and validates `body` as one experiment (JSON framing).
std::optional<InputError> CheckExperiment(const std::string& body, Experiment* out) {
  DecodedBody d;
  if (base::Status e = DecodeBody(body, "application/json", BodyLimits(), &d); !e.ok()) {
    return Refusal(e);
  }
  return Refusal(ValidateExperiment(d.items.at(0), d.ItemPath(0), kNow, out));
}

std::optional<InputError> CheckPattern(const std::string& body, Pattern* out) {
  DecodedBody d;
  if (base::Status e = DecodeBody(body, "application/json", BodyLimits(), &d); !e.ok()) {
    return Refusal(e);
  }
  return Refusal(ValidatePattern(d.items.at(0), d.ItemPath(0), kNow, out));
}

struct BadCase {
  std::string extra;  // appended to the base object (starts with ',' or is a whole body)
  std::string error;
  std::string field;
};

void ExpectBad(const BadCase& c, const std::optional<InputError>& err) {
  ASSERT_TRUE(err.has_value()) << c.extra;
  EXPECT_EQ(err->status, 400) << c.extra;
  EXPECT_EQ(err->error, c.error) << c.extra;
  EXPECT_EQ(err->field, c.field) << c.extra;
}

TEST(ValidateExperiment, BaseIsValidWithDefaults) {
  Experiment e;
  ASSERT_EQ(CheckExperiment(std::string(kBase) + "}", &e), std::nullopt);
  EXPECT_EQ(e.id, "e1");
  EXPECT_EQ(e.status, ExperimentStatus::kSuccess);
  EXPECT_EQ(e.duration_seconds, 1.5);
  EXPECT_EQ(e.ai_strategy, "unknown");
  EXPECT_EQ(e.timestamp, kNow);
  EXPECT_EQ(e.script_length, std::nullopt);
  EXPECT_EQ(e.script_compilation_ms, std::nullopt);
  EXPECT_EQ(e.checkpoint_loading_ms, std::nullopt);
  EXPECT_EQ(e.pattern_discoveries, std::nullopt);
  EXPECT_EQ(e.error_message, std::nullopt);
  EXPECT_EQ(e.performance_score, std::nullopt);
}

TEST(ValidateExperiment, AllFieldsAndNormalisation) {
  Experiment e;
  ASSERT_EQ(CheckExperiment(R"({"experiment_id":"exp_001","status":"TimeOut",
      "duration_seconds":125.5,"script_length":3.0,"script_compilation_time_ms":87.3,
      "checkpoint_loading_time_ms":0,"ai_strategy":"genetic_algorithm",
      "pattern_discoveries":4,"timestamp":"2024-01-01T00:00:00+02:00",
      "error_message":"","performance_score":-2.5,"unknown_field":{"x":[1]}})",
                            &e),
            std::nullopt);
  EXPECT_EQ(e.status, ExperimentStatus::kTimeout);
  EXPECT_EQ(e.script_length, 3);
  EXPECT_EQ(e.script_compilation_ms, 87.3);
  EXPECT_EQ(e.checkpoint_loading_ms, 0.0);
  EXPECT_EQ(e.ai_strategy, "genetic_algorithm");
  EXPECT_EQ(e.pattern_discoveries, 4);
  EXPECT_EQ(e.timestamp, 1704060000.0);
  EXPECT_EQ(e.error_message, "");
  EXPECT_EQ(e.performance_score, -2.5);
  json j = ToJson(e);
  EXPECT_EQ(j["status"], "timeout");
  EXPECT_EQ(j["script_length"], 3);
  EXPECT_EQ(j.count("unknown_field"), 0u);
}

TEST(ValidateExperiment, NullMeansAbsent) {
  Experiment e;
  ASSERT_EQ(CheckExperiment(std::string(kBase) +
                                R"(,"script_length":null,"script_compilation_time_ms":null,
      "ai_strategy":null,"timestamp":null,"error_message":null,"performance_score":null})",
                            &e),
            std::nullopt);
  EXPECT_EQ(e.script_compilation_ms, std::nullopt);
  EXPECT_EQ(e.ai_strategy, "unknown");
  EXPECT_EQ(e.timestamp, kNow);
  EXPECT_EQ(ToJson(e)["script_compilation_time_ms"], nullptr);
}

TEST(ValidateExperiment, LengthsCountCharactersNotBytes) {
  std::string id128;
  for (int i = 0; i < 128; ++i) id128 += "\xc3\xa9";  // é: 2 bytes, 1 character
  Experiment e;
  EXPECT_EQ(
      CheckExperiment(
          R"({"experiment_id":")" + id128 + R"(","status":"success","duration_seconds":0})", &e),
      std::nullopt);
  EXPECT_EQ(e.id.size(), 256u);
  EXPECT_EQ(CheckExperiment(
                std::string(kBase) + R"(,"ai_strategy":")" + std::string(64, 's') + R"("})", &e),
            std::nullopt);
  EXPECT_EQ(
      CheckExperiment(
          std::string(kBase) + R"(,"error_message":")" + std::string(4096, 'm') + R"("})", &e),
      std::nullopt);
}

TEST(ValidateExperiment, EveryRuleHasItsMessageAndField) {
  const std::string id129(129, 'x');
  const std::vector<BadCase> cases = {
      {R"({"status":"success","duration_seconds":1})", "experiment_id is required",
       "experiment_id"},
      {R"({"experiment_id":null,"status":"success","duration_seconds":1})",
       "experiment_id is required", "experiment_id"},
      {R"({"experiment_id":5,"status":"success","duration_seconds":1})",
       "experiment_id must be a string", "experiment_id"},
      {R"({"experiment_id":"","status":"success","duration_seconds":1})",
       "experiment_id must be 1 to 128 characters", "experiment_id"},
      {R"({"experiment_id":")" + id129 + R"(","status":"success","duration_seconds":1})",
       "experiment_id must be 1 to 128 characters", "experiment_id"},
      // The first bad field in validation order is the one reported.
      {R"({"experiment_id":"","status":"nope"})", "experiment_id must be 1 to 128 characters",
       "experiment_id"},
      {R"({"experiment_id":"e","duration_seconds":1})", "status is required", "status"},
      {R"({"experiment_id":"e","status":"succeeded","duration_seconds":1})",
       "status must be one of success, failure, timeout, error, cancelled", "status"},
      {R"({"experiment_id":"e","status":1,"duration_seconds":1})",
       "status must be one of success, failure, timeout, error, cancelled", "status"},
      {R"({"experiment_id":"e","status":"success"})", "duration_seconds is required",
       "duration_seconds"},
      {R"({"experiment_id":"e","status":"success","duration_seconds":"1"})",
       "duration_seconds must be a number", "duration_seconds"},
      {R"({"experiment_id":"e","status":"success","duration_seconds":-0.5})",
       "duration_seconds must be >= 0", "duration_seconds"},
      {R"({"experiment_id":"e","status":"success","duration_seconds":true})",
       "duration_seconds must be a number", "duration_seconds"},
      {std::string(kBase) + R"(,"script_length":1.5})", "script_length must be an integer >= 0",
       "script_length"},
      {std::string(kBase) + R"(,"script_length":-1})", "script_length must be an integer >= 0",
       "script_length"},
      {std::string(kBase) + R"(,"script_length":"3"})", "script_length must be an integer >= 0",
       "script_length"},
      {std::string(kBase) + R"(,"script_length":9007199254740993})",
       "script_length must be an integer >= 0", "script_length"},
      {std::string(kBase) + R"(,"script_compilation_time_ms":-0.1})",
       "script_compilation_time_ms must be >= 0", "script_compilation_time_ms"},
      {std::string(kBase) + R"(,"script_compilation_time_ms":[1]})",
       "script_compilation_time_ms must be a number", "script_compilation_time_ms"},
      {std::string(kBase) + R"(,"checkpoint_loading_time_ms":"x"})",
       "checkpoint_loading_time_ms must be a number", "checkpoint_loading_time_ms"},
      {std::string(kBase) + R"(,"checkpoint_loading_time_ms":-1e-9})",
       "checkpoint_loading_time_ms must be >= 0", "checkpoint_loading_time_ms"},
      {std::string(kBase) + R"(,"ai_strategy":""})", "ai_strategy must be 1 to 64 characters",
       "ai_strategy"},
      {std::string(kBase) + R"(,"ai_strategy":")" + std::string(65, 's') + R"("})",
       "ai_strategy must be 1 to 64 characters", "ai_strategy"},
      {std::string(kBase) + R"(,"ai_strategy":7})", "ai_strategy must be a string", "ai_strategy"},
      {std::string(kBase) + R"(,"pattern_discoveries":-2})",
       "pattern_discoveries must be an integer >= 0", "pattern_discoveries"},
      {std::string(kBase) + R"(,"timestamp":-1})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
      {std::string(kBase) + R"(,"timestamp":"2024-02-30T00:00:00Z"})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
      {std::string(kBase) + R"(,"timestamp":true})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
      {std::string(kBase) + R"(,"timestamp":1e12})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
      {std::string(kBase) + R"(,"error_message":")" + std::string(4097, 'm') + R"("})",
       "error_message must be 0 to 4096 characters", "error_message"},
      {std::string(kBase) + R"(,"error_message":{}})", "error_message must be a string",
       "error_message"},
      {std::string(kBase) + R"(,"performance_score":"high"})", "performance_score must be a number",
       "performance_score"},
  };
  for (const BadCase& c : cases) {
    Experiment e;
    ExpectBad(c, CheckExperiment(c.extra, &e));
  }
}

TEST(ValidateExperiment, InfinityFromOverflowIsRefusedAsABody) {
  Experiment e;
  std::optional<InputError> err =
      CheckExperiment(std::string(kBase) + R"(,"performance_score":1e400})", &e);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->status, 400);
  EXPECT_EQ(err->error, "invalid JSON: number overflow parsing '1e400'");
  EXPECT_EQ(err->field, "");
  // NaN and Infinity are not JSON at all.
  err = CheckExperiment(std::string(kBase) + R"(,"performance_score":NaN})", &e);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->error.substr(0, 13), "invalid JSON:");
}

TEST(ValidateExperiment, BatchItemPathsPrefixFields) {
  DecodedBody d;
  ASSERT_EQ(Refusal(DecodeBody(R"([{"experiment_id":"a","status":"success","duration_seconds":1}, 3,
                          {"experiment_id":"c","status":"bad","duration_seconds":1}])",
                               "application/json", BodyLimits(), &d)),
            std::nullopt);
  ASSERT_EQ(d.items.size(), 3u);
  EXPECT_FALSE(d.single);
  Experiment e;
  EXPECT_EQ(Refusal(ValidateExperiment(d.items[0], d.ItemPath(0), kNow, &e)), std::nullopt);
  std::optional<InputError> err = Refusal(ValidateExperiment(d.items[1], d.ItemPath(1), kNow, &e));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->error, "an experiment must be a JSON object");
  EXPECT_EQ(err->field, "items[1]");
  err = Refusal(ValidateExperiment(d.items[2], d.ItemPath(2), kNow, &e));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->field, "items[2].status");
}

TEST(ValidatePattern, ValidAndEveryRule) {
  Pattern p;
  ASSERT_EQ(CheckPattern(R"({"pattern_id":"p1","pattern_type":"Menu_Navigation",
      "quality_score":1,"discovery_time_seconds":2.5,"experiment_id":"e1","ai_worker":"w1",
      "reuse_count":3,"timestamp":1700000001})",
                         &p),
            std::nullopt);
  EXPECT_EQ(p.type, PatternType::kMenuNavigation);
  EXPECT_EQ(p.quality_score, 1.0);
  EXPECT_EQ(p.discovery_time_seconds, 2.5);
  EXPECT_EQ(p.experiment_id, "e1");
  EXPECT_EQ(p.ai_worker, "w1");
  EXPECT_EQ(p.reuse_count, 3);
  EXPECT_EQ(p.timestamp, 1700000001.0);
  EXPECT_EQ(ToJson(p)["pattern_type"], "menu_navigation");

  ASSERT_EQ(CheckPattern(std::string(kPatternBase) + "}", &p), std::nullopt);
  EXPECT_EQ(p.reuse_count, 0);
  EXPECT_EQ(p.timestamp, kNow);

  const std::vector<BadCase> cases = {
      {R"({"pattern_type":"battle","quality_score":0.5})", "pattern_id is required", "pattern_id"},
      {R"({"pattern_id":"","pattern_type":"battle","quality_score":0.5})",
       "pattern_id must be 1 to 128 characters", "pattern_id"},
      {R"({"pattern_id":"p","quality_score":0.5})", "pattern_type is required", "pattern_type"},
      {R"({"pattern_id":"p","pattern_type":"walking","quality_score":0.5})",
       "pattern_type must be one of movement, battle, menu_navigation, item_usage, dialogue, "
       "optimization",
       "pattern_type"},
      {R"({"pattern_id":"p","pattern_type":"battle"})", "quality_score is required",
       "quality_score"},
      {R"({"pattern_id":"p","pattern_type":"battle","quality_score":1.01})",
       "quality_score must be <= 1", "quality_score"},
      {R"({"pattern_id":"p","pattern_type":"battle","quality_score":-0.1})",
       "quality_score must be >= 0", "quality_score"},
      {std::string(kPatternBase) + R"(,"discovery_time_seconds":-1})",
       "discovery_time_seconds must be >= 0", "discovery_time_seconds"},
      {std::string(kPatternBase) + R"(,"experiment_id":""})",
       "experiment_id must be 1 to 128 characters", "experiment_id"},
      {std::string(kPatternBase) + R"(,"ai_worker":")" + std::string(129, 'w') + R"("})",
       "ai_worker must be 1 to 128 characters", "ai_worker"},
      {std::string(kPatternBase) + R"(,"reuse_count":-1})", "reuse_count must be an integer >= 0",
       "reuse_count"},
      {std::string(kPatternBase) + R"(,"timestamp":"yesterday"})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
  };
  for (const BadCase& c : cases) ExpectBad(c, CheckPattern(c.extra, &p));
}

TEST(ParseRfc3339, Table) {
  struct Case {
    const char* text;
    std::optional<double> want;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0.0},
      {"2024-05-01T12:00:00.5Z", 1714564800.5},
      {"2024-05-01t12:00:00z", 1714564800.0},
      {"2024-05-01 12:00:00Z", 1714564800.0},
      {"2024-05-01T14:00:00+02:00", 1714564800.0},
      {"2024-05-01T07:30:00-04:30", 1714564800.0},
      {"2024-02-29T00:00:00Z", 1709164800.0},
      {"2016-12-31T23:59:60Z", 1483228799.0},  // leap second: the last second of its minute
      {"9999-12-31T23:59:59Z", 253402300799.0},
      {"2023-02-29T00:00:00Z", std::nullopt},
      {"2024-13-01T00:00:00Z", std::nullopt},
      {"2024-01-01T24:00:00Z", std::nullopt},
      {"2024-01-01T00:00:00", std::nullopt},    // no offset
      {"2024-01-01T00:00:00.Z", std::nullopt},  // empty fraction
      {"2024-01-01T00:00:00+0200", std::nullopt},
      {"2024-01-01T00:00:00Z ", std::nullopt},
      {"1969-12-31T23:59:59Z", std::nullopt},
      {"24-01-01T00:00:00Z", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseRfc3339(c.text), c.want) << c.text;
}

TEST(FramingFor, ContentTypes) {
  EXPECT_EQ(FramingFor("application/json"), Framing::kJson);
  EXPECT_EQ(FramingFor("Application/JSON; charset=utf-8"), Framing::kJson);
  EXPECT_EQ(FramingFor(""), Framing::kJson);
  EXPECT_EQ(FramingFor("application/x-www-form-urlencoded"), Framing::kJson);
  EXPECT_EQ(FramingFor("application/x-ndjson"), Framing::kNdjson);
  EXPECT_EQ(FramingFor("application/ndjson ; charset=utf-8"), Framing::kNdjson);
  EXPECT_EQ(FramingFor("text/plain"), std::nullopt);
  EXPECT_EQ(FramingFor("application/jsonx"), std::nullopt);
  EXPECT_EQ(FramingFor("multipart/form-data; boundary=x"), std::nullopt);
}

struct BodyCase {
  std::string body;
  std::string content_type;
  int status;
  std::string error;
  std::string field;
};

TEST(DecodeBody, GarbageIsRefusedExactly) {
  BodyLimits limits;
  limits.max_items = 3;
  limits.max_body_bytes = 20 * 1024 * 1024;
  const std::vector<BodyCase> cases = {
      {"", "application/json", 400, "empty body", ""},
      {" \r\n\t", "application/json", 400, "empty body", ""},
      {"\n\n", "application/x-ndjson", 400, "empty body", ""},
      {R"({"experiment_id":)", "application/json", 400,
       "invalid JSON: parse error at line 1, column 18: syntax error while parsing value - "
       "unexpected end of input; expected '[', '{', or a literal",
       ""},
      {"{} x", "application/json", 400,
       "invalid JSON: parse error at line 1, column 4: syntax error while parsing value - "
       "invalid literal; last read: '{} x'; expected end of input",
       ""},
      {std::string(100000, '['), "application/json", 400, "JSON nested deeper than 32 levels", ""},
      {std::string(100000, '{'), "application/json", 400,
       "invalid JSON: parse error at line 1, column 2: syntax error while parsing object key - "
       "unexpected '{'; expected string literal",
       ""},
      {"42", "application/json", 400, "body must be a JSON object or array", ""},
      {"\"text\"", "application/json", 400, "body must be a JSON object or array", ""},
      {"[{},{},{},{}]", "application/json", 413, "batch has more than 3 items", ""},
      {"{}\n{}\n{}\n{}\n", "application/x-ndjson", 413, "batch has more than 3 items", ""},
      {"{}\n\n[1]\n", "application/x-ndjson", 400, "line 3: not a JSON object", "items[1]"},
      {"{}\n{\"a\":\n", "application/x-ndjson", 400,
       "line 2: invalid JSON: parse error at line 1, column 6: syntax error while parsing value "
       "- unexpected end of input; expected '[', '{', or a literal",
       "items[1]"},
      {"{}", "text/plain", 415,
       "unsupported Content-Type \"text/plain\": use application/json or application/x-ndjson", ""},
      {"[1e400]", "application/json", 400, "invalid JSON: number overflow parsing '1e400'", ""},
      {"[-1e999]", "application/json", 400, "invalid JSON: number overflow parsing '-1e999'", ""},
  };
  for (const BodyCase& c : cases) {
    DecodedBody d;
    std::optional<InputError> err = Refusal(DecodeBody(c.body, c.content_type, limits, &d));
    ASSERT_TRUE(err.has_value()) << c.body.substr(0, 40);
    EXPECT_EQ(err->status, c.status) << c.body.substr(0, 40);
    EXPECT_EQ(err->error, c.error) << c.body.substr(0, 40);
    EXPECT_EQ(err->field, c.field) << c.body.substr(0, 40);
    EXPECT_TRUE(d.items.empty());
  }
}

TEST(DecodeBody, DepthLimitIsInclusive) {
  BodyLimits limits;
  std::string ok = std::string(31, '[') + std::string(31, ']');
  DecodedBody d;
  EXPECT_EQ(Refusal(DecodeBody("{\"x\":" + ok + "}", "", limits, &d)), std::nullopt);
  std::optional<InputError> err =
      Refusal(DecodeBody("{\"x\":[" + ok + "]}", "application/json", limits, &d));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->error, "JSON nested deeper than 32 levels");
}

TEST(DecodeBody, SizeLimitAndHugeStrings) {
  BodyLimits limits;
  limits.max_body_bytes = 100;
  DecodedBody d;
  std::optional<InputError> err =
      Refusal(DecodeBody("[" + std::string(100, ' ') + "]", "application/json", limits, &d));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->status, 413);
  EXPECT_EQ(err->error, "body larger than 100 bytes");

  // A 10 MB string under a raised limit parses; the validator then refuses its length.
  limits.max_body_bytes = 11 * 1024 * 1024;
  std::string body =
      std::string(kBase) + R"(,"error_message":")" + std::string(10 * 1024 * 1024, 'a') + R"("})";
  ASSERT_EQ(Refusal(DecodeBody(body, "application/json", limits, &d)), std::nullopt);
  Experiment e;
  err = Refusal(ValidateExperiment(d.items[0], d.ItemPath(0), kNow, &e));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->error, "error_message must be 0 to 4096 characters");
  // An unterminated 10 MB string: the message does not echo the megabytes back.
  err = Refusal(
      DecodeBody("{\"a\":\"" + std::string(10 * 1024 * 1024, 'a'), "application/json", limits, &d));
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->status, 400);
  EXPECT_LE(err->error.size(), 220u);
  EXPECT_EQ(err->error.substr(err->error.size() - 3), "...");
}

TEST(DecodeBody, FramesObjectsArraysAndNdjson) {
  DecodedBody d;
  ASSERT_EQ(Refusal(DecodeBody(R"({"a":1})", "application/json", BodyLimits(), &d)), std::nullopt);
  EXPECT_TRUE(d.single);
  EXPECT_EQ(d.ItemPath(0), "");
  ASSERT_EQ(Refusal(DecodeBody("[]", "application/json", BodyLimits(), &d)), std::nullopt);
  EXPECT_FALSE(d.single);
  EXPECT_TRUE(d.items.empty());
  ASSERT_EQ(
      Refusal(DecodeBody("{\"a\":1}\r\n\n  \n{\"a\":2}", "application/x-ndjson", BodyLimits(), &d)),
      std::nullopt);
  EXPECT_FALSE(d.single);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[1]["a"], 2);
  EXPECT_EQ(d.ItemPath(1), "items[1]");
}

}  // namespace
}  // namespace speedmon::speedrun
