// Internal to config/: the TOML tree -> Config, section by section, validating as it
// goes. Main thread, while loading. Throws internal::LoadFailure on the first error.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "config/config.h"

namespace speedmon::config::internal {

// Every section and the checks across them (listener -> upstream, duplicate names).
Config LoadConfigTable(const toml::table& root);

// [alerting] with its rules and notifiers (load_alerting.cc). `table` may be null.
void LoadAlerting(const toml::table* table, AlertingConfig* out);

class TableReader;

// The content of the secret file `path` that `key` names (a *_file key), trailing newlines
// trimmed; fails at `key` when the file is unreadable, not a regular file, larger than
// 64 KiB, empty or holds control characters (load_alerting.cc). Every *_file secret is
// read with it, at start and at each SIGHUP reload.
std::string ReadSecretFile(const TableReader& r, std::string_view key, const std::string& path);

}  // namespace speedmon::config::internal
