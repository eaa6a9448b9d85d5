// ByteTokenizer: the byte-level tokenizer. Token id = byte value (0-255); 256 is end-of-text;
// the vocabulary has 257 ids. Any byte string round-trips exactly, so it needs no files and is
// what `tessel data prepare --tokenizer bytes` and the demo configs use.
//
// decode() renders end-of-text as "<|endoftext|>" (GPT-2's spelling). Ids outside [0, 256] are
// an error by default (they mean the tokens came from another tokenizer); with
// InvalidIds::kReplace they become U+FFFD instead, which suits sampling from a model whose
// embedding is padded past 257 rows. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessel {

class ByteTokenizer {
 public:
  static constexpr int32_t kEndOfText = 256;
  static constexpr int32_t kVocabSize = 257;
  static constexpr const char* kEndOfTextString = "<|endoftext|>";

  enum class InvalidIds { kThrow, kReplace };

  // One id per byte; no end-of-text is added.
  static std::vector<int32_t> encode(std::string_view text);
  // Appends the ids of `text` to `out` (lets callers reuse one buffer).
  static void encode_append(std::string_view text, std::vector<int32_t>* out);
  // Throws tessel::Error naming the position and value of the first invalid id (kThrow).
  static std::string decode(const int32_t* ids, int64_t n, InvalidIds invalid = InvalidIds::kThrow);
  static std::string decode(const std::vector<int32_t>& ids, InvalidIds invalid = InvalidIds::kThrow) {
    return decode(ids.data(), static_cast<int64_t>(ids.size()), invalid);
  }
};

}  // namespace tessel
