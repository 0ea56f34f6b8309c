#include "proxy/recent_requests.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace speedmon::proxy {
namespace {

RequestRecord Rec(int n) {
  RequestRecord r;
  r.status = n;
  r.unix_time = 1000.0 + n;
  r.SetPath("/r/" + std::to_string(n));
  return r;
}

std::vector<int> Statuses(const RecentRequests& ring) {
  std::vector<RequestRecord> got;
  ring.Snapshot(&got);
  std::vector<int> out;
  for (const RequestRecord& r : got) out.push_back(r.status);
  return out;
}

TEST(RecentRequestsTest, OldestFirstBeforeTheRingIsFull) {
  RecentRequests ring(4);
  EXPECT_EQ(ring.capacity(), 4u);
  EXPECT_EQ(Statuses(ring), std::vector<int>{});
  ring.Add(Rec(1));
  ring.Add(Rec(2));
  ring.Add(Rec(3));
  EXPECT_EQ(Statuses(ring), (std::vector<int>{1, 2, 3}));
}

TEST(RecentRequestsTest, ExactlyFullKeepsAll) {
  RecentRequests ring(4);
  for (int i = 1; i <= 4; ++i) ring.Add(Rec(i));
  EXPECT_EQ(Statuses(ring), (std::vector<int>{1, 2, 3, 4}));
}

TEST(RecentRequestsTest, WrapsAroundKeepingTheLastCapacityOldestFirst) {
  RecentRequests ring(4);
  for (int i = 1; i <= 5; ++i) ring.Add(Rec(i));
  EXPECT_EQ(Statuses(ring), (std::vector<int>{2, 3, 4, 5}));
  for (int i = 6; i <= 11; ++i) ring.Add(Rec(i));
  EXPECT_EQ(Statuses(ring), (std::vector<int>{8, 9, 10, 11}));
}

TEST(RecentRequestsTest, CapacityOneKeepsTheLast) {
  RecentRequests ring(1);
  ring.Add(Rec(1));
  ring.Add(Rec(2));
  EXPECT_EQ(Statuses(ring), std::vector<int>{2});
}

TEST(RecentRequestsTest, CapacityZeroIsOff) {
  RecentRequests ring(0);
  EXPECT_EQ(ring.capacity(), 0u);
  ring.Add(Rec(1));
  EXPECT_EQ(Statuses(ring), std::vector<int>{});
}

TEST(RecentRequestsTest, SnapshotAppendsAndCopiesEveryField) {
  RecentRequests ring(2);
  RequestRecord r;
  r.unix_time = 1764633600.25;
  r.duration_ns = 1234567;
  r.request_bytes = 10;
  r.response_bytes = 20000;
  r.upstream = 2;
  r.endpoint = -1;
  r.route = 5;
  r.status = 504;
  r.method = 3;
  r.SetPath("/action?x=1");
  r.SetRequestId("abc-123");
  ring.Add(r);
  std::vector<RequestRecord> got(1);  // Snapshot appends after what is there
  ring.Snapshot(&got);
  ASSERT_EQ(got.size(), 2u);
  const RequestRecord& g = got[1];
  EXPECT_EQ(g.unix_time, 1764633600.25);
  EXPECT_EQ(g.duration_ns, 1234567u);
  EXPECT_EQ(g.request_bytes, 10u);
  EXPECT_EQ(g.response_bytes, 20000u);
  EXPECT_EQ(g.upstream, 2);
  EXPECT_EQ(g.endpoint, -1);
  EXPECT_EQ(g.route, 5);
  EXPECT_EQ(g.status, 504);
  EXPECT_EQ(g.method, 3);
  EXPECT_EQ(g.path_view(), "/action?x=1");
  EXPECT_EQ(g.id_view(), "abc-123");
}

TEST(RequestRecordTest, LongPathsAndIdsAreCutToTheirFields) {
  RequestRecord r;
  r.SetPath("/" + std::string(300, 'a'));
  EXPECT_EQ(r.path_view().size(), sizeof r.path);
  EXPECT_EQ(r.path_view(), "/" + std::string(sizeof r.path - 1, 'a'));
  r.SetRequestId(std::string(128, 'i'));
  EXPECT_EQ(r.id_view(), std::string(sizeof r.request_id, 'i'));
}

TEST(RequestRecordTest, CutKeepsUtf8CharactersWholeOrDropsThem) {
  RequestRecord r;
  // 119 bytes, then a 2-byte character across the 120-byte limit: dropped whole.
  r.SetPath(std::string(119, 'a') + "\xc3\xa9" + "zz");
  EXPECT_EQ(r.path_view(), std::string(119, 'a'));
  // 117 bytes, then a 4-byte character across the limit: dropped whole.
  r.SetPath(std::string(117, 'a') + "\xf0\x9f\x98\x80");
  EXPECT_EQ(r.path_view(), std::string(117, 'a'));
  // A character that ends at the limit is kept.
  r.SetPath(std::string(118, 'a') + "\xc3\xa9" + "zz");
  EXPECT_EQ(r.path_view(), std::string(118, 'a') + "\xc3\xa9");
  // Bytes that are not UTF-8 are cut at the limit.
  r.SetPath(std::string(200, '\x80'));
  EXPECT_EQ(r.path_view(), std::string(120, '\x80'));
}

}  // namespace
}  // namespace speedmon::proxy
