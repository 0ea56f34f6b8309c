// The recent-requests ring behind GET /api/v1/requests: one ring per worker, written by
// that worker without locks (a seqlock over relaxed atomic words), read by the main
// thread; a record being overwritten during a read is skipped, never torn.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace speedmon::proxy {

struct RequestRecord {
  double unix_time = 0;
  uint64_t duration_ns = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  int32_t upstream = 0;
  int32_t endpoint = -1;  // -1: never reached an endpoint
  int32_t route = 0;
  int32_t status = 0;
  uint8_t method = 0;  // metrics::Method
  uint8_t path_len = 0;
  uint8_t id_len = 0;
  char path[120] = {};  // truncated request target
  char request_id[64] = {};

  void SetPath(std::string_view p);
  void SetRequestId(std::string_view id);
  std::string_view path_view() const { return {path, path_len}; }
  std::string_view id_view() const { return {request_id, id_len}; }
};

class RecentRequests {
 public:
  explicit RecentRequests(uint32_t capacity);
  uint32_t capacity() const { return capacity_; }
  // Worker thread only.
  void Add(const RequestRecord& r);
  // Any thread: appends the records currently held, oldest first.
  void Snapshot(std::vector<RequestRecord>* out) const;

 private:
  static constexpr size_t kWords = (sizeof(RequestRecord) + 7) / 8;
  struct Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<uint64_t> words[kWords];
  };
  uint32_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace speedmon::proxy
