// What the admin API changed in the rule set, kept in a small JSON file so it survives a
// restart and a SIGHUP: the rules added through POST /api/v1/alert-rules, and the ids of
// config (or default) rules deleted through DELETE /api/v1/alert-rules/{id}.
//
// Why a file of its own and not a table in the speedrun store: the store belongs to the
// speedrun writer thread and its batches, the rules to the main thread; rule changes are
// rare and tiny (at most 1000 rules), and a JSON file an operator can read, diff and edit
// by hand (read again at start and at SIGHUP) is worth more here than a transaction. The file is
// replaced atomically (write a temporary file, fsync, rename, fsync the directory), so a
// crash leaves the old or the new set, never half of one.
//
// Format (version 1):
//   {"version": 1,
//    "rules": [<a POST /api/v1/alert-rules body, as RuleToJson writes it, minus "origin">],
//    "deleted": ["high_cpu_usage", ...]}
//
// Thread: main thread (plain functions and values).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "alerting/rule.h"
#include "base/status.h"

namespace speedmon::alerting {

struct RuleChanges {
  std::vector<Rule> added;        // origin kApi, in the order they were added
  std::set<std::string> deleted;  // ids of config or default rules deleted through the API
};

// Parses the file's text. Every rule goes through RuleFromJson, so a hand-edited file
// passes the API's checks. kInvalidArgument naming what is wrong ("rules[2]: metric: ...").
base::StatusOr<RuleChanges> ParseRuleChanges(std::string_view text);
// The file's text for `changes` (one JSON document through base/json.h, newline ended).
std::string RuleChangesJson(const RuleChanges& changes);

// Reads `path`: a missing file is an empty RuleChanges; an unreadable or malformed one is
// kInvalidArgument "alert rules file PATH: ..." (the daemon refuses to start on it rather
// than silently forget what operators changed).
base::StatusOr<RuleChanges> LoadRuleChanges(const std::string& path);
// Replaces `path` atomically with `changes`. kUnavailable "alert rules file PATH: ..." on
// an I/O error; the old file is then left as it was.
base::Status SaveRuleChanges(const std::string& path, const RuleChanges& changes);

}  // namespace speedmon::alerting
