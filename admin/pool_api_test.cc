// Pool manager bodies: events and process watches, exact errors; EventLog counting and
// duplicates.
#include "admin/pool_api.h"

#include <gtest/gtest.h>

namespace speedmon::admin {
namespace {

constexpr double kNow = 1767225600;  // 2026-01-01T00:00:00Z

base::StatusOr<DecodedEvents> Parse(std::string_view body,
                                    std::string_view content_type = "application/json") {
  return ParseEvents(body, content_type, speedrun::BodyLimits{}, kNow);
}

TEST(ParseEventsTest, OneOfEachKind) {
  base::StatusOr<DecodedEvents> r = Parse(
      R"([{"event":"failure","failure_type":"OOM","process":"emulator-1","event_id":"e1",)"
      R"("message":"killed"},{"event":"Restart","startup_seconds":3.5,"process":"emulator-1"},)"
      R"({"event":"replacement","replaced_by":"emulator-5","timestamp":"2026-01-01T00:01:00Z",)"
      R"("ignored":true}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->single);
  ASSERT_EQ(r->events.size(), 3u);
  EXPECT_EQ(r->events[0].kind, PoolEvent::Kind::kFailure);
  EXPECT_EQ(r->events[0].failure_type, "oom");
  EXPECT_EQ(r->events[0].event_id, "e1");
  EXPECT_EQ(r->events[0].message, "killed");
  EXPECT_EQ(r->events[0].timestamp, kNow);
  EXPECT_EQ(r->events[1].kind, PoolEvent::Kind::kRestart);
  EXPECT_EQ(r->events[1].startup_seconds, 3.5);
  EXPECT_EQ(r->events[2].kind, PoolEvent::Kind::kReplacement);
  EXPECT_EQ(r->events[2].replaced_by, "emulator-5");
  EXPECT_EQ(r->events[2].timestamp, kNow + 60);
  base::StatusOr<DecodedEvents> one = Parse(R"({"event":"restart"})");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->single);
}

TEST(ParseEventsTest, RefusesWithExactErrors) {
  struct Case {
    const char* body;
    const char* error;
    const char* field;
  };
  const Case cases[] = {
      {R"({})", "event is required", "event"},
      {R"({"event":"boom"})", "event must be one of failure, restart, replacement", "event"},
      {R"({"event":"failure"})", "failure_type is required", "failure_type"},
      {R"({"event":"failure","failure_type":"meteor"})",
       "failure_type must be one of crash, exit, oom, hang, timeout, connect, status, other",
       "failure_type"},
      {R"({"event":"restart","failure_type":"crash"})", "failure_type is only for a failure",
       "failure_type"},
      {R"({"event":"failure","failure_type":"crash","startup_seconds":1})",
       "startup_seconds is only for a restart or a replacement", "startup_seconds"},
      {R"({"event":"restart","startup_seconds":-1})",
       "startup_seconds must be a number from 0 to 86400", "startup_seconds"},
      {R"({"event":"restart","replaced_by":"x"})", "replaced_by is only for a replacement",
       "replaced_by"},
      {R"({"event":"restart","event_id":""})", "event_id must be 1 to 128 characters", "event_id"},
      {R"({"event":"restart","timestamp":"yesterday"})",
       "timestamp must be unix seconds or an RFC 3339 date-time (1970 to 9999)", "timestamp"},
      {R"([{"event":"restart"},{"event":7}])", "items[1].event must be a string", "items[1].event"},
      {R"([1])", "items[0] must be a JSON object", "items[0]"},
  };
  for (const Case& c : cases) {
    base::StatusOr<DecodedEvents> r = Parse(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status(), base::InvalidArgumentError(c.error, c.field)) << c.body;
  }
  EXPECT_EQ(Parse("{}", "text/csv").status().code(), base::StatusCode::kUnsupportedFormat);
}

TEST(ParseProcessWatchTest, SelectorsAndErrors) {
  base::StatusOr<ProcessWatch> w = ParseProcessWatch(R"({"name":"emulator-5","pid":4242})");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(sysprobe::SelectorText(w->selector), "pid 4242");
  w = ParseProcessWatch(R"({"name":"e6","cmdline_regex":"gym.*8086"})");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(sysprobe::SelectorText(w->selector), "cmdline_regex gym.*8086");
  struct Case {
    const char* body;
    const char* error;
    const char* field;
  };
  const Case cases[] = {
      {R"({"pid":1})", "name is required", "name"},
      {R"({"name":"a b","pid":1})", "name must be 1 to 64 characters of A-Z a-z 0-9 _ . -", "name"},
      {R"({"name":"a"})", "give exactly one of pid, pid_file, cmdline_regex", "pid"},
      {R"({"name":"a","pid":1,"pid_file":"/x"})",
       "give exactly one of pid, pid_file, cmdline_regex", "pid"},
      {R"({"name":"a","pid":0})", "pid must be an integer from 1 to 4194304", "pid"},
      {R"({"name":"a","pid":1.5})", "pid must be an integer from 1 to 4194304", "pid"},
      {R"({"name":"a","pid_file":"run/x.pid"})", "pid_file must be an absolute path", "pid_file"},
      {R"({"name":"a","pdi":1})", "unknown field \"pdi\"", "pdi"},
  };
  for (const Case& c : cases) {
    base::StatusOr<ProcessWatch> r = ParseProcessWatch(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status(), base::InvalidArgumentError(c.error, c.field)) << c.body;
  }
}

TEST(EventLogTest, CountsAppliesAndRecognisesRepeats) {
  prometheus::Registry registry;
  metrics::FamilySet families(registry);
  std::vector<std::string> applied;
  EventLog log(families, [&](const PoolEvent& e) {
    applied.push_back(std::string(PoolEventKindName(e.kind)) + ":" + e.failure_type);
  });
  base::StatusOr<DecodedEvents> r =
      Parse(R"([{"event":"failure","failure_type":"crash","event_id":"a"},)"
            R"({"event":"failure","failure_type":"crash","event_id":"a"},{"event":"restart"}])");
  ASSERT_TRUE(r.ok());
  EventLog::Result result = log.Record(r->events);
  EXPECT_EQ(result.accepted, 2u);
  EXPECT_EQ(result.duplicates, 1u);
  EXPECT_EQ(log.Record(r->events).duplicates, 2u);  // "a" again; the restart has no id
  EXPECT_EQ(applied, (std::vector<std::string>{"failure:crash", "restart:", "restart:"}));
  std::map<std::string, double> counts;
  for (const auto& f : registry.Collect()) {
    for (const auto& m : f.metric) counts[m.label[0].value] = m.counter.value;
  }
  EXPECT_EQ(counts,
            (std::map<std::string, double>{{"failure", 1}, {"replacement", 0}, {"restart", 2}}));
}

}  // namespace
}  // namespace speedmon::admin
