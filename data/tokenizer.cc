#include "data/tokenizer.h"

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/gpt2_tokenizer.h"

namespace tessel {
namespace {

class Bytes final : public Tokenizer {
 public:
  void encode_append(std::string_view text, std::vector<int32_t>* out) override {
    ByteTokenizer::encode_append(text, out);
  }
  std::string decode(const std::vector<int32_t>& ids) const override { return ByteTokenizer::decode(ids); }
  int32_t end_of_text() const override { return ByteTokenizer::kEndOfText; }
  int64_t vocab_size() const override { return ByteTokenizer::kVocabSize; }
  const char* name() const override { return "bytes"; }
};

class Gpt2 final : public Tokenizer {
 public:
  explicit Gpt2(std::shared_ptr<const Gpt2Tokenizer> t) : t_(std::move(t)) {}
  void encode_append(std::string_view text, std::vector<int32_t>* out) override {
    t_->encode_append(text, out, &cache_);
  }
  std::string decode(const std::vector<int32_t>& ids) const override { return t_->decode(ids); }
  int32_t end_of_text() const override { return Gpt2Tokenizer::kEndOfText; }
  int64_t vocab_size() const override { return t_->vocab_size(); }
  const char* name() const override { return "gpt2"; }

 private:
  std::shared_ptr<const Gpt2Tokenizer> t_;
  Gpt2Tokenizer::Cache cache_;
};

}  // namespace

std::vector<std::unique_ptr<Tokenizer>> make_tokenizers(TokenizerKind kind, const std::string& dir, int count) {
  std::vector<std::unique_ptr<Tokenizer>> out;
  if (kind == TokenizerKind::kBytes) {
    for (int i = 0; i < count; ++i) out.push_back(std::make_unique<Bytes>());
    return out;
  }
  const std::shared_ptr<const Gpt2Tokenizer> shared = Gpt2Tokenizer::load(dir.empty() ? kDefaultGpt2TokenizerDir : dir);
  for (int i = 0; i < count; ++i) out.push_back(std::make_unique<Gpt2>(shared));
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerKind kind, const std::string& dir) {
  return std::move(make_tokenizers(kind, dir, 1).front());
}

}  // namespace tessel
