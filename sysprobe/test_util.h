// Helpers shared by the sysprobe tests (the gtest main thread): where the fixtures are,
// reading and writing whole files, and a scratch directory removed on destruction.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace speedmon::sysprobe::testing {

// sysprobe/testdata, via SPEEDMON_SOURCE_DIR under ctest or the path compiled in.
inline std::string TestData(const std::string& relative = "") {
  const char* source = getenv("SPEEDMON_SOURCE_DIR");
  std::string root = source != nullptr ? std::string(source) + "/sysprobe/testdata"
                                       : std::string(SYSPROBE_TESTDATA_DIR);
  return relative.empty() ? root : root + "/" + relative;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& contents) {
  // Write then rename, so a reader never sees half a file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  std::filesystem::rename(tmp, path);
}

class ScratchDir {
 public:
  ScratchDir() {
    char pattern[] = "/tmp/sysprobe_test_XXXXXX";
    path_ = mkdtemp(pattern) != nullptr ? pattern : "";
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

}  // namespace speedmon::sysprobe::testing
