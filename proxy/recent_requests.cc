// Seqlock ring of recent requests. See recent_requests.h.
#include "proxy/recent_requests.h"

#include <cstring>

namespace speedmon::proxy {

namespace {

// Cuts `s` to at most `max` bytes, backing off over continuation bytes so that a UTF-8
// character is kept whole or dropped (bytes that are not UTF-8 are cut anywhere).
size_t CutLength(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  for (size_t back = 0; back < 3 && n > 0; ++back) {
    if ((static_cast<unsigned char>(s[n]) & 0xC0) != 0x80) break;  // s[n] starts a character
    --n;
  }
  return (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80 ? max : n;
}

}  // namespace

void RequestRecord::SetPath(std::string_view p) {
  path_len = static_cast<uint8_t>(CutLength(p, sizeof path));
  std::memcpy(path, p.data(), path_len);
}

void RequestRecord::SetRequestId(std::string_view id) {
  id_len = static_cast<uint8_t>(CutLength(id, sizeof request_id));
  std::memcpy(request_id, id.data(), id_len);
}

RecentRequests::RecentRequests(uint32_t capacity)
    : capacity_(capacity), slots_(capacity ? std::make_unique<Slot[]>(capacity) : nullptr) {}

void RecentRequests::Add(const RequestRecord& r) {
  if (capacity_ == 0) return;
  uint64_t n = next_.load(std::memory_order_relaxed);
  Slot& s = slots_[n % capacity_];
  uint64_t words[kWords] = {};
  std::memcpy(words, &r, sizeof r);
  uint64_t seq = s.seq.load(std::memory_order_relaxed);
  s.seq.store(seq + 1, std::memory_order_relaxed);  // odd: being written
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < kWords; ++i) s.words[i].store(words[i], std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
  next_.store(n + 1, std::memory_order_release);
}

void RecentRequests::Snapshot(std::vector<RequestRecord>* out) const {
  if (capacity_ == 0) return;
  uint64_t end = next_.load(std::memory_order_acquire);
  uint64_t begin = end > capacity_ ? end - capacity_ : 0;
  for (uint64_t n = begin; n < end; ++n) {
    const Slot& s = slots_[n % capacity_];
    uint64_t words[kWords];
    uint64_t s1 = s.seq.load(std::memory_order_acquire);
    if (s1 & 1) continue;
    for (size_t i = 0; i < kWords; ++i) words[i] = s.words[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != s1) continue;
    RequestRecord r;
    std::memcpy(&r, words, sizeof r);
    out->push_back(r);
  }
}

}  // namespace speedmon::proxy
