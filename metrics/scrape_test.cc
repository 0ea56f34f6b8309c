// The hand-written request-family writer against the MetricFamily path it replaces on
// GET /metrics: the same bytes over the same counts, parsed-equal to prometheus-cpp's own
// TextSerializer, hostile label values, and consistency while a worker keeps recording.
#include "metrics/scrape.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "base/json.h"

namespace speedmon::metrics {

// Plays a worker preempted in the middle of RecordRequest: the slot's sequence number odd
// and the request in its duration bucket, but not yet in its (method, code) cell, for
// `pause`; then the half-write is taken back and the sequence number even again.
class WorkerStatsPeer {
 public:
  static void StopHalfway(WorkerStats* w, size_t pair, std::atomic<bool>* halfway,
                          std::chrono::milliseconds pause) {
    WorkerStats::RouteSlot& slot = w->route_slots_[pair];
    const uint64_t seq = slot.seq.load(std::memory_order_relaxed);
    slot.seq.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    slot.buckets[0].Add(1);
    halfway->store(true);
    std::this_thread::sleep_for(pause);
    slot.buckets[0].Add(~uint64_t{0});  // minus one
    slot.seq.store(seq + 2, std::memory_order_release);
  }
};

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// A sample line of the text format: name, labels (sorted by name), value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Parsed {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family -> type, from "# TYPE"
  int help_lines = 0, type_lines = 0;
  std::string error;  // empty when every line parsed
};

// A small parser of text 0.0.4 (enough for these tests): comments, names, quoted label
// values with \\, \" and \n escapes, values through strtod (+Inf, NaN).
Parsed Parse(std::string_view text) {
  Parsed out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      out.error = "no newline at the end";
      return out;
    }
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    auto fail = [&](const char* why) { out.error = std::to_string(line_no) + ": " + why; };
    if (line.starts_with("# HELP ")) {
      ++out.help_lines;
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      ++out.type_lines;
      std::string_view rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) return fail("bad TYPE"), out;
      std::string family(rest.substr(0, sp));
      if (out.types.count(family)) return fail("TYPE twice"), out;
      out.types[family] = std::string(rest.substr(sp + 1));
      continue;
    }
    if (line.starts_with("#")) continue;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (s.name.empty()) return fail("no name"), out;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return fail("bad label"), out;
        }
        std::string key(line.substr(i, eq - i));
        std::string value;
        i = eq + 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) return fail("dangling escape"), out;
            char e = line[i + 1];
            if (e == 'n') {
              value.push_back('\n');
            } else if (e == '\\' || e == '"') {
              value.push_back(e);
            } else {
              return fail("unknown escape"), out;
            }
            i += 2;
          } else {
            value.push_back(line[i++]);
          }
        }
        if (i >= line.size()) return fail("unterminated value"), out;
        ++i;  // closing quote
        if (s.labels.count(key)) return fail("label twice"), out;
        s.labels[key] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail("unterminated labels"), out;
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return fail("no value"), out;
    std::string value(line.substr(i + 1));
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') return fail("bad value"), out;
    out.samples.push_back(std::move(s));
  }
  return out;
}

// Sorted "name{k=v,...}" -> value; le values normalised to the double they denote, since
// prometheus-cpp prints bounds with 17 digits.
std::map<std::string, double> Series(const Parsed& p) {
  std::map<std::string, double> out;
  for (const Sample& s : p.samples) {
    std::string key = s.name + "{";
    for (const auto& [k, v] : s.labels) {
      std::string value = v;
      if (k == "le") {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", std::strtod(v.c_str(), nullptr));
        value = buf;
      }
      key += k + "=" + value + ",";
    }
    key += "}";
    EXPECT_EQ(out.count(key), 0u) << "series twice: " << key;
    out[key] = s.value;
  }
  return out;
}

StatsLayout Layout(std::vector<std::string> upstreams, std::vector<std::string> routes) {
  StatsLayout l;
  for (size_t u = 0; u < upstreams.size(); ++u) {
    l.upstreams.push_back(upstreams[u]);
    l.endpoints.push_back(
        {"10.0.0." + std::to_string(u) + ":8080", "10.0.1." + std::to_string(u) + ":8080"});
  }
  l.routes = std::move(routes);
  l.routes.push_back("other");
  return l;
}

