#include "data/dataset_writer.h"

#include <cstdio>

#include "core/dtype.h"
#include "core/error.h"
#include "core/io/file.h"
#include "data/indexed_dataset.h"
#include "data/llmc_shard.h"

namespace tessel {
namespace {

class MegatronWriter final : public DatasetWriter {
 public:
  explicit MegatronWriter(const std::string& prefix) : prefix_(prefix), writer_(prefix, DType::U16) {}
  void add_document(const std::vector<int32_t>& tokens) override { writer_.add_document(tokens); }
  std::vector<std::string> finish() override {
    writer_.finish();
    return {prefix_ + ".bin", prefix_ + ".idx"};
  }
  bool end_of_text_first() const override { return false; }

 private:
  std::string prefix_;
  IndexedDatasetWriter writer_;
};

class LlmcWriter final : public DatasetWriter {
 public:
  LlmcWriter(const std::string& prefix, int64_t shard_tokens) : prefix_(prefix), shard_tokens_(shard_tokens) {
    TESSEL_CHECK(shard_tokens > 0) << "llm.c shard size must be positive, got " << shard_tokens;
  }
  void add_document(const std::vector<int32_t>& tokens) override {
    for (int32_t t : tokens) {
      TESSEL_CHECK(t >= 0 && t < 65536) << "token id " << t << " does not fit an llm.c GPT-2 shard (u16)";
      buffer_.push_back(static_cast<uint16_t>(t));
      if (static_cast<int64_t>(buffer_.size()) == shard_tokens_) flush();
    }
  }
  std::vector<std::string> finish() override {
    if (!buffer_.empty() || files_.empty()) flush();
    return files_;
  }
  bool end_of_text_first() const override { return true; }

 private:
  void flush() {
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), "_%06zu.bin", files_.size());
    const std::string path = prefix_ + suffix;
    std::vector<int32_t> header(LlmcShard::kHeaderBytes / 4, 0);
    header[0] = LlmcShard::kMagicGpt2;
    header[1] = LlmcShard::kVersionGpt2;
    header[2] = static_cast<int32_t>(buffer_.size());
    AtomicFileWriter out(path);
    out.append(header.data(), header.size() * 4);
    out.append(buffer_.data(), buffer_.size() * 2);
    out.commit();
    files_.push_back(path);
    buffer_.clear();
  }

  std::string prefix_;
  int64_t shard_tokens_;
  std::vector<uint16_t> buffer_;  // the shard being filled: memory is bounded by its size
  std::vector<std::string> files_;
};

}  // namespace

std::unique_ptr<DatasetWriter> make_dataset_writer(const std::string& format, const std::string& prefix,
                                                   int64_t shard_tokens) {
  if (format == "megatron") return std::make_unique<MegatronWriter>(prefix);
  if (format == "llmc") return std::make_unique<LlmcWriter>(prefix, shard_tokens);
  TESSEL_FAIL() << "unknown dataset format '" << format << "'; expected megatron or llmc";
}

}  // namespace tessel
