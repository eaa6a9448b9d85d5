// What Tessel this is: the release version (CMakeLists.txt's project version) and the git
// commit it was built from (`git describe --dirty`, "unknown" outside a checkout). Printed by
// `tessel --version` and stored in every checkpoint manifest.
#pragma once

#include <string>

namespace tessel {

const char* tessel_version();  // "0.1.0"
const char* tessel_commit();   // "998e93f1a2b3", "998e93f1a2b3-dirty" or "unknown"
// "tessel 0.1.0 (998e93f1a2b3)": the line `tessel --version` prints.
std::string tessel_version_line();

}  // namespace tessel
