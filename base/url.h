// Percent-decoding and query strings (RFC 3986), for the admin API's paths and queries.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace speedmon::base {

// Decodes %XX escapes. nullopt when a '%' is not followed by two hex digits. The result
// is bytes: it may be any byte string, UTF-8 or not ('+' is not a space here).
std::optional<std::string> PercentDecode(std::string_view s);

// The raw (undecoded) value of the first `name=` parameter in `query` ("a=1&b=2", without
// the '?'); an empty view for "name" or "name="; nullopt when absent.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name);

}  // namespace speedmon::base
