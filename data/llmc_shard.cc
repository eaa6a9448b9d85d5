// llm.c shard reader; see llmc_shard.h.
#include "data/llmc_shard.h"

#include <cstring>

#include "core/error.h"

namespace tessel {

LlmcShard::LlmcShard(const std::string& path) : file_(path) {
  const int64_t size = static_cast<int64_t>(file_.size());
  TESSEL_CHECK(size >= kHeaderBytes) << "llm.c shard '" << path << "' is " << size << " bytes, shorter than its "
                                     << kHeaderBytes
                                     << "-byte header; hint: the file is truncated or not an llm.c shard";
  int32_t header[3];
  std::memcpy(header, file_.data(), sizeof(header));
  magic_ = header[0];
  version_ = header[1];
  if (magic_ == kMagicGpt2) {
    TESSEL_CHECK(version_ == kVersionGpt2)
        << "llm.c shard '" << path << "' byte 4: version " << version_ << " with GPT-2 magic " << kMagicGpt2
        << ", expected version " << kVersionGpt2;
    dtype_ = DType::U16;
  } else if (magic_ == kMagicLlama3) {
    TESSEL_CHECK(version_ == kVersionLlama3)
        << "llm.c shard '" << path << "' byte 4: version " << version_ << " with LLaMA-3 magic " << kMagicLlama3
        << ", expected version " << kVersionLlama3;
    dtype_ = DType::U32;
  } else {
    TESSEL_FAIL() << "'" << path << "' byte 0: magic " << magic_ << " is not an llm.c shard magic "
                  << "(expected " << kMagicGpt2 << " for GPT-2 or " << kMagicLlama3 << " for LLaMA-3)";
  }
  TESSEL_CHECK(header[2] >= 0) << "llm.c shard '" << path << "' byte 8: negative token count " << header[2];
  num_tokens_ = header[2];
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype_));
  const int64_t expected = kHeaderBytes + num_tokens_ * elem;
  TESSEL_CHECK(size == expected) << "llm.c shard '" << path << "' is " << size << " bytes, expected exactly "
                                 << expected << " (1024-byte header + " << num_tokens_ << " tokens x " << elem
                                 << " bytes, as its "
                                 << "header says); hint: the file is "
                                 << (size < expected ? "truncated" : "longer than its header says")
                                 << "; download or write it again";
}

void LlmcShard::read(int64_t begin, int64_t count, int32_t* out) const {
  read_stored_tokens(file_.path(), file_.data() + kHeaderBytes, dtype_, num_tokens_, begin, count, out);
}

}  // namespace tessel
