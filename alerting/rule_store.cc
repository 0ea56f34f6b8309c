// The alert rule changes file; see rule_store.h. Main thread.
#include "alerting/rule_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/json.h"

namespace speedmon::alerting {
namespace {

using nlohmann::json;

constexpr int kVersion = 1;
constexpr size_t kMaxFileBytes = 16 << 20;  // 1000 rules of the largest kind fit easily

base::Status Invalid(std::string message, std::string field = {}) {
  return base::InvalidArgumentError(std::move(message), std::move(field));
}

// Writes all of `data` to `fd`; false with errno set on failure.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

base::StatusOr<RuleChanges> ParseRuleChanges(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("not valid JSON");
  if (!doc.is_object()) return Invalid("expected a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kVersion) {
    return Invalid("version must be 1", "version");
  }
  RuleChanges out;
  if (auto rules = doc.find("rules"); rules != doc.end()) {
    if (!rules->is_array()) return Invalid("rules must be an array", "rules");
    for (size_t i = 0; i < rules->size(); ++i) {
      std::string at = "rules[" + std::to_string(i) + "]";
      base::StatusOr<Rule> r = RuleFromJson(base::ToJson((*rules)[i]));
      if (!r.ok()) {
        std::string field = r.status().field().empty() ? at : at + "." + r.status().field();
        return Invalid(at + ": " + r.status().message(), field);
      }
      for (const Rule& seen : out.added) {
        if (seen.id == r->id) return Invalid(at + ": duplicate id \"" + r->id + "\"", at + ".id");
      }
      out.added.push_back(std::move(r).value());
    }
  }
  if (auto deleted = doc.find("deleted"); deleted != doc.end()) {
    if (!deleted->is_array()) return Invalid("deleted must be an array of rule ids", "deleted");
    for (const json& id : *deleted) {
      if (!id.is_string()) return Invalid("deleted must be an array of rule ids", "deleted");
      out.deleted.insert(id.get<std::string>());
    }
  }
  for (const std::string& key :
       {std::string("version"), std::string("rules"), std::string("deleted")}) {
    doc.erase(key);
  }
  if (!doc.empty())
    return Invalid("unknown field \"" + doc.begin().key() + "\"", doc.begin().key());
  return out;
}

std::string RuleChangesJson(const RuleChanges& changes) {
  json rules = json::array();
  for (const Rule& r : changes.added) {
    json j = RuleToJson(r);
    j.erase("origin");
    rules.push_back(std::move(j));
  }
  json deleted = json::array();
  for (const std::string& id : changes.deleted) deleted.push_back(id);
  std::string out = base::ToJson(
      json{{"version", kVersion}, {"rules", std::move(rules)}, {"deleted", std::move(deleted)}});
  out.push_back('\n');
  return out;
}

base::StatusOr<RuleChanges> LoadRuleChanges(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return RuleChanges();
    return Invalid("alert rules file " + path + ": cannot open: " + std::strerror(errno));
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Invalid("alert rules file " + path + ": larger than 16 MiB");
    }
  }
  if (in.bad()) return Invalid("alert rules file " + path + ": cannot read");
  base::StatusOr<RuleChanges> parsed = ParseRuleChanges(text);
  if (!parsed.ok()) {
    return Invalid("alert rules file " + path + ": " + parsed.status().message(),
                   parsed.status().field());
  }
  return parsed;
}

base::Status SaveRuleChanges(const std::string& path, const RuleChanges& changes) {
  auto fail = [&](const char* what) {
    return base::UnavailableError("alert rules file " + path + ": " + what + ": " +
                                  std::strerror(errno));
  };
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create");
  bool written = WriteAll(fd, RuleChangesJson(changes)) && ::fsync(fd) == 0;
  int saved_errno = errno;
  ::close(fd);
  if (!written) {
    errno = saved_errno;
    base::Status s = fail("write");
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    base::Status s = fail("rename");
    ::unlink(tmp.c_str());
    return s;
  }
  // The rename is durable once the directory is synced.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return base::OkStatus();
}

}  // namespace speedmon::alerting
