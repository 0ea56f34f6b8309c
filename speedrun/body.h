// Turns an admin POST body into JSON items: picks the framing from the Content-Type,
// bounds nesting depth, item count and numbers, and reports the first problem as a
// client error with the status, message and field the API answers with.
//
// Pure functions; called on the admin (main) thread by Service, and from tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace speedmon::speedrun {

struct BodyLimits {
  uint64_t max_body_bytes = 1048576;  // larger bodies: kTooLarge
  size_t max_items = 10000;           // larger batches: kTooLarge
  int max_depth = 32;                 // deeper: kInvalidArgument (no recursion either way)
};

enum class Framing { kJson, kNdjson };

// application/json -> kJson; application/x-ndjson or application/ndjson -> kNdjson.
// Parameters (";charset=utf-8") and case are ignored. A missing Content-Type ("") and
// application/x-www-form-urlencoded are taken as JSON because `curl -d '{...}'` sends the
// latter and it is what people type. Anything else is nullopt (kUnsupportedFormat).
std::optional<Framing> FramingFor(std::string_view content_type);

struct DecodedBody {
  // A JSON object body is one item with single = true (answered as one record);
  // a JSON array or NDJSON is a batch, even of one item.
  bool single = false;
  std::vector<nlohmann::json> items;
  // "items[3]" for a batch, "" for a single object: the prefix of every field path.
  std::string ItemPath(size_t index) const;
};

// Decodes a body. Errors, checked in this order:
//   kTooLarge body larger than max_body_bytes, kUnsupportedFormat for the Content-Type,
//   kInvalidArgument for an empty body, invalid JSON (message with line and column),
//   nesting deeper than max_depth, a number out of double range (1e400), a top level that
//   is not an object or array, an NDJSON line that is not an object; kTooLarge for more
//   than max_items items.
// Array elements are not checked here: the record validators report "items[i]" errors.
// Blank NDJSON lines are skipped; an NDJSON error's field is "items[i]" (the i-th
// non-blank line, counted from 0) and its message names the line number (from 1).
// An empty array or NDJSON with only blank lines is an empty batch, not an error.
base::Status DecodeBody(std::string_view body, std::string_view content_type,
                        const BodyLimits& limits, DecodedBody* out);

// Parses one JSON text with the depth and number checks above; no exceptions thrown.
// kInvalidArgument with the parser's message (without a field) when it is not JSON.
base::StatusOr<nlohmann::json> ParseJson(std::string_view text, int max_depth);

}  // namespace speedmon::speedrun
