// Reading one string field (the "text" of a JSONL record) out of a line holding a JSON object.
//
// `tessel data prepare` takes JSONL corpora where each line is an object such as
// {"id": 7, "text": "...", "meta": {...}}; only one string field matters, so this is a small
// strict parser for exactly that: it checks the whole line is one JSON object, skips the other
// values of any type, and decodes the wanted string (all escapes, \uXXXX with surrogate pairs
// to UTF-8; an unpaired surrogate becomes U+FFFD, as a lenient decoder would). When the key
// appears twice the last one wins, as in Python's json module. Raw bytes >= 0x80 are copied
// unchanged. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace tessel {

// Returns true and sets *value when the top-level object has string field `key`; false when the
// key is absent. Throws tessel::Error "WHERE: byte N: expected ..., found ..." for malformed
// JSON or a non-string value; `where` is e.g. "corpus.jsonl:12".
bool json_string_field(std::string_view line, std::string_view key, const std::string& where, std::string* value);

}  // namespace tessel
