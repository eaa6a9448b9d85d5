// "Did you mean" help for config errors; see config_suggest.h.
#include "core/config/suggest.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace tessel {

size_t edit_distance(const std::string& a, const std::string& b) {
  auto lower = [](char ch) { return std::tolower(static_cast<unsigned char>(ch)); };
  // One row of the dynamic-programming table at a time.
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 0;
  for (const std::string& candidate : candidates) {
    size_t distance = edit_distance(word, candidate);
    // A truncated name (`warmup` for `warmup_steps`) is a near miss whatever its length.
    const size_t shorter = std::min(word.size(), candidate.size());
    if (shorter >= 3 && edit_distance(word.substr(0, shorter), candidate.substr(0, shorter)) == 0) {
      distance = std::min<size_t>(distance, 1);
    }
    if (best.empty() || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : std::string();
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string unknown_key_message(const SchemaKeys& schema, const std::string& section, const std::string& key) {
  const std::string dotted = section.empty() ? key : section + "." + key;
  std::ostringstream out;
  out << "unknown key '" << dotted << "'";
  if (section.empty()) {
    // A knob written at the top level instead of inside its section.
    std::string home;
    for (const auto& [name, keys] : schema.keys) {
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) home = name + "." + key;
    }
    std::string suggestion = home.empty() ? closest_match(key, schema.sections) : home;
    if (!suggestion.empty()) out << "; did you mean '" << suggestion << "'?";
    out << " (valid sections: " << join(schema.sections) << ")";
    return out.str();
  }
  const std::vector<std::string>& valid = schema.keys.at(section);
  std::string suggestion;
  const std::string close = closest_match(key, valid);
  if (!close.empty() && edit_distance(key, close) > 0) suggestion = section + "." + close;
  // The exact key in another section beats a near miss in this one: `lr` under `model:`.
  for (const auto& [other, keys] : schema.keys) {
    if (other != section && std::find(keys.begin(), keys.end(), key) != keys.end()) {
      suggestion = other + "." + key;
    }
  }
  if (!suggestion.empty()) out << "; did you mean '" << suggestion << "'?";
  out << " (valid keys in '" << section << "': " << join(valid) << ")";
  return out.str();
}

std::string invalid_choice_message(const std::string& key, const std::string& value,
                                   const std::vector<std::string>& valid) {
  std::ostringstream out;
  out << key << ": invalid value '" << value << "'; valid values: " << join(valid);
  const std::string close = closest_match(value, valid);
  if (!close.empty()) out << "; did you mean '" << close << "'?";
  return out.str();
}

}  // namespace tessel
