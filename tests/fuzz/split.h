// Splitting one fuzz input into the several inputs a target needs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tessel::fuzz {

// The parts of `data` between NUL bytes ("a\0b\0" → {"a", "b", ""}).
inline std::vector<std::string> split_nul(std::string_view data) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (;;) {
    const size_t end = data.find('\0', begin);
    parts.emplace_back(data.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

}  // namespace tessel::fuzz