// Traffic over every worker, most cells and all kinds of counters; deterministic.
void Populate(const StatsLayout& layout, std::vector<std::unique_ptr<WorkerStats>>* workers) {
  const int upstreams = static_cast<int>(layout.upstreams.size());
  const int routes = static_cast<int>(layout.routes.size());
  const int statuses[] = {200, 201, 204, 299, 301, 404, 418, 499, 500, 503, 504, 599, 42};
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x >> 33;
  };
  for (size_t w = 0; w < workers->size(); ++w) {
    WorkerStats& s = *(*workers)[w];
    for (int i = 0; i < 3000; ++i) {
      int u = static_cast<int>(next() % upstreams);
      int r = static_cast<int>(next() % routes);
      if (u == 0 && r == 1) continue;  // one pair stays empty
      auto method = static_cast<Method>(next() % static_cast<int>(Method::kCount));
      int status = statuses[next() % std::size(statuses)];
      uint64_t duration_ns = (next() % 40'000) * (next() % 1'000'000) + next() % 7;
      s.RecordRequest(u, r, method, status, duration_ns, next() % 5000, next() % 100000);
    }
    s.RecordUpstreamError(1, 1, UpstreamErrorKind::kReset);
    s.RecordUpstreamError(static_cast<int>(w) % upstreams, 0, UpstreamErrorKind::kConnect);
    s.InFlightAdd(0, 2);
    s.ConnectionsAdd(3);
    s.RecordTimeout(DownstreamTimeout::kIdle);
    s.RecordAcceptPause(AcceptPause::kFdLimit);
  }
}

// A few families as the other collectors make them, to follow the request families.
std::vector<MetricFamily> Rest() {
  MetricFamily g{"pokemon_speedrun_system_cpu_percent", "Busy share.", MetricType::Gauge, {}};
  ClientMetric gm;
  gm.gauge.value = 12.5;
  g.metric.push_back(gm);
  MetricFamily c{"pokemon_speedrun_internal_errors_total", "Caught.", MetricType::Counter, {}};
  ClientMetric cm;
  cm.label = {{"component", "admin"}};
  cm.counter.value = 0;
  c.metric.push_back(cm);
  MetricFamily empty{"pokemon_speedrun_nothing", "None.", MetricType::Gauge, {}};
  return {g, empty, c};
}

// `rest` as a scrape appends it after the request families.
AppendText RestText(std::vector<MetricFamily> rest = Rest()) {
  return [rest = std::move(rest)](Format format, TextBuffer* out) {
    AppendFamilies(rest, format, out);
  };
}

// The path GET /metrics took before scrape.h: every family as MetricFamily, then text.
std::string OldPath(const RequestStatsCollector& stats, const std::vector<MetricFamily>& rest,
                    Format format) {
  std::vector<MetricFamily> all = stats.Collect();
  all.insert(all.end(), rest.begin(), rest.end());
  TextBuffer out;
  Serialize(all, format, &out);
  return std::string(out.view());
}

struct Fixture {
  explicit Fixture(StatsLayout l, int workers = 3) : layout(std::move(l)) {
    std::vector<const WorkerStats*> shards;
    for (int w = 0; w < workers; ++w) {
      stats.push_back(std::make_unique<WorkerStats>(layout));
      shards.push_back(stats.back().get());
    }
    collector = std::make_unique<RequestStatsCollector>(layout, shards);
  }
  StatsLayout layout;
  std::vector<std::unique_ptr<WorkerStats>> stats;
  std::unique_ptr<RequestStatsCollector> collector;
};

// The plain body of one scrape, as the admin server sends it.
std::string Scrape(const Fixture& f, const std::vector<MetricFamily>& rest, Format format) {
  ScrapeBody body = WriteScrape(*f.collector, RestText(rest), format, false);
  EXPECT_EQ(body.gzip, "");
  return body.text != nullptr ? std::string(body.text->view()) : "";
}

std::string Gunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out;
  char buf[16384];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

