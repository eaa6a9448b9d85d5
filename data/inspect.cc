// Dataset report for `tessel data inspect`; see inspect.h.
#include "data/inspect.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/text_escape.h"
#include "data/byte_tokenizer.h"
#include "data/indexed_dataset.h"
#include "data/llmc_shard.h"

namespace tessel {

std::string describe_token_source(const TokenSource& source, int64_t show_tokens) {
  TESSEL_CHECK(show_tokens >= 0) << "inspect: number of tokens to show must be >= 0, got " << show_tokens;
  std::ostringstream s;
  s << "path:      " << source.path() << "\n";
  s << "format:    " << source.format();
  if (const auto* shard = dynamic_cast<const LlmcShard*>(&source)) {
    s << " shard (" << (shard->magic() == LlmcShard::kMagicGpt2 ? "GPT-2" : "LLaMA-3") << ", magic " << shard->magic()
      << ", version " << shard->version() << ")";
  } else if (dynamic_cast<const IndexedDataset*>(&source) != nullptr) {
    s << " indexed dataset (.bin + .idx)";
  }
  s << "\n";
  s << "dtype:     " << dtype_short_name(source.dtype()) << "\n";
  if (source.num_documents() >= 0) {
    s << "documents: " << source.num_documents() << "\n";
  } else {
    s << "documents: unknown (the format does not index documents)\n";
  }
  if (const auto* megatron = dynamic_cast<const IndexedDataset*>(&source)) {
    s << "sequences: " << megatron->num_sequences() << "\n";
  }
  s << "tokens:    " << source.num_tokens() << "\n";

  const int64_t n = std::min(show_tokens, source.num_tokens());
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  source.read(0, n, tokens.data());
  s << "first " << n << " tokens: [";
  for (int64_t i = 0; i < n; ++i) s << (i ? ", " : "") << tokens[static_cast<size_t>(i)];
  s << "]\n";
  const bool bytes =
      std::all_of(tokens.begin(), tokens.end(), [](int32_t t) { return t >= 0 && t < ByteTokenizer::kVocabSize; });
  if (n > 0 && bytes) {
    s << "as bytes:  " << quote_escaped(ByteTokenizer::decode(tokens)) << "\n";
  }
  return s.str();
}

}  // namespace tessel
