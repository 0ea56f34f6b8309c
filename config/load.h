// Internal to config/: the TOML tree -> Config, section by section, validating as it
// goes. Main thread, while loading. Throws internal::LoadFailure on the first error.
#pragma once

#include <toml++/toml.h>

#include "config/config.h"

namespace speedmon::config::internal {

// Every section and the checks across them (listener -> upstream, duplicate names).
Config LoadConfigTable(const toml::table& root);

// [alerting] with its rules and notifiers (load_alerting.cc). `table` may be null.
void LoadAlerting(const toml::table* table, AlertingConfig* out);

}  // namespace speedmon::config::internal