TEST(ScrapeTest, SameBytesAsTheMetricFamilyPath) {
  Fixture f(Layout({"emu-1", "emu-2", "emu-3", "emu-4", "emu-5"}, {"action", "status", "reset"}));
  Populate(f.layout, &f.stats);
  for (Format format : {Format::kText004, Format::kOpenMetrics}) {
    std::string body = Scrape(f, Rest(), format);
    EXPECT_EQ(body, OldPath(*f.collector, Rest(), format));
    // Twice: the second scrape reuses the buffers and the cells found by the first.
    EXPECT_EQ(Scrape(f, Rest(), format), body);
  }
  std::string body = Scrape(f, Rest(), Format::kText004);
  Parsed p = Parse(body);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.help_lines, p.type_lines);
  EXPECT_EQ(p.types["pokemon_speedrun_http_request_duration_seconds"], "histogram");
  EXPECT_EQ(p.types.count("pokemon_speedrun_nothing"), 0u);
  EXPECT_GT(p.samples.size(), 1000u);
}

TEST(ScrapeTest, ParsedEqualToPrometheusCppTextSerializer) {
  Fixture f(Layout({"emu-1", "emu-2", "emu-3"}, {"action", "status"}), 2);
  Populate(f.layout, &f.stats);
  std::vector<MetricFamily> all = f.collector->Collect();
  std::vector<MetricFamily> rest = Rest();
  all.insert(all.end(), rest.begin(), rest.end());
  // prometheus-cpp writes families without samples too; so do not give it the empty one.
  std::erase_if(all, [](const MetricFamily& m) { return m.metric.empty(); });
  std::string theirs = prometheus::TextSerializer().Serialize(all);
  std::string ours = Scrape(f, rest, Format::kText004);
  Parsed a = Parse(ours), b = Parse(theirs);
  ASSERT_EQ(a.error, "");
  ASSERT_EQ(b.error, "");
  EXPECT_EQ(a.types, b.types);
  std::map<std::string, double> sa = Series(a), sb = Series(b);
  EXPECT_EQ(sa.size(), sb.size());
  for (const auto& [key, value] : sa) {
    auto it = sb.find(key);
    if (it == sb.end()) {
      ADD_FAILURE() << "only ours: " << key;
    } else if (std::fabs(it->second - value) > 1e-15 * std::fabs(value)) {
      // prometheus-cpp prints 16 significant digits, one short of a round trip; ours are
      // the shortest that read back exactly, so the two may differ in the last bit.
      ADD_FAILURE() << key << ": ours " << value << ", prometheus-cpp's " << it->second;
    }
  }
  for (const auto& [key, value] : sb) {
    if (!sa.count(key)) ADD_FAILURE() << "only prometheus-cpp's: " << key;
  }
}

TEST(ScrapeTest, HostileLabelValues) {
  // Quotes, backslashes, newlines, an empty name, and bytes that are not UTF-8: a lone
  // continuation byte, an overlong '/', a surrogate, a truncated sequence; plus valid
  // two- and four-byte characters that must pass unchanged.
  StatsLayout l = Layout({"a\"b\\c\nd", "\xff\xfe", "caf\xC3\xA9 \xF0\x9F\x8E\xAE", "",
                          "\xC0\xAF\xED\xA0\x80\xE2\x82"},
                         {"r\"1", "r\\2\n", "\x80"});
  l.endpoints[0] = {"h\"ost:1\n"};
  Fixture f(l, 2);
  for (size_t w = 0; w < f.stats.size(); ++w) {
    for (int u = 0; u < 5; ++u) {
      for (int r = 0; r < 4; ++r) {
        f.stats[w]->RecordRequest(u, r, Method::kGet, 200, 1'000'000, 1, 2);
      }
    }
    f.stats[w]->RecordUpstreamError(0, 0, UpstreamErrorKind::kTimeout);
  }
  for (Format format : {Format::kText004, Format::kOpenMetrics}) {
    std::string body = Scrape(f, {}, format);
    EXPECT_EQ(body, OldPath(*f.collector, {}, format));
    EXPECT_TRUE(base::IsValidUtf8(body));
  }
  std::string body = Scrape(f, {}, Format::kText004);
  EXPECT_NE(body.find("route=\"r\\\"1\",upstream=\"a\\\"b\\\\c\\nd\"}"), std::string::npos);
  EXPECT_NE(body.find("route=\"r\\\\2\\n\",upstream=\"\xEF\xBF\xBD\xEF\xBF\xBD\"}"),
            std::string::npos);
  EXPECT_NE(body.find("upstream=\"caf\xC3\xA9 \xF0\x9F\x8E\xAE\"}"), std::string::npos);
  EXPECT_NE(body.find("route=\"\xEF\xBF\xBD\",upstream=\"\"}"), std::string::npos);
  EXPECT_NE(body.find("endpoint=\"h\\\"ost:1\\n\",kind=\"timeout\",upstream=\"a\\\"b"),
            std::string::npos);
  Parsed p = Parse(body);
  ASSERT_EQ(p.error, "");
  std::set<std::string> upstreams;
  for (const Sample& s : p.samples) {
    if (s.labels.count("upstream")) upstreams.insert(s.labels.at("upstream"));
  }
  EXPECT_EQ(upstreams.size(), 5u);
  EXPECT_EQ(upstreams.count("a\"b\\c\nd"), 1u);
}

