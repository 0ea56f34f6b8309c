// What this binary is: the version in CMakeLists.txt and the git revision it was built
// from (decided when CMake configured the build; "+dirty" when tracked files differed
// from that commit, "unknown" outside a git checkout). Exported as
// pokemon_speedrun_build_info{version,revision} and printed by --version.
#pragma once

#include <string_view>

namespace speedmon::base {

std::string_view Version();
std::string_view Revision();

}  // namespace speedmon::base
