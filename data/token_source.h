// TokenSource: a read-only, random-access stream of token ids, whatever file holds it.
//
// The sampler and the CLI see every dataset through this interface: a flat sequence of
// num_tokens() ids (documents back to back, as the file stores them) that read() copies out as
// int32. Implementations are memory-mapped (Megatron .bin/.idx in indexed_dataset.h, llm.c shards
// in llmc_shard.h) and immutable after opening, so const methods are safe to call from many
// threads at once. open_token_source() picks the reader from what is on disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/token_values.h"

namespace tessel {

class TokenSource {
 public:
  virtual ~TokenSource() = default;

  virtual int64_t num_tokens() const = 0;
  // Copies tokens [begin, begin + count) into out[0..count). Throws tessel::Error when the range
  // is outside [0, num_tokens()) or a stored value is not an int32 integer (names the file and
  // the token index).
  virtual void read(int64_t begin, int64_t count, int32_t* out) const = 0;
  // What the user passed to open it (a Megatron prefix or a shard path), for messages.
  virtual const std::string& path() const = 0;
  // Documents in the source, or -1 when the format does not record them (llm.c shards).
  virtual int64_t num_documents() const { return -1; }
  // The files that hold it (a Megatron dataset's .idx and .bin, a shard's one file).
  virtual std::vector<std::string> files() const { return {path()}; }
  // Short format name: "megatron" or "llm.c".
  virtual std::string format() const = 0;
  // How tokens are stored on disk.
  virtual DType dtype() const = 0;
};

// Opens a dataset by path:
//  - a Megatron prefix PREFIX (PREFIX.idx and PREFIX.bin exist), or PREFIX.idx / PREFIX.bin;
//  - an llm.c shard file (a .bin starting with magic 20240520 or 20240801).
// Throws tessel::Error saying what was looked for, with a hint, when nothing matches.
std::unique_ptr<TokenSource> open_token_source(const std::string& path);

// For implementations: bounds-checks [begin, begin+count) against num_tokens and converts
// `dtype` values from `data` (the start of token 0) into out, with errors naming `path`.
void read_stored_tokens(const std::string& path, const uint8_t* data, DType dtype, int64_t num_tokens, int64_t begin,
                        int64_t count, int32_t* out);

}  // namespace tessel
