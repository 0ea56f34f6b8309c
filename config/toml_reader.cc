// Internal to config/: typed reads from a toml++ table with errors at the key's place.
// Main thread, while loading.
#include "config/toml_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace speedmon::config::internal {

void Fail(const toml::source_position& where, std::string message, std::string field) {
  throw LoadFailure{static_cast<int>(where.line), static_cast<int>(where.column),
                    std::move(message), std::move(field)};
}

void Fail(const toml::node& where, std::string message, std::string field) {
  Fail(where.source().begin, std::move(message), std::move(field));
}

std::string Quote(std::string_view text) {
  // Long values (a pasted blob) are cut: the message must stay one readable line.
  constexpr size_t kMaxShown = 120;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

std::string FormatNumber(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  return out.str();
}

TableReader::TableReader(const toml::table& table, std::string name,
                         std::initializer_list<std::string_view> known)
    : table_(table), name_(std::move(name)) {
  // toml::table iterates in key order; report the unknown key that comes first in the
  // file, which is the one a reader fixes first.
  const toml::key* first = nullptr;
  for (auto&& [key, value] : table_) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    if (first == nullptr || key.source().begin < first->source().begin) first = &key;
  }
  if (first == nullptr) return;
  std::string where = name_.empty() ? "at the top level" : "in " + name_;
  Fail(first->source().begin, "unknown key " + Quote(first->str()) + " " + where,
       Field(first->str()));
}

const toml::node* TableReader::Find(std::string_view key) const { return table_.get(key); }

const toml::node& TableReader::Require(std::string_view key) const {
  const toml::node* node = Find(key);
  if (node == nullptr) {
    std::string where = name_.empty() ? "" : " in " + name_;
    Fail(table_, "missing required key " + Quote(key) + where, Field(key));
  }
  return *node;
}

std::string TableReader::Field(std::string_view key) const {
  return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
}

void TableReader::FailAt(std::string_view key, const std::string& message) const {
  const toml::node* node = Find(key);
  FailIn(node != nullptr ? node->source().begin : table_.source().begin, key, message);
}

void TableReader::FailIn(const toml::source_position& where, std::string_view key,
                         const std::string& message) const {
  Fail(where, Field(key) + ": " + message, Field(key));
}

const toml::node& TableReader::Typed(std::string_view key, bool ok, const char* expected) const {
  if (!ok) FailAt(key, std::string("expected ") + expected);
  return *Find(key);
}

void TableReader::ReadString(std::string_view key, std::string* out) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  Typed(key, node->is_string(), "a string");
  *out = node->as_string()->get();
}

void TableReader::ReadNonEmptyString(std::string_view key, std::string* out) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  std::string value;
  ReadString(key, &value);
  if (value.empty()) FailAt(key, "must not be empty");
  *out = std::move(value);
}

std::string TableReader::RequireString(std::string_view key) const {
  Require(key);
  std::string value;
  ReadNonEmptyString(key, &value);
  return value;
}

std::string TableReader::RequireName(std::string_view key) const {
  constexpr size_t kMaxName = 128;
  std::string value = RequireString(key);
  bool has_control = std::any_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (value.size() > kMaxName || has_control) {
    FailAt(key, Quote(value) + " must be at most 128 bytes without control characters");
  }
  return value;
}

void TableReader::ReadBool(std::string_view key, bool* out) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  Typed(key, node->is_boolean(), "a boolean (true or false)");
  *out = node->as_boolean()->get();
}

std::optional<int64_t> TableReader::Int(std::string_view key, int64_t min, int64_t max) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return std::nullopt;
  Typed(key, node->is_integer(), "an integer");
  int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    FailAt(key, std::to_string(value) + " is out of range (" + std::to_string(min) + ".." +
                    std::to_string(max) + ")");
  }
  return value;
}

void TableReader::ReadNumber(std::string_view key, double* out, double min, double max) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  Typed(key, node->is_number(), "a number");
  double value = node->is_integer() ? static_cast<double>(node->as_integer()->get())
                                    : node->as_floating_point()->get();
  // Written so that NaN fails too.
  if (!(value >= min && value <= max)) {
    FailAt(key, FormatNumber(value) + " is out of range (" + FormatNumber(min) + ".." +
                    FormatNumber(max) + ")");
  }
  *out = value;
}

