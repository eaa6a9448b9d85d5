// Quoting arbitrary bytes for display and for YAML: a double-quoted string with C-style escapes
// (\" \\ \n \t \r, \xNN for other control bytes); UTF-8 passes through. Both YAML's
// double-quoted scalars and a terminal read it back unambiguously.
#pragma once

#include <string>

namespace tessel {

std::string quote_escaped(const std::string& text);

}  // namespace tessel
