// Small string helpers that several parsers share (HTTP heads, /proc files, bodies).
// ASCII only and locale-free: the bytes they look at are protocol and file syntax.
#pragma once

#include <string_view>

namespace speedmon::base {

// ASCII case-insensitive equality ("Content-Length" == "content-length").
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Without leading and trailing spaces and tabs (HTTP's optional white space).
inline std::string_view TrimSpaceTab(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Takes the next item of a comma-separated list (an HTTP list, RFC 9110 5.6.1) off the
// front of `list` into `item`, optional white space trimmed; false once `list` is empty.
// Empty items ("a,,b") come back empty, for the caller to skip.
inline bool NextListItem(std::string_view* list, std::string_view* item) {
  if (list->empty()) return false;
  const size_t comma = list->find(',');
  *item = TrimSpaceTab(list->substr(0, comma));
  list->remove_prefix(comma == std::string_view::npos ? list->size() : comma + 1);
  return true;
}

// Without leading and trailing spaces, tabs, CRs and LFs (lines of files and bodies).
inline std::string_view TrimWhitespace(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace speedmon::base
