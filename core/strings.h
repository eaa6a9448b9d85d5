// Small string tests shared across the layers (file-name suffixes above all). Pure.
#pragma once

#include <string_view>

namespace tessel {

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace tessel
