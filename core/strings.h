// Small string helpers shared across the layers (file-name suffixes, lists of ranks). Pure.
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace tessel {

// Sorted numbers as runs: {0, 1, 4, 6, 7} -> "0-1, 4, 6-7" (ranks in reports).
inline std::string number_ranges(const std::vector<int>& sorted) {
  std::ostringstream out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    out << (i > 0 ? ", " : "") << sorted[i];
    if (j > i) out << "-" << sorted[j];
    i = j + 1;
  }
  return out.str();
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace tessel
