// Table-driven tests of SLA compliance (sla.h) with exact, hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "speedrun/sla.h"

namespace speedmon::speedrun {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::optional<double> kNull = std::nullopt;

struct E {
  bool success = true;
  std::optional<double> compile_ms;
  std::optional<double> checkpoint_ms;
};

std::vector<E> Repeat(int n, E e) { return std::vector<E>(static_cast<size_t>(n), e); }

std::vector<E> Concat(std::vector<E> a, const std::vector<E>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Case {
  const char* name;
  std::vector<E> experiments;
  std::vector<double> patterns;
  double availability = kNaN;
  uint32_t experiments_window = 1000;
  uint32_t patterns_window = 500;
  // Expected, in requirement order: success rate, compilation, checkpoint, quality,
  // availability.
  std::array<std::optional<double>, kRequirementCount> values;
  bool overall;
  uint64_t window_experiments;
  uint64_t window_patterns;
};

const E kOk{true, 50, 200};
const E kFail{false, 50, 200};
const E kBare{true, std::nullopt, std::nullopt};

TEST(SlaWindow, HandComputedCases) {
  const Case cases[] = {
      {"no data at all: every value null, overall true",
       {},
       {},
       kNaN,
       1000,
       500,
       {kNull, kNull, kNull, kNull, kNull},
       true,
       0,
       0},
      {"95 of 100 succeed: exactly 95.0 and compliant",
       Concat(Repeat(95, kOk), Repeat(5, kFail)),
       {},
       kNaN,
       1000,
       500,
       {95.0, 100.0, 100.0, kNull, kNull},
       true,
       100,
       0},
      {"94 of 100 succeed: 94.0, fails overall",
       Concat(Repeat(94, kOk), Repeat(6, kFail)),
       {},
       kNaN,
       1000,
       500,
       {94.0, 100.0, 100.0, kNull, kNull},
       false,
       100,
       0},
      {"19 of 20 succeed: exactly 95.0",
       Concat(Repeat(19, kOk), Repeat(1, kFail)),
       {},
       kNaN,
       1000,
       500,
       {95.0, 100.0, 100.0, kNull, kNull},
       true,
       20,
       0},
      {"1 of 3: 100/3 as one rounded division",
       Concat(Repeat(1, kOk), Repeat(2, kFail)),
       {},
       kNaN,
       1000,
       500,
       {100.0 / 3, 100.0, 100.0, kNull, kNull},
       false,
       3,
       0},
      {"compile target is strictly under: 100 ms is not under 100; 0 is not measured",
       {{true, 99.999, std::nullopt}, {true, 100, std::nullopt}, {true, 0, std::nullopt}},
       {},
       kNaN,
       1000,
       500,
       {100.0, 50.0, kNull, kNull, kNull},
       false,
       3,
       0},
      {"19 of 20 under the compile target: 95.0 compliant",
       Concat(Repeat(19, {true, 99, std::nullopt}), Repeat(1, {true, 150, std::nullopt})),
       {},
       kNaN,
       1000,
       500,
       {100.0, 95.0, kNull, kNull, kNull},
       true,
       20,
       0},
      {"experiments without a compile time are left out",
       Concat(Repeat(5, kBare), Repeat(5, {true, 10, std::nullopt})),
       {},
       kNaN,
       1000,
       500,
       {100.0, 100.0, kNull, kNull, kNull},
       true,
       10,
       0},
      {"checkpoint: 500 ms is not under 500, 499.9 is",
       {{true, std::nullopt, 500}, {true, std::nullopt, 499.9}},
       {},
       kNaN,
       1000,
       500,
       {100.0, kNull, 50.0, kNull, kNull},
       false,
       2,
       0},
      {"only success counts as a success",
       {{true}, {false}, {false}, {false}, {false}},
       {},
       kNaN,
       1000,
       500,
       {20.0, kNull, kNull, kNull, kNull},
       false,
       5,
       0},
      {"the window slides: the two oldest failures fall out",
       Concat(Repeat(2, kFail), Repeat(4, kOk)),
       {},
       kNaN,
       4,
       500,
       {100.0, 100.0, 100.0, kNull, kNull},
       true,
       4,
       0},
      {"patterns count without experiments; 0.7 x3 is exactly 0.7 and compliant",
       {},
       {0.7, 0.7, 0.7},
       kNaN,
       1000,
       500,
       {kNull, kNull, kNull, 0.7, kNull},
       true,
       0,
       3},
      {"0.1 + 0.2 + 0.3 + 0.4 averages to exactly 0.25",
       {},
       {0.1, 0.2, 0.3, 0.4},
       kNaN,
       1000,
       500,
       {kNull, kNull, kNull, 0.25, kNull},
       false,
       0,
       4},
      {"quality 0.69 and 0.70 average 0.695: not compliant",
       {},
       {0.69, 0.7},
       kNaN,
       1000,
       500,
       {kNull, kNull, kNull, 0.695, kNull},
       false,
       0,
       2},
      {"patterns window slides",
       {},
       {0.1, 0.9, 0.8},
       kNaN,
       1000,
       2,
       {kNull, kNull, kNull, 0.85, kNull},
       true,
       0,
       2},
      {"availability exactly at the minimum is compliant",
       {},
       {},
       99.0,
       1000,
       500,
       {kNull, kNull, kNull, kNull, 99.0},
       true,
       0,
       0},
      {"availability under the minimum fails overall",
       Repeat(3, kOk),
       {1.0},
       98.99,
       1000,
       500,
       {100.0, 100.0, 100.0, 1.0, 98.99},
       false,
       3,
       1},
      {"a window capacity of 0 is taken as 1",
       Concat(Repeat(1, kFail), Repeat(1, kOk)),
       {0.2, 0.9},
       kNaN,
       0,
       0,
       {100.0, 100.0, 100.0, 0.9, kNull},
       true,
       1,
       1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SlaWindow w(c.experiments_window, c.patterns_window, config::SlaConfig());
    for (const E& e : c.experiments) w.AddExperiment(e.success, e.compile_ms, e.checkpoint_ms);
    for (double q : c.patterns) w.AddPattern(q);
    w.SetAvailability(c.availability);
    SlaReport r = w.Report();
    for (int i = 0; i < kRequirementCount; ++i) {
      SCOPED_TRACE(RequirementName(static_cast<Requirement>(i)));
      EXPECT_EQ(r.requirements[i].value, c.values[i]);
    }
    EXPECT_EQ(r.overall, c.overall);
    EXPECT_EQ(r.window_experiments, c.window_experiments);
    EXPECT_EQ(r.window_patterns, c.window_patterns);
  }
}

TEST(SlaWindow, ComplianceAgainstConfiguredTargets) {
  config::SlaConfig sla;
  sla.experiment_success_rate_min = 50;
  sla.target_compliance_min = 50;
  sla.pattern_quality_min = 0.5;
  sla.system_availability_min = 75;
  SlaWindow w(10, 10, sla);
  w.AddExperiment(true, 10, 1000);  // compile under 100, checkpoint over 500
  w.AddExperiment(false, 200, 100);
  w.AddPattern(0.5);
  w.SetAvailability(75);
  SlaReport r = w.Report();
  EXPECT_EQ(r[Requirement::kExperimentSuccessRate].compliant(), true);
  EXPECT_EQ(r[Requirement::kScriptCompilation].value, 50.0);
  EXPECT_EQ(r[Requirement::kScriptCompilation].compliant(), true);
  EXPECT_EQ(r[Requirement::kCheckpointLoading].compliant(), true);
  EXPECT_EQ(r[Requirement::kPatternQuality].compliant(), true);
  EXPECT_EQ(r[Requirement::kSystemAvailability].compliant(), true);
  EXPECT_TRUE(r.overall);
  EXPECT_EQ(r[Requirement::kScriptCompilation].target, 50.0);
  EXPECT_EQ(r[Requirement::kPatternQuality].target, 0.5);

  // A reloaded config recounts the window against the new targets.
  sla.script_compilation_target_ms = 5;
  w.SetSla(sla);
  r = w.Report();
  EXPECT_EQ(r[Requirement::kScriptCompilation].value, 0.0);
  EXPECT_EQ(r[Requirement::kScriptCompilation].compliant(), false);
  EXPECT_FALSE(r.overall);
  sla.script_compilation_target_ms = 1000;
  w.SetSla(sla);
  EXPECT_EQ(w.Report()[Requirement::kScriptCompilation].value, 100.0);
  // Availability back to unknown: null again, and no longer failing anything.
  w.SetAvailability(kNaN);
  EXPECT_EQ(w.Report()[Requirement::kSystemAvailability].value, std::nullopt);
}

TEST(SlaWindow, AveragesOfReportedTimes) {
  SlaWindow w(3, 10, config::SlaConfig());
  EXPECT_EQ(w.Report().average_compile_ms, std::nullopt);
  w.AddExperiment(true, 80, std::nullopt);
  w.AddExperiment(true, std::nullopt, std::nullopt);
  w.AddExperiment(true, 100, 400);
  SlaReport r = w.Report();
  EXPECT_EQ(r.average_compile_ms, 90.0);
  EXPECT_EQ(r.average_checkpoint_ms, 400.0);
  // Slide past every entry several times; the averages follow the window exactly.
  for (int i = 0; i < 10; ++i) w.AddExperiment(true, 0.1 * i, 0.3);
  r = w.Report();
  ASSERT_TRUE(r.average_compile_ms.has_value());
  EXPECT_DOUBLE_EQ(*r.average_compile_ms, (0.7 + 0.8 + 0.9) / 3);
  EXPECT_DOUBLE_EQ(*r.average_checkpoint_ms, 0.3);
}

// A compile or checkpoint time of 0 (or below) is "not measured", as an absent one: it
// moves neither the averages nor the percentages (56.7 stays 56.7, not 54.23...).
TEST(SlaWindow, ZeroTimesAreNotMeasured) {
  SlaWindow w(10, 10, config::SlaConfig());
  w.AddExperiment(true, 50.0, 400.0);
  w.AddExperiment(true, 63.4, 450.0);
  SlaReport before = w.Report();
  w.AddExperiment(true, 0.0, 0.0);
  w.AddExperiment(false, -1.0, std::nullopt);
  SlaReport r = w.Report();
  EXPECT_EQ(r.average_compile_ms, before.average_compile_ms);
  EXPECT_EQ(r.average_compile_ms, (50.0 + 63.4) / 2);
  EXPECT_EQ(r.average_checkpoint_ms, 425.0);
  EXPECT_EQ(r[Requirement::kScriptCompilation].value, 100.0);
  EXPECT_EQ(r.counts.experiments, 4u);
  EXPECT_EQ(r.counts.successes, 3u);
  EXPECT_EQ(r.counts.compile_measured, 2u);
  EXPECT_EQ(r.counts.checkpoint_measured, 2u);
}

// The counts behind the values: added over several windows and divided, they give the
// value one window over the union would (what the fleet recording rules compute).
TEST(SlaWindow, CountsAddUpAcrossWindows) {
  config::SlaConfig sla;  // compile target 100 ms, checkpoint 500 ms
  SlaWindow a(100, 100, sla), b(100, 100, sla), both(100, 100, sla);
  struct X {
    bool ok;
    std::optional<double> compile, checkpoint;
  };
  const X xs[] = {{true, 87.3, 425.8}, {false, 120.0, std::nullopt}, {true, 0.0, 600.0},
                  {true, 99.9, 499.9}, {true, std::nullopt, 510.0},  {false, 100.0, 12.5}};
  for (size_t i = 0; i < std::size(xs); ++i) {
    (i % 2 ? a : b).AddExperiment(xs[i].ok, xs[i].compile, xs[i].checkpoint);
    both.AddExperiment(xs[i].ok, xs[i].compile, xs[i].checkpoint);
  }
  for (double q : {0.82, 0.5, 0.91}) {
    a.AddPattern(q);
    both.AddPattern(q);
  }
  b.AddPattern(0.7);
  both.AddPattern(0.7);
  SlaCounts ca = a.Report().counts, cb = b.Report().counts;
  SlaReport u = both.Report();
  EXPECT_EQ(ca.experiments + cb.experiments, 6u);
  EXPECT_EQ(ca.successes + cb.successes, 4u);
  EXPECT_EQ(ca.compile_measured + cb.compile_measured, 4u);          // 0.0 and absent left out
  EXPECT_EQ(ca.compile_under_target + cb.compile_under_target, 2u);  // 87.3, 99.9
  EXPECT_EQ(ca.checkpoint_measured + cb.checkpoint_measured, 5u);
  EXPECT_EQ(ca.checkpoint_under_target + cb.checkpoint_under_target, 3u);
  EXPECT_EQ(ca.patterns + cb.patterns, 4u);
  EXPECT_EQ(static_cast<double>((ca.successes + cb.successes) * 100) /
                static_cast<double>(ca.experiments + cb.experiments),
            u[Requirement::kExperimentSuccessRate].value);
  EXPECT_EQ(static_cast<double>((ca.compile_under_target + cb.compile_under_target) * 100) /
                static_cast<double>(ca.compile_measured + cb.compile_measured),
            u[Requirement::kScriptCompilation].value);
  EXPECT_EQ(static_cast<double>((ca.checkpoint_under_target + cb.checkpoint_under_target) * 100) /
                static_cast<double>(ca.checkpoint_measured + cb.checkpoint_measured),
            u[Requirement::kCheckpointLoading].value);
  EXPECT_DOUBLE_EQ((ca.compile_ms_sum + cb.compile_ms_sum) /
                       static_cast<double>(ca.compile_measured + cb.compile_measured),
                   *u.average_compile_ms);
  EXPECT_DOUBLE_EQ(
      (ca.quality_sum + cb.quality_sum) / static_cast<double>(ca.patterns + cb.patterns),
      *u[Requirement::kPatternQuality].value);
}

TEST(SlaJson, SpecShapeWithNulls) {
  SlaWindow w(1000, 500, config::SlaConfig());
  for (int i = 0; i < 39; ++i) w.AddExperiment(true, 87.3, std::nullopt);
  w.AddExperiment(false, 87.3, std::nullopt);
  nlohmann::json j = SlaJson(w.Report(), config::SlaConfig());
  nlohmann::json want = R"({
    "overall_sla_compliant": true,
    "individual_compliance": {"experiment_success_rate": true, "script_compilation": true,
      "checkpoint_loading": null, "pattern_quality": null, "system_availability": null},
    "values": {"experiment_success_rate": 97.5, "script_compilation": 100.0,
      "checkpoint_loading": null, "pattern_quality": null, "system_availability": null},
    "targets": {"experiment_success_rate": 95.0, "script_compilation": 95.0,
      "checkpoint_loading": 95.0, "pattern_quality": 0.7, "system_availability": 99.0},
    "latency_targets_ms": {"script_compilation": 100.0, "checkpoint_loading": 500.0},
    "window": {"experiments": 40, "patterns": 0}})"_json;
  EXPECT_EQ(j, want) << j.dump(2);
}

}  // namespace
}  // namespace speedmon::speedrun
