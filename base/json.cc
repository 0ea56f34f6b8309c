// The JSON encoder. See json.h.
#include "base/json.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>

namespace speedmon::base {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at s[i], or 0 when the bytes there are
// ill-formed; then *skip is the length of the maximal ill-formed subpart (at least 1).
// Table 3-7 of the Unicode standard: the second byte's range depends on the first.
size_t SequenceAt(std::string_view s, size_t i, size_t* skip) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2, hi = 0x9F;  // no surrogates
  } else if (b0 == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3, hi = 0x8F;  // nothing past U+10FFFF
  } else {
    *skip = 1;  // 80..C1, F5..FF never start a sequence
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) break;
    unsigned char b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
  }
  if (k > need) return need + 1;
  *skip = k;  // the lead byte and the continuation bytes that were still possible
  return 0;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  // ASCII first, byte by byte without the sequence decoder: label values, names and
  // paths almost always are, and the scrape path checks every label value.
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  size_t skip = 0;
  while (i < s.size()) {
    size_t n = SequenceAt(s, i, &skip);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t skip = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n = SequenceAt(s, i, &skip);
    if (n == 0) {
      out.append(kReplacement);
      i += skip;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t skip = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      out->push_back('\\');
      switch (c) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '\n':
          out->push_back('n');
          break;
        case '\r':
          out->push_back('r');
          break;
        case '\t':
          out->push_back('t');
          break;
        case '\b':
          out->push_back('b');
          break;
        case '\f':
          out->push_back('f');
          break;
        default:
          out->append("u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
          break;
      }
      ++i;
      continue;
    }
    size_t n = SequenceAt(s, i, &skip);
    if (n == 0) {
      out->append(kReplacement);
      i += skip;
    } else {
      out->append(s.substr(i, n));
      i += n;
    }
  }
  out->push_back('"');
}

void AppendJson(const nlohmann::json& v, std::string* out) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::null:
    case T::discarded:
      out->append("null");
      return;
    case T::boolean:
      out->append(v.get_ref<const bool&>() ? "true" : "false");
      return;
    case T::string:
      AppendJsonString(v.get_ref<const std::string&>(), out);
      return;
    case T::number_integer:
      out->append(std::to_string(v.get_ref<const int64_t&>()));
      return;
    case T::number_unsigned:
      out->append(std::to_string(v.get_ref<const uint64_t&>()));
      return;
    case T::number_float: {
      double d = v.get_ref<const double&>();
      // nlohmann's number writer (shortest round-trip form) never throws; non-finite
      // values have no JSON spelling.
      out->append(std::isfinite(d) ? v.dump() : "null");
      return;
    }
    case T::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v.get_ref<const nlohmann::json::array_t&>()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(e, out);
      }
      out->push_back(']');
      return;
    }
    case T::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.get_ref<const nlohmann::json::object_t&>()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(k, out);
        out->push_back(':');
        AppendJson(e, out);
      }
      out->push_back('}');
      return;
    }
    case T::binary:
      out->append("null");  // speedmon never builds binary values
      return;
  }
}

std::string ToJson(const nlohmann::json& v) {
  std::string out;
  AppendJson(v, &out);
  return out;
}

std::string JsonError(std::string_view message, std::string_view field) {
  std::string out = "{\"error\":";
  AppendJsonString(message, &out);
  out.append(",\"field\":");
  if (field.empty()) {
    out.append("null");
  } else {
    AppendJsonString(field, &out);
  }
  out.push_back('}');
  return out;
}

}  // namespace speedmon::base
