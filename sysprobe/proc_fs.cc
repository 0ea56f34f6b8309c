// File access under a proc root (see proc_fs.h). Stateless; any thread.
#include "sysprobe/proc_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>

namespace speedmon::sysprobe {
namespace {

constexpr size_t kFirstReadBytes = 16384;

// root + "/" + relative into a stack buffer, so a read costs no allocation for its path.
bool JoinPath(const std::string& root, std::string_view relative, char (&out)[PATH_MAX]) {
  size_t need = root.size() + 1 + relative.size() + 1;
  if (need > sizeof(out)) return false;
  std::memcpy(out, root.data(), root.size());
  out[root.size()] = '/';
  std::memcpy(out + root.size() + 1, relative.data(), relative.size());
  out[need - 1] = '\0';
  return true;
}

int64_t SysconfOr(int name, int64_t fallback) {
  long value = sysconf(name);
  return value > 0 ? value : fallback;
}

}  // namespace

bool ReadWholeFile(const char* path, std::string* out, size_t max_bytes) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // Proc files are generated on read, so read in as few calls as we can. Most fit in
  // `first`, which is not zero-filled as resizing `out` to that room would be on every
  // read; a larger file goes on in `out`, sized to the largest it has held (its capacity).
  char first[kFirstReadBytes];
  char* buf = first;
  size_t room = std::min(sizeof first, max_bytes + 1);
  size_t used = 0;
  bool ok = true;
  while (true) {
    if (used == room) {
      if (room > max_bytes) {
        ok = false;
        break;
      }
      if (buf == first) out->assign(first, used);
      room = std::min(std::max(room * 2, out->capacity()), max_bytes + 1);
      out->resize(room);
      buf = out->data();
    }
    ssize_t n = read(fd, buf + used, room - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  if (used > max_bytes) ok = false;
  if (buf == first) {
    out->assign(first, ok ? used : 0);
  } else {
    out->resize(ok ? used : 0);
  }
  return ok;
}

ProcFs::ProcFs(std::string root)
    : ProcFs(std::move(root), SysconfOr(_SC_CLK_TCK, 100), SysconfOr(_SC_PAGESIZE, 4096)) {}

ProcFs::ProcFs(std::string root, int64_t clock_ticks, int64_t page_size)
    : root_(std::move(root)),
      clock_ticks_(clock_ticks > 0 ? clock_ticks : 100),
      page_size_(page_size > 0 ? page_size : 4096) {
  struct statfs fs;
  is_procfs_ = statfs(root_.c_str(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
}

bool ProcFs::Read(std::string_view relative, std::string* out, size_t max_bytes) const {
  char path[PATH_MAX];
  if (!JoinPath(root_, relative, path)) return false;
  return ReadWholeFile(path, out, max_bytes);
}

bool ProcFs::ListPids(std::vector<int>* out) const {
  out->clear();
  DIR* dir = opendir(root_.c_str());
  if (dir == nullptr) return false;
  while (dirent* entry = readdir(dir)) {
    const char* name = entry->d_name;
    const char* end = name + std::strlen(name);
    int pid;
    auto [ptr, ec] = std::from_chars(name, end, pid);
    if (ec == std::errc() && ptr == end && pid > 0) out->push_back(pid);
  }
  closedir(dir);
  std::sort(out->begin(), out->end());
  return true;
}

int64_t ProcFs::CountEntries(std::string_view relative) const {
  char path[PATH_MAX];
  if (!JoinPath(root_, relative, path)) return -1;
  struct stat st;
  if (is_procfs_ && stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_size > 0) {
    return static_cast<int64_t>(st.st_size);
  }
  DIR* dir = opendir(path);
  if (dir == nullptr) return -1;
  int64_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) ++count;
  }
  closedir(dir);
  return count;
}

}  // namespace speedmon::sysprobe
