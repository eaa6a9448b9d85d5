// Byte-level tokenizer; see byte_tokenizer.h.
#include "data/byte_tokenizer.h"

#include "core/error.h"

namespace tessel {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) {
  std::vector<int32_t> ids;
  encode_append(text, &ids);
  return ids;
}

void ByteTokenizer::encode_append(std::string_view text, std::vector<int32_t>* out) {
  out->reserve(out->size() + text.size());
  for (char c : text) out->push_back(static_cast<int32_t>(static_cast<unsigned char>(c)));
}

std::string ByteTokenizer::decode(const int32_t* ids, int64_t n, InvalidIds invalid) {
  std::string text;
  text.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id >= 0 && id < 256) {
      text += static_cast<char>(id);
    } else if (id == kEndOfText) {
      text += kEndOfTextString;
    } else if (invalid == InvalidIds::kReplace) {
      text += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    } else {
      TESSEL_FAIL() << "byte tokenizer: token " << i << " has id " << id << ", outside the byte vocabulary [0, "
                    << kVocabSize - 1 << "]; hint: these tokens come from another tokenizer (e.g. GPT-2 BPE)";
    }
  }
  return text;
}

}  // namespace tessel
