// Pool manager events and process watches; see pool_api.h. Main thread.
#include "admin/pool_api.h"

#include <cmath>

#include "base/json.h"
#include "speedrun/records.h"

namespace speedmon::admin {
namespace {

using nlohmann::json;

constexpr size_t kMaxTextChars = 128;
constexpr size_t kMaxMessageChars = 4096;
constexpr double kMaxStartupSeconds = 86400;
constexpr const char* kFailureTypes[] = {"crash",   "exit",    "oom",    "hang",
                                         "timeout", "connect", "status", "other"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string At(std::string_view path, const char* field) {
  return path.empty() ? std::string(field) : std::string(path) + "." + field;
}

// An optional string of 1..max characters (null = absent).
base::Status ReadText(const json& item, std::string_view path, const char* field, size_t max,
                      std::optional<std::string>* out, size_t min = 1) {
  auto it = item.find(field);
  if (it == item.end() || it->is_null()) return base::OkStatus();
  std::string where = At(path, field);
  if (!it->is_string()) return base::InvalidArgumentError(where + " must be a string", where);
  const std::string& v = it->get_ref<const std::string&>();
  if (!base::IsValidUtf8(v)) return base::InvalidArgumentError(where + " must be UTF-8", where);
  size_t n = speedrun::Utf8Length(v);
  if (n < min || n > max) {
    return base::InvalidArgumentError(
        where + " must be " + std::to_string(min) + " to " + std::to_string(max) + " characters",
        where);
  }
  *out = v;
  return base::OkStatus();
}

base::Status ValidateEvent(const json& item, std::string_view path, double now, PoolEvent* e) {
  if (!item.is_object()) {
    std::string where = path.empty() ? "" : std::string(path);
    return base::InvalidArgumentError((where.empty() ? "body" : where) + " must be a JSON object",
                                      where);
  }
  std::optional<std::string> kind;
  if (base::Status s = ReadText(item, path, "event", 32, &kind); !s.ok()) return s;
  std::string where = At(path, "event");
  if (!kind) return base::InvalidArgumentError(where + " is required", where);
  std::string k = Lower(*kind);
  if (k == "failure") {
    e->kind = PoolEvent::Kind::kFailure;
  } else if (k == "restart") {
    e->kind = PoolEvent::Kind::kRestart;
  } else if (k == "replacement") {
    e->kind = PoolEvent::Kind::kReplacement;
  } else {
    return base::InvalidArgumentError(where + " must be one of failure, restart, replacement",
                                      where);
  }
  if (base::Status s = ReadText(item, path, "event_id", kMaxTextChars, &e->event_id); !s.ok()) {
    return s;
  }
  if (base::Status s = ReadText(item, path, "process", kMaxTextChars, &e->process); !s.ok()) {
    return s;
  }
  std::optional<std::string> failure_type;
  if (base::Status s = ReadText(item, path, "failure_type", 32, &failure_type); !s.ok()) return s;
  where = At(path, "failure_type");
  if (e->kind == PoolEvent::Kind::kFailure) {
    if (!failure_type) return base::InvalidArgumentError(where + " is required", where);
    e->failure_type = Lower(*failure_type);
    bool known = false;
    for (const char* t : kFailureTypes) known = known || e->failure_type == t;
    if (!known) {
      return base::InvalidArgumentError(
          where + " must be one of crash, exit, oom, hang, timeout, connect, status, other", where);
    }
  } else if (failure_type) {
    return base::InvalidArgumentError(where + " is only for a failure", where);
  }
  where = At(path, "startup_seconds");
  if (auto it = item.find("startup_seconds"); it != item.end() && !it->is_null()) {
    if (e->kind == PoolEvent::Kind::kFailure) {
      return base::InvalidArgumentError(where + " is only for a restart or a replacement", where);
    }
    if (!it->is_number() || !(it->get<double>() >= 0) || it->get<double>() > kMaxStartupSeconds) {
      return base::InvalidArgumentError(where + " must be a number from 0 to 86400", where);
    }
    e->startup_seconds = it->get<double>();
  }
  if (base::Status s = ReadText(item, path, "replaced_by", kMaxTextChars, &e->replaced_by);
      !s.ok()) {
    return s;
  }
  where = At(path, "replaced_by");
  if (e->replaced_by && e->kind != PoolEvent::Kind::kReplacement) {
    return base::InvalidArgumentError(where + " is only for a replacement", where);
  }
  e->timestamp = now;
  where = At(path, "timestamp");
  if (auto it = item.find("timestamp"); it != item.end() && !it->is_null()) {
    std::optional<double> ts;
    if (it->is_number()) {
      double v = it->get<double>();
      if (std::isfinite(v) && v >= 0 && v < 253402300800.0) ts = v;
    } else if (it->is_string()) {
      ts = speedrun::ParseRfc3339(it->get_ref<const std::string&>());
    }
    if (!ts) {
      return base::InvalidArgumentError(
          where + " must be unix seconds or an RFC 3339 date-time (1970 to 9999)", where);
    }
    e->timestamp = *ts;
  }
  return ReadText(item, path, "message", kMaxMessageChars, &e->message, 0);
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const char* PoolEventKindName(PoolEvent::Kind kind) {
  switch (kind) {
    case PoolEvent::Kind::kFailure:
      return "failure";
    case PoolEvent::Kind::kRestart:
      return "restart";
    case PoolEvent::Kind::kReplacement:
      return "replacement";
  }
  return "failure";
}

base::StatusOr<DecodedEvents> ParseEvents(std::string_view body, std::string_view content_type,
                                          const speedrun::BodyLimits& limits, double now) {
  speedrun::DecodedBody decoded;
  if (base::Status s = speedrun::DecodeBody(body, content_type, limits, &decoded); !s.ok()) {
    return s;
  }
  DecodedEvents out;
  out.single = decoded.single;
  out.events.resize(decoded.items.size());
  for (size_t i = 0; i < decoded.items.size(); ++i) {
    if (base::Status s = ValidateEvent(decoded.items[i], decoded.ItemPath(i), now, &out.events[i]);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

base::StatusOr<ProcessWatch> ParseProcessWatch(std::string_view body) {
  base::StatusOr<json> parsed = speedrun::ParseJson(body, 8);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return base::InvalidArgumentError("body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "name" && key != "pid" && key != "pid_file" && key != "cmdline_regex") {
      return base::InvalidArgumentError("unknown field \"" + base::ValidUtf8(key) + "\"",
                                        base::ValidUtf8(key));
    }
  }
  ProcessWatch w;
  auto name = j.find("name");
  if (name == j.end() || name->is_null())
    return base::InvalidArgumentError("name is required", "name");
  if (!name->is_string() || !IsValidName(name->get_ref<const std::string&>())) {
    return base::InvalidArgumentError("name must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
                                      "name");
  }
  w.name = name->get<std::string>();
  int selectors = 0;
  if (auto pid = j.find("pid"); pid != j.end() && !pid->is_null()) {
    ++selectors;
    double v = pid->is_number() ? pid->get<double>() : 0;
    if (!pid->is_number() || v != std::floor(v) || v < 1 || v > 4194304) {
      return base::InvalidArgumentError("pid must be an integer from 1 to 4194304", "pid");
    }
    w.selector.pid = static_cast<int>(v);
  }
  if (auto f = j.find("pid_file"); f != j.end() && !f->is_null()) {
    ++selectors;
    if (!f->is_string() || f->get_ref<const std::string&>().empty() ||
        f->get_ref<const std::string&>()[0] != '/' ||
        f->get_ref<const std::string&>().size() > 4096 ||
        f->get_ref<const std::string&>().find('\0') != std::string::npos) {
      return base::InvalidArgumentError("pid_file must be an absolute path", "pid_file");
    }
    w.selector.pid_file = f->get<std::string>();
  }
  if (auto r = j.find("cmdline_regex"); r != j.end() && !r->is_null()) {
    ++selectors;
    if (!r->is_string() || r->get_ref<const std::string&>().empty() ||
        !base::IsValidUtf8(r->get_ref<const std::string&>()) ||
        speedrun::Utf8Length(r->get_ref<const std::string&>()) > 256) {
      return base::InvalidArgumentError("cmdline_regex must be 1 to 256 characters",
                                        "cmdline_regex");
    }
    w.selector.cmdline_regex = r->get<std::string>();
  }
  if (selectors != 1) {
    return base::InvalidArgumentError("give exactly one of pid, pid_file, cmdline_regex", "pid");
  }
  return w;
}

EventLog::EventLog(metrics::FamilySet& families, std::function<void(const PoolEvent&)> apply)
    : events_(families.AddCounter(
          "pokemon_speedrun_pool_events_total",
          "Events the emulator pool manager reported (failure, restart, replacement).")),
      apply_(std::move(apply)) {
  for (auto kind :
       {PoolEvent::Kind::kFailure, PoolEvent::Kind::kRestart, PoolEvent::Kind::kReplacement}) {
    events_.Add({{"event", PoolEventKindName(kind)}});
  }
}

EventLog::Result EventLog::Record(const std::vector<PoolEvent>& events) {
  Result r;
  for (const PoolEvent& e : events) {
    if (e.event_id) {
      if (!seen_.insert(*e.event_id).second) {
        ++r.duplicates;
        continue;
      }
      order_.push_back(*e.event_id);
      if (order_.size() > kRememberedIds) {
        seen_.erase(order_.front());
        order_.pop_front();
      }
    }
    ++r.accepted;
    events_.Add({{"event", PoolEventKindName(e.kind)}}).Increment();
    if (apply_) apply_(e);
  }
  return r;
}

}  // namespace speedmon::admin
