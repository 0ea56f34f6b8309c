// Internal to config/: typed reads from a toml++ table that fail with the key's place in
// the source. Used only while loading (main thread); failures are thrown as LoadFailure
// and turned into a base::Status by LoadFromString, so nothing here escapes config/.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace speedmon::config::internal {

// The first error found. Exceptions are fine here: config loads on the control path.
struct LoadFailure {
  int line = 0;
  int column = 0;
  std::string message;
  std::string field;  // the key at fault as messages name it ("[admin].address"), or ""
};

// `field` as in LoadFailure.
[[noreturn]] void Fail(const toml::source_position& where, std::string message,
                       std::string field = "");
[[noreturn]] void Fail(const toml::node& where, std::string message, std::string field = "");

// `"text"` with quotes, backslashes and control bytes escaped, so a message about
// garbage input stays one readable line.
std::string Quote(std::string_view text);

// Shortest text that reads back as the same double: "0.7", "100", "1e+20".
std::string FormatNumber(double value);

// One TOML table being read. `name` is how messages name it: "[admin]",
// "[[listeners]]", "[upstreams.health_check]"; "" for the top level.
class TableReader {
 public:
  // Fails at once on the first key (in source order) not in `known`: a typo must be
  // reported as a typo, not as the required key it was meant to be.
  TableReader(const toml::table& table, std::string name,
              std::initializer_list<std::string_view> known);

  const toml::table& table() const { return table_; }
  const std::string& name() const { return name_; }

  // nullptr when absent.
  const toml::node* Find(std::string_view key) const;
  // Fails "missing required key" at the table when absent.
  const toml::node& Require(std::string_view key) const;

  // Each Read* leaves *out unchanged when the key is absent and fails on a wrong type
  // or a value out of range.
  void ReadString(std::string_view key, std::string* out) const;
  void ReadNonEmptyString(std::string_view key, std::string* out) const;
  void ReadBool(std::string_view key, bool* out) const;
  template <typename T>
  void ReadInt(std::string_view key, T* out, int64_t min, int64_t max) const {
    if (std::optional<int64_t> v = Int(key, min, max)) *out = static_cast<T>(*v);
  }
  // Accepts integers and floats.
  void ReadNumber(std::string_view key, double* out, double min, double max) const;
  // Durations below `min` fail ("must be at least ..." or "must be greater than 0s").
  void ReadDuration(std::string_view key, Duration* out, Duration min) const;
  void ReadAddress(std::string_view key, Address* out, bool allow_port_zero) const;
  void ReadStringArray(std::string_view key, std::vector<std::string>* out) const;
  // The strings of an array with their nodes, for errors about one element.
  struct Element {
    std::string value;
    const toml::node* node;
  };
  std::vector<Element> StringElements(std::string_view key) const;
  // A table whose values are all strings (alert labels and annotations).
  void ReadStringTable(std::string_view key, std::map<std::string, std::string>* out) const;

  std::string RequireString(std::string_view key) const;  // non-empty
  // A required name that becomes a label value or a log field: 1..128 bytes, no
  // control characters.
  std::string RequireName(std::string_view key) const;
  std::optional<int64_t> Int(std::string_view key, int64_t min, int64_t max) const;
  // nullptr when absent; fails when not a table.
  const toml::table* SubTable(std::string_view key) const;
  // Empty when absent; fails unless an array whose elements are all tables, at most
  // `max_count` of them (every list has a bound).
  std::vector<const toml::table*> TableArray(std::string_view key, size_t max_count) const;

  // "[admin].address" (or "address" at the top level).
  std::string Field(std::string_view key) const;
  // Fails at the key's value with "<Field(key)>: <message>", field Field(key).
  [[noreturn]] void FailAt(std::string_view key, const std::string& message) const;
  // The same at `where`, a part of the key's value (an array element, a table key).
  [[noreturn]] void FailIn(const toml::source_position& where, std::string_view key,
                           const std::string& message) const;
  [[noreturn]] void FailIn(const toml::node& where, std::string_view key,
                           const std::string& message) const {
    FailIn(where.source().begin, key, message);
  }

 private:
  const toml::node& Typed(std::string_view key, bool ok, const char* expected) const;

  const toml::table& table_;
  std::string name_;
};

// The names seen so far in one list, so a duplicate names the line of the first.
class UniqueNames {
 public:
  // `what` as messages say it: "listener name", "alert rule id".
  explicit UniqueNames(std::string what) : what_(std::move(what)) {}
  // Fails at `where`: duplicate listener name "a" (first defined on line 3).
  void Add(const std::string& name, const toml::node& where);
  // The line of `name`, or 0.
  int LineOf(const std::string& name) const;

 private:
  std::string what_;
  std::map<std::string, int> first_line_;
};

}  // namespace speedmon::config::internal
