// Tokenizer: the one interface `data prepare`, `data inspect` and `generate` use, over the
// byte-level tokenizer and GPT-2's BPE.
//
// make_tokenizer(kind, dir) returns a ready tokenizer; GPT-2's loads its files from
// `dir` (data.tokenizer_dir / --tokenizer-dir; empty means .cache/gpt2, where
// scripts/fetch_gpt2_tokenizer.sh puts them). A Tokenizer is not thread-safe (it keeps a piece
// cache); make one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/values.h"

namespace tessel {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual void encode_append(std::string_view text, std::vector<int32_t>* out) = 0;
  std::vector<int32_t> encode(std::string_view text) {
    std::vector<int32_t> ids;
    encode_append(text, &ids);
    return ids;
  }
  // Throws for ids outside the vocabulary.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t end_of_text() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual const char* name() const = 0;
};

constexpr const char* kDefaultGpt2TokenizerDir = ".cache/gpt2";

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerKind kind, const std::string& dir);
// `count` tokenizers for `count` threads, sharing one loaded vocabulary (each has its own cache).
std::vector<std::unique_ptr<Tokenizer>> make_tokenizers(TokenizerKind kind, const std::string& dir, int count);

}  // namespace tessel
