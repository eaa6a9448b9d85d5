// llm.c token shards: one .bin file with a 1024-byte header (256 int32: magic, version, token
// count, zeros) followed by the tokens. GPT-2 shards are magic 20240520, version 1, u16 tokens;
// LLaMA-3 shards are magic 20240801, version 7, u32 tokens (karpathy/llm.c dev/data/data_common.py).
//
// LlmcShard memory-maps the file and requires its size to be exactly 1024 + count × token size,
// so a truncated download fails on open. Documents are not indexed by the format (each starts
// with the end-of-text token), so num_documents() is -1. Immutable; const methods thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/io/file.h"
#include "data/token_source.h"

namespace tessel {

class LlmcShard : public TokenSource {
 public:
  static constexpr int32_t kMagicGpt2 = 20240520;
  static constexpr int32_t kVersionGpt2 = 1;
  static constexpr int32_t kMagicLlama3 = 20240801;
  static constexpr int32_t kVersionLlama3 = 7;
  static constexpr int64_t kHeaderBytes = 1024;

  // Throws tessel::Error naming the file for a wrong magic, version or size.
  explicit LlmcShard(const std::string& path);

  int64_t num_tokens() const override { return num_tokens_; }
  void read(int64_t begin, int64_t count, int32_t* out) const override;
  const std::string& path() const override { return file_.path(); }
  std::string format() const override { return "llm.c"; }
  DType dtype() const override { return dtype_; }

  int32_t magic() const { return magic_; }
  int32_t version() const { return version_; }

 private:
  MappedFile file_;
  int32_t magic_ = 0;
  int32_t version_ = 0;
  DType dtype_ = DType::U16;
  int64_t num_tokens_ = 0;
};

}  // namespace tessel
