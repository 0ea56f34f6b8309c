#include "admin/router.h"

#include <gtest/gtest.h>

namespace speedmon::admin {
namespace {

using R = RouteMatch::Result;

TEST(Router, ExactPathsAndMethods) {
  struct Row {
    const char* method;
    const char* path;
    R result;
    Route route;
  };
  const Row rows[] = {
      {"GET", "/metrics", R::kFound, Route::kMetrics},
      {"HEAD", "/metrics", R::kFound, Route::kMetrics},
      {"GET", "/", R::kFound, Route::kStatusPage},
      {"GET", "/index.html", R::kFound, Route::kStatusPage},
      {"GET", "/healthz", R::kFound, Route::kHealthz},
      {"GET", "/ready", R::kFound, Route::kReady},
      {"POST", "/api/v1/experiments", R::kFound, Route::kExperiments},
      {"GET", "/api/v1/experiments", R::kFound, Route::kExperiments},
      {"POST", "/api/v1/patterns", R::kFound, Route::kPatterns},
      {"GET", "/api/v1/sla", R::kFound, Route::kSla},
      {"GET", "/api/v1/timeseries", R::kFound, Route::kTimeseries},
      {"GET", "/api/v1/alert-rules", R::kFound, Route::kAlertRules},
      {"GET", "/api/v1/patterns", R::kFound, Route::kPatterns},
      {"GET", "/api/v1/summary", R::kFound, Route::kSummary},
      {"POST", "/api/v1/events", R::kFound, Route::kEvents},
      {"POST", "/api/v1/processes", R::kFound, Route::kProcesses},
      {"GET", "/api/v1/processes", R::kFound, Route::kProcesses},
      {"GET", "/api/v1/experiments/e1", R::kFound, Route::kExperiment},
      {"GET", "/api/v1/patterns/p1", R::kFound, Route::kPattern},
      {"POST", "/api/v1/patterns/p1/reuse", R::kFound, Route::kPatternReuse},
      {"DELETE", "/api/v1/processes/emu-5", R::kFound, Route::kProcess},
      {"GET", "/metrics/", R::kNotFound, Route::kHealthz},
      {"GET", "/api/v1", R::kNotFound, Route::kHealthz},
      {"GET", "/API/v1/sla", R::kNotFound, Route::kHealthz},
      {"GET", "", R::kNotFound, Route::kHealthz},
      {"get", "/metrics", R::kMethodNotAllowed, Route::kHealthz},
  };
  for (const Row& row : rows) {
    RouteMatch m = MatchRoute(row.method, row.path);
    EXPECT_EQ(m.result, row.result) << row.method << " " << row.path;
    if (row.result == R::kFound) {
      EXPECT_EQ(m.route, row.route) << row.path;
    }
  }
}

TEST(Router, MethodNotAllowedListsTheAllowedOnes) {
  RouteMatch m = MatchRoute("POST", "/metrics");
  EXPECT_EQ(m.result, R::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD");
  EXPECT_EQ(m.allow_text, "GET");
  EXPECT_EQ(MatchRoute("PUT", "/api/v1/alert-rules").allow_text, "GET or POST");
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/experiments").allow, "GET, HEAD, POST");
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/patterns").allow, "GET, HEAD, POST");
  EXPECT_EQ(MatchRoute("GET", "/api/v1/events").allow, "POST");
  EXPECT_EQ(MatchRoute("POST", "/api/v1/summary").allow, "GET, HEAD");
  EXPECT_EQ(MatchRoute("POST", "/api/v1/experiments/e1").allow, "GET, HEAD");
  EXPECT_EQ(MatchRoute("GET", "/api/v1/patterns/p1/reuse").allow, "POST");
  EXPECT_EQ(MatchRoute("GET", "/api/v1/processes/x").allow, "DELETE");
  EXPECT_EQ(MatchRoute("GET", "/api/v1/alert-rules/x").allow, "DELETE");
}

TEST(Router, ParametersAreOneDecodedSegment) {
  RouteMatch m = MatchRoute("POST", "/api/v1/patterns/p%2017/reuse");
  ASSERT_EQ(m.result, R::kFound);
  EXPECT_EQ(m.route, Route::kPatternReuse);
  EXPECT_EQ(m.param, "p 17");
  m = MatchRoute("DELETE", "/api/v1/alert-rules/high_cpu");
  ASSERT_EQ(m.result, R::kFound);
  EXPECT_EQ(m.route, Route::kAlertRule);
  EXPECT_EQ(m.param, "high_cpu");
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/alert-rules/%FF").param, "\xFF");
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/alert-rules/%zz").result, R::kBadParameter);
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/alert-rules/").result, R::kNotFound);
  EXPECT_EQ(MatchRoute("DELETE", "/api/v1/alert-rules/a/b").result, R::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/api/v1/patterns//reuse").result, R::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/api/v1/patterns/a/b/reuse").result, R::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/api/v1/patterns/reuse").result, R::kMethodNotAllowed);
  m = MatchRoute("GET", "/api/v1/patterns/reuse");  // a pattern whose id is "reuse"
  ASSERT_EQ(m.result, R::kFound);
  EXPECT_EQ(m.route, Route::kPattern);
  EXPECT_EQ(m.param, "reuse");
  m = MatchRoute("GET", "/api/v1/experiments/exp%2F1");
  ASSERT_EQ(m.result, R::kFound);
  EXPECT_EQ(m.param, "exp/1");
  EXPECT_EQ(MatchRoute("GET", "/api/v1/experiments/a/b").result, R::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/api/v1/patterns/a/b").result, R::kNotFound);
}

}  // namespace
}  // namespace speedmon::admin
