// Test-only: the valid configs of config/testdata/valid/, one TOML file each. config's
// tests load them and check what they hold; tests/integration/test_check_config.py runs
// `speedmon --check-config` on every one and starts speedmon on it, so whatever the
// loader's tests accept is known to start. A test that needs a valid config adds it
// there rather than inline.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace speedmon::config {

// SPEEDMON_CONFIG_TESTDATA is the directory, set by config/CMakeLists.txt.
inline std::string ValidConfigPath(const std::string& name) {
  return std::string(SPEEDMON_CONFIG_TESTDATA) + "/" + name + ".toml";
}

// The text of config/testdata/valid/NAME.toml; a test failure when it cannot be read.
inline std::string ValidConfigText(const std::string& name) {
  std::ifstream in(ValidConfigPath(name), std::ios::binary);
  if (!in.good()) ADD_FAILURE() << "cannot read " << ValidConfigPath(name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every NAME of config/testdata/valid/NAME.toml, sorted.
inline std::vector<std::string> ValidConfigNames() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(SPEEDMON_CONFIG_TESTDATA)) {
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace speedmon::config
