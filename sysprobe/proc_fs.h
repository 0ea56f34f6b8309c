// The seam between sysprobe and the kernel: reads files under a proc root ("/proc", or a
// fixture tree such as sysprobe/testdata/proc in tests) with plain open/read.
//
// A ProcFs holds no mutable state, so one may be shared by threads; the buffers passed in
// belong to the caller (the sampler keeps one and reuses it, so steady-state reads do not
// allocate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace speedmon::sysprobe {

// /proc/stat on a 4096-CPU machine is ~0.5 MiB; anything far larger is not a proc file.
inline constexpr size_t kMaxProcFileBytes = 8u << 20;

// Reads the whole file at `path` into *out (replacing its contents, keeping its capacity).
// Returns false when it cannot be opened or read, or is longer than max_bytes; *out is
// then unspecified. Never throws (an allocation failure aside).
bool ReadWholeFile(const char* path, std::string* out, size_t max_bytes = kMaxProcFileBytes);

class ProcFs {
 public:
  // clock_ticks (USER_HZ) and page_size default to the running system's; tests that check
  // exact bytes and seconds from fixtures pass the values the fixture was taken with.
  explicit ProcFs(std::string root = "/proc");
  ProcFs(std::string root, int64_t clock_ticks, int64_t page_size);

  const std::string& root() const { return root_; }
  // True when root is a mounted procfs (statfs at construction), not a fixture tree.
  bool is_procfs() const { return is_procfs_; }
  int64_t clock_ticks() const { return clock_ticks_; }
  int64_t page_size() const { return page_size_; }

  // Reads root/relative ("stat", "net/dev", "1234/cmdline") into *out; as ReadWholeFile.
  bool Read(std::string_view relative, std::string* out,
            size_t max_bytes = kMaxProcFileBytes) const;

  // The numeric entries of root (process ids), ascending. false if root is unreadable.
  bool ListPids(std::vector<int>* out) const;

  // Entries of the directory root/relative, without "." and ".."; -1 if it cannot be read
  // (e.g. another user's /proc/<pid>/fd without CAP_SYS_PTRACE). On procfs since Linux
  // 6.2, stat() of /proc/<pid>/fd reports its entry count as st_size, which is one system
  // call instead of open, getdents and close (a third of a scrape's /proc time); a size of
  // 0 (older kernels, other directories) falls back to reading the directory.
  int64_t CountEntries(std::string_view relative) const;

 private:
  std::string root_;
  bool is_procfs_ = false;
  int64_t clock_ticks_;
  int64_t page_size_;
};

}  // namespace speedmon::sysprobe
