// "Did you mean" help for config errors: edit distance, the closest valid key or value, and the
// messages for an unknown key or an invalid enumeration value, shared by the parser, the
// `--set` overrides and validate_config so that all of them word these errors the same way.
// Pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/config/schema.h"

namespace tessel {

// Levenshtein distance (insert, delete, substitute), ignoring ASCII case.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` by edit distance, or "" when even the closest is too far to be
// a plausible typo (more than a third of the word, and at least 2, edits away). A candidate
// that starts with `word` (or the other way round, 3 letters at least) counts as close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& items, const char* separator = ", ");

// For `key` (a section name when `section` is empty) found in `section`:
//   "unknown key 'model.layres'; did you mean 'model.layers'? (valid keys in 'model': arch, ...)"
// A key that belongs to another section is pointed there ("did you mean 'optim.lr'?").
std::string unknown_key_message(const SchemaKeys& schema, const std::string& section, const std::string& key);

// "model.norm: invalid value 'batchnorm'; valid values: layernorm, rmsnorm"
// (with "; did you mean 'X'?" when one is close).
std::string invalid_choice_message(const std::string& key, const std::string& value,
                                   const std::vector<std::string>& valid);

}  // namespace tessel