TEST(ScrapeTest, GzipRoundTripsToThePlainText) {
  Fixture f(Layout({"emu-1", "emu-2"}, {"action"}));
  Populate(f.layout, &f.stats);
  std::string plain = Scrape(f, Rest(), Format::kText004);
  ScrapeBody gz = WriteScrape(*f.collector, RestText(), Format::kText004, true);
  EXPECT_EQ(gz.text, nullptr);
  EXPECT_EQ(Gunzip(gz.gzip), plain);
  gz = WriteScrape(*f.collector, RestText(), Format::kText004, true);  // stream reset
  EXPECT_EQ(Gunzip(gz.gzip), plain);
}

TEST(ScrapeTest, BodyStillBeingSentIsNotWrittenOver) {
  Fixture f(Layout({"emu-1", "emu-2"}, {"action"}));
  Populate(f.layout, &f.stats);
  ScrapeBody held = WriteScrape(*f.collector, RestText(), Format::kText004, false);
  ASSERT_NE(held.text, nullptr);
  const std::string text(held.text->view());
  f.stats[0]->RecordRequest(0, 0, Method::kGet, 200, 5, 3, 7);
  ScrapeBody next = WriteScrape(*f.collector, RestText(), Format::kOpenMetrics, false);
  ASSERT_NE(next.text, nullptr);
  EXPECT_NE(next.text, held.text);
  EXPECT_EQ(held.text->view(), text);
  // Once nobody holds the older buffers, the next scrape writes into the latest one again.
  const TextBuffer* latest = next.text.get();
  held = {};
  next = {};
  EXPECT_EQ(WriteScrape(*f.collector, RestText(), Format::kText004, false).text.get(), latest);
}

TEST(ScrapeTest, NoTrafficAndNoUpstreams) {
  Fixture quiet(Layout({"emu-1"}, {"action"}), 1);
  Fixture none(Layout({}, {}), 1);
  for (Fixture* f : {&quiet, &none}) {
    for (Format format : {Format::kText004, Format::kOpenMetrics}) {
      EXPECT_EQ(Scrape(*f, {}, format), OldPath(*f->collector, {}, format));
    }
  }
}

TEST(TextBufferTest, GrowsKeepingWhatWasWritten) {
  TextBuffer b;
  std::string expected;
  for (int i = 0; i < 10000; ++i) {
    std::string piece = std::to_string(i) + ",";
    b.Append(piece);
    expected += piece;
  }
  EXPECT_EQ(b.view(), expected);
  size_t cap = b.capacity();
  b.clear();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), cap);
  char* p = b.Reserve(4);
  std::memcpy(p, "abcd", 4);
  b.Commit(p + 3);
  EXPECT_EQ(b.view(), "abc");
}

