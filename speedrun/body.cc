// Body decoding for the speedrun ingest API; see body.h. Admin (main) thread.
#include "speedrun/body.h"

#include <cctype>
#include <cmath>

#include "base/strings.h"

namespace speedmon::speedrun {
namespace {

using nlohmann::json;
using DomParser = nlohmann::detail::json_sax_dom_parser<json>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Builds the DOM through nlohmann's own DOM builder, but stops at the first value nested
// deeper than the limit or a number that overflowed to infinity. nlohmann's parser is
// iterative, so 100k '[' cannot overflow the stack before we stop it; the depth bound
// keeps later recursive walks (ours, dump) shallow.
class BoundedSax {
 public:
  BoundedSax(json* root, int max_depth) : dom_(*root, false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    if (!std::isfinite(v)) return Fail("number out of range: " + text.substr(0, 40));
    return dom_.number_float(v, text);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return Deeper() && dom_.start_object(n); }
  bool key(json::string_t& v) { return dom_.key(v); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return Deeper() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> keep
    // what follows the bracketed tag.
    std::string_view what = ex.what();
    size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
    // The "last read" part echoes the token, which may be a megabyte-long string.
    constexpr size_t kMaxMessage = 200;
    std::string message = "invalid JSON: " + std::string(what.substr(0, kMaxMessage));
    if (what.size() > kMaxMessage) message += "...";
    return Fail(std::move(message));
  }

  const std::string& error() const { return error_; }
  bool failed() const { return !error_.empty(); }

 private:
  bool Deeper() {
    if (++depth_ > max_depth_) {
      return Fail("JSON nested deeper than " + std::to_string(max_depth_) + " levels");
    }
    return true;
  }
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  DomParser dom_;
  int max_depth_;
  int depth_ = 0;
  std::string error_;
};

std::string TooManyItems(size_t max) {
  return "batch has more than " + std::to_string(max) + " items";
}

}  // namespace

std::optional<Framing> FramingFor(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  std::string type = Lower(base::TrimWhitespace(media));
  if (type.empty() || type == "application/json" || type == "application/x-www-form-urlencoded") {
    return Framing::kJson;
  }
  if (type == "application/x-ndjson" || type == "application/ndjson") return Framing::kNdjson;
  return std::nullopt;
}

std::string DecodedBody::ItemPath(size_t index) const {
  return single ? std::string() : "items[" + std::to_string(index) + "]";
}

base::StatusOr<json> ParseJson(std::string_view text, int max_depth) {
  json out;
  BoundedSax sax(&out, max_depth);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                            /*strict=*/true, /*ignore_comments=*/false);
  if (ok && !sax.failed()) return out;
  return base::InvalidArgumentError(sax.failed() ? sax.error() : "invalid JSON");
}

namespace {

base::Status Decode(std::string_view body, std::string_view content_type, const BodyLimits& limits,
                    DecodedBody* out) {
  if (body.size() > limits.max_body_bytes) {
    return base::TooLargeError("body larger than " + std::to_string(limits.max_body_bytes) +
                               " bytes");
  }
  std::optional<Framing> framing = FramingFor(content_type);
  if (!framing) {
    return base::UnsupportedFormatError("unsupported Content-Type \"" +
                                        std::string(content_type.substr(0, 100)) +
                                        "\": use application/json or application/x-ndjson");
  }
  if (base::TrimWhitespace(body).empty()) return base::InvalidArgumentError("empty body");

  if (*framing == Framing::kJson) {
    base::StatusOr<json> parsed = ParseJson(body, limits.max_depth);
    if (!parsed.ok()) return parsed.status();
    json root = std::move(parsed).value();
    if (root.is_object()) {
      out->single = true;
      out->items.push_back(std::move(root));
      return base::OkStatus();
    }
    if (!root.is_array()) return base::InvalidArgumentError("body must be a JSON object or array");
    if (root.size() > limits.max_items) return base::TooLargeError(TooManyItems(limits.max_items));
    out->items.reserve(root.size());
    for (json& item : root) out->items.push_back(std::move(item));
    return base::OkStatus();
  }

  size_t line_number = 0;
  while (!body.empty()) {
    size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    ++line_number;
    if (base::TrimWhitespace(line).empty()) continue;
    std::string field = "items[" + std::to_string(out->items.size()) + "]";
    if (out->items.size() == limits.max_items)
      return base::TooLargeError(TooManyItems(limits.max_items));
    base::StatusOr<json> parsed = ParseJson(line, limits.max_depth);
    if (!parsed.ok()) {
      return base::InvalidArgumentError(
          "line " + std::to_string(line_number) + ": " + parsed.status().message(), field);
    }
    json item = std::move(parsed).value();
    if (!item.is_object()) {
      return base::InvalidArgumentError(
          "line " + std::to_string(line_number) + ": not a JSON object", field);
    }
    out->items.push_back(std::move(item));
  }
  return base::OkStatus();
}

}  // namespace

base::Status DecodeBody(std::string_view body, std::string_view content_type,
                        const BodyLimits& limits, DecodedBody* out) {
  *out = DecodedBody();
  base::Status status = Decode(body, content_type, limits, out);
  if (!status.ok()) *out = DecodedBody();  // nothing of a refused body is used
  return status;
}

}  // namespace speedmon::speedrun