void TableReader::ReadDuration(std::string_view key, Duration* out, Duration min) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  Typed(key, node->is_string(), "a duration string like \"5s\"");
  const std::string& text = node->as_string()->get();
  std::optional<Duration> value = ParseDuration(text);
  if (!value) {
    FailAt(key, "invalid duration " + Quote(text) +
                    " (expected e.g. \"250ms\", \"5s\", \"2m\", \"1h\", \"1m30s\")");
  }
  if (*value < min) {
    FailAt(key, min == Duration(1) ? std::string("must be greater than 0s")
                                   : "must be at least " + FormatDuration(min));
  }
  *out = *value;
}

void TableReader::ReadAddress(std::string_view key, Address* out, bool allow_port_zero) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return;
  Typed(key, node->is_string(), "an address string like \"127.0.0.1:8000\"");
  const std::string& text = node->as_string()->get();
  std::optional<Address> value = ParseAddress(text, allow_port_zero);
  if (!value) {
    FailAt(key, "invalid address " + Quote(text) +
                    (allow_port_zero ? " (expected host:port, IPv6 in brackets, port 0..65535)"
                                     : " (expected host:port, IPv6 in brackets, port 1..65535)"));
  }
  *out = *value;
}

std::vector<TableReader::Element> TableReader::StringElements(std::string_view key) const {
  const toml::node* node = Find(key);
  std::vector<Element> elements;
  if (node == nullptr) return elements;
  Typed(key, node->is_array(), "an array of strings");
  for (const toml::node& element : *node->as_array()) {
    if (!element.is_string()) FailIn(element, key, "expected an array of strings");
    elements.push_back({element.as_string()->get(), &element});
  }
  return elements;
}

void TableReader::ReadStringArray(std::string_view key, std::vector<std::string>* out) const {
  if (Find(key) == nullptr) return;
  out->clear();
  for (Element& e : StringElements(key)) out->push_back(std::move(e.value));
}

void TableReader::ReadStringTable(std::string_view key,
                                  std::map<std::string, std::string>* out) const {
  const toml::table* table = SubTable(key);
  if (table == nullptr) return;
  std::map<std::string, std::string> values;
  for (auto&& [k, v] : *table) {
    if (!v.is_string()) {
      std::string field = Field(key) + "." + std::string(k.str());
      Fail(v, field + ": expected a string", field);
    }
    values.emplace(std::string(k.str()), v.as_string()->get());
  }
  *out = std::move(values);
}

const toml::table* TableReader::SubTable(std::string_view key) const {
  const toml::node* node = Find(key);
  if (node == nullptr) return nullptr;
  Typed(key, node->is_table(), "a table");
  return node->as_table();
}

std::vector<const toml::table*> TableReader::TableArray(std::string_view key,
                                                        size_t max_count) const {
  const toml::node* node = Find(key);
  std::vector<const toml::table*> tables;
  if (node == nullptr) return tables;
  Typed(key, node->is_array(), "an array of tables");
  for (const toml::node& element : *node->as_array()) {
    if (!element.is_table()) FailIn(element, key, "expected an array of tables");
    if (tables.size() == max_count) {
      FailIn(element, key, "too many entries (at most " + std::to_string(max_count) + ")");
    }
    tables.push_back(element.as_table());
  }
  return tables;
}

void UniqueNames::Add(const std::string& name, const toml::node& where) {
  int line = static_cast<int>(where.source().begin.line);
  auto [it, inserted] = first_line_.emplace(name, line);
  if (!inserted) {
    Fail(where, "duplicate " + what_ + " " + Quote(name) + " (first defined on line " +
                    std::to_string(it->second) + ")");
  }
}

int UniqueNames::LineOf(const std::string& name) const {
  auto it = first_line_.find(name);
  return it == first_line_.end() ? 0 : it->second;
}

}  // namespace speedmon::config::internal