TEST(TextFormatTest, CountsPrintAsTheirDoubles) {
  for (uint64_t n : {uint64_t{0}, uint64_t{7}, uint64_t{1} << 53, (uint64_t{1} << 53) + 1,
                     uint64_t{999'999'999'999'999}, uint64_t{1'000'000'000'000'000},
                     uint64_t{1'000'000'000'000'001}, ~uint64_t{0}}) {
    char a[kMaxNumberChars], b[kMaxNumberChars];
    EXPECT_EQ(std::string(a, WriteCount(n, a)),
              std::string(b, WriteNumber(static_cast<double>(n), b)))
        << n;
  }
}

// While a worker records, every scrape agrees with itself per (upstream, route): the
// requests by method and code add up to the histogram's count, which is the +Inf bucket,
// and the bytes are exactly what that many requests sent (3 and 7 each).
TEST(ScrapeTest, WaitsForAWriterStoppedHalfwayInsteadOfShowingHalfARequest) {
  Fixture f(Layout({"emu-1"}, {"action"}), 1);
  f.stats[0]->RecordRequest(0, 0, Method::kGet, 200, 1'000'000, 3, 7);
  std::atomic<bool> halfway{false};
  // Stopped for 50 ms: longer than a scheduler slice, and than the thousand quick tries
  // a scrape used to make before it took a torn copy.
  std::thread writer([&] {
    WorkerStatsPeer::StopHalfway(f.stats[0].get(), 0, &halfway, std::chrono::milliseconds(50));
  });
  while (!halfway.load()) std::this_thread::yield();
  std::string body = Scrape(f, {}, Format::kText004);
  writer.join();
  Parsed p = Parse(body);
  ASSERT_EQ(p.error, "");
  double requests = 0, count = 0;  // over the pairs (the other route's are 0)
  for (const Sample& s : p.samples) {
    if (s.name == "pokemon_speedrun_http_requests_total") requests += s.value;
    if (s.name == "pokemon_speedrun_http_request_duration_seconds_count") count += s.value;
  }
  EXPECT_EQ(requests, 1);
  EXPECT_EQ(count, 1);
}

TEST(ScrapeTest, ConsistentWhileAWorkerRecords) {
  Fixture f(Layout({"emu-1", "emu-2"}, {"action", "status"}), 2);
  std::atomic<bool> stop{false};
  // About a million requests a second, each yielding after it is recorded: a busy worker,
  // but one that, like the daemon's, spends most of its time outside RecordRequest.
  std::thread writer([&] {
    const int statuses[] = {200, 404, 500, 201, 302, 503, 429, 204};
    uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      // New (method, code) cells keep appearing for a while, so scrapes also meet cells
      // counted for the first time.
      int spread = static_cast<int>(std::min<uint64_t>(i / 2000 + 1, 8));
      f.stats[0]->RecordRequest(static_cast<int>(i % 2), static_cast<int>(i / 2 % 3),
                                static_cast<Method>(i / 6 % 3), statuses[i / 18 % spread],
                                (i % 97) * 100'000, 3, 7);
      ++i;
      std::this_thread::yield();
    }
  });
  struct Join {
    std::atomic<bool>* stop;
    std::thread* t;
    ~Join() {
      *stop = true;
      t->join();
    }
  } join{&stop, &writer};
  f.stats[1]->RecordRequest(1, 2, Method::kPut, 200, 5, 3, 7);  // a quiet second shard
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  int scrapes = 0;
  while (std::chrono::steady_clock::now() < deadline || scrapes < 20) {
    std::string body = Scrape(f, {}, Format::kText004);
    ++scrapes;
    Parsed p = Parse(body);
    ASSERT_EQ(p.error, "");
    std::map<std::string, double> requests, count, inf, req_bytes, resp_bytes;
    for (const Sample& s : p.samples) {
      std::string pair =
          s.labels.count("route") ? s.labels.at("route") + "/" + s.labels.at("upstream") : "";
      if (s.name == "pokemon_speedrun_http_requests_total") requests[pair] += s.value;
      if (s.name == "pokemon_speedrun_http_request_duration_seconds_count") count[pair] = s.value;
      if (s.name == "pokemon_speedrun_http_request_duration_seconds_bucket" &&
          s.labels.at("le") == "+Inf") {
        inf[pair] = s.value;
      }
      if (s.name == "pokemon_speedrun_http_request_bytes_total") req_bytes[pair] = s.value;
      if (s.name == "pokemon_speedrun_http_response_bytes_total") resp_bytes[pair] = s.value;
    }
    // Every pair has its histogram from the start; requests_total only once counted.
    ASSERT_EQ(count.size(), 2u * 3u);
    for (const auto& [pair, n] : requests) ASSERT_EQ(count.count(pair), 1u) << pair;
    for (const auto& [pair, n] : count) {
      ASSERT_EQ(requests[pair], n) << pair << " in scrape " << scrapes;
      ASSERT_EQ(inf[pair], n) << pair;
      ASSERT_EQ(req_bytes[pair], 3 * n) << pair;
      ASSERT_EQ(resp_bytes[pair], 7 * n) << pair;
    }
  }
  EXPECT_GE(scrapes, 20);
}

}  // namespace
}  // namespace speedmon::metrics
