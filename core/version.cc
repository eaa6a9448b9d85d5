#include "core/version.h"

namespace tessel {

const char* tessel_version() { return TESSEL_VERSION; }

std::string tessel_version_line() { return std::string("tessel ") + tessel_version() + " (" + tessel_commit() + ")"; }

}  // namespace tessel
