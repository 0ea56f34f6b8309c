// The admin API's router on any method and path: no crash, and a match is consistent
// (a found route with a parameter decodes it; 405 always says what is allowed).
#include <cstdlib>
#include <string_view>

#include "admin/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t space = in.find(' ');
  std::string_view method = space == std::string_view::npos ? "GET" : in.substr(0, space);
  std::string_view path = space == std::string_view::npos ? in : in.substr(space + 1);
  speedmon::admin::RouteMatch m = speedmon::admin::MatchRoute(method, path);
  using R = speedmon::admin::RouteMatch::Result;
  if (m.result == R::kMethodNotAllowed && (m.allow.empty() || m.allow_text.empty())) std::abort();
  if (m.result != R::kMethodNotAllowed && !m.allow.empty()) std::abort();
  if (m.result == R::kFound && m.param.size() > path.size()) std::abort();
  return 0;
}
