// describe_token_source: the human-readable report `tessel data inspect PATH` prints.
//
// Lists the path, format, on-disk dtype, document and token counts, the first tokens, and, when
// every shown token is a byte-tokenizer id (< 257), their decoded text with control characters
// escaped. Kept in data/ (not the CLI) so tests can check the report without running a process.
// Pure function of the source; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "data/token_source.h"

namespace tessel {

std::string describe_token_source(const TokenSource& source, int64_t show_tokens);

}  // namespace tessel
