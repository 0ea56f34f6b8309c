// The one way speedmon writes JSON.
//
// Every JSON document speedmon emits (admin answers, recent requests, the access log,
// alert and webhook payloads) is written here. Bytes that reach a JSON string come from
// the network, from files or from the user and are never trusted to be UTF-8: valid UTF-8
// is kept as is, and every maximal ill-formed subsequence (Unicode 15, section 3.9, the
// practice WHATWG's decoder follows) becomes one U+FFFD. Control characters are escaped
// (\n, \t, ... or \u00XX); nothing else is. Nothing here throws except std::bad_alloc.
//
// nlohmann::json builds documents; its own dump() is not used, because its strict mode
// throws on invalid UTF-8 (type_error 316) and each call site would have to remember the
// replacing mode. ToJson walks the value instead and writes strings with AppendJsonString.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace speedmon::base {

// Appends `bytes` as a quoted JSON string.
void AppendJsonString(std::string_view bytes, std::string* out);

// `bytes` with each ill-formed UTF-8 subsequence replaced by U+FFFD (the bytes are
// returned unchanged when they are valid UTF-8).
std::string ValidUtf8(std::string_view bytes);

// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// Compact JSON text of `value`. Non-finite numbers are written as null.
std::string ToJson(const nlohmann::json& value);
void AppendJson(const nlohmann::json& value, std::string* out);

// {"error": message, "field": field-or-null}: the body of every error answer.
std::string JsonError(std::string_view message, std::string_view field = {});

}  // namespace speedmon::base
