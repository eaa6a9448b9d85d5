// Opening datasets by path and the shared bounds-checked read; see token_source.h.
#include "data/token_source.h"

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/io/file.h"
#include "core/strings.h"
#include "data/indexed_dataset.h"
#include "data/llmc_shard.h"

namespace tessel {
namespace {

// Reads the first 4 bytes of a file without mapping it; false if it is shorter.
bool read_magic(const std::string& path, int32_t* magic) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4;
}

bool is_llmc_shard(const std::string& path) {
  int32_t magic = 0;
  return path_exists(path) && read_magic(path, &magic) &&
         (magic == LlmcShard::kMagicGpt2 || magic == LlmcShard::kMagicLlama3);
}

}  // namespace

std::unique_ptr<TokenSource> open_token_source(const std::string& path) {
  std::string prefix = path;
  if (ends_with(path, ".idx") || ends_with(path, ".bin")) prefix = path.substr(0, path.size() - 4);
  bool has_idx = path_exists(prefix + ".idx");
  bool has_bin = path_exists(prefix + ".bin");
  // An llm.c shard is itself a .bin; it wins only when no Megatron .idx sits beside it.
  if (!has_idx && is_llmc_shard(path)) return std::make_unique<LlmcShard>(path);
  // A shard named without its extension ("shard" for "shard.bin").
  if (!has_idx && has_bin && prefix == path && is_llmc_shard(path + ".bin")) {
    return std::make_unique<LlmcShard>(path + ".bin");
  }
  if (has_idx && has_bin) return std::make_unique<IndexedDataset>(prefix);
  if (has_idx != has_bin) {
    TESSEL_FAIL() << "incomplete Megatron dataset at '" << prefix << "': found '" << prefix
                  << (has_idx ? ".idx" : ".bin") << "' but not '" << prefix << (has_idx ? ".bin" : ".idx")
                  << "'; hint: both files are written together by `tessel data prepare`";
  }
  if (path_exists(path)) {
    TESSEL_FAIL() << "'" << path << "' is neither a Megatron dataset (PREFIX.idx + PREFIX.bin) "
                  << "nor an llm.c shard (magic 20240520 or 20240801 in its first 4 bytes); "
                  << "hint: run `tessel data prepare` to make a dataset from text";
  }
  // `data prepare --out data/x` writes data/x_train and data/x_val: name them when they exist.
  std::string hint = "run `tessel data prepare`";
  if (path_exists(prefix + "_train.idx")) {
    hint = "`tessel data prepare --out " + prefix + "` wrote " + prefix + "_train" +
           (path_exists(prefix + "_val.idx") ? " and " + prefix + "_val" : std::string()) + "; did you mean " + prefix +
           "_train?";
  }
  TESSEL_FAIL() << "no dataset at '" << path << "': expected " << prefix << ".idx and " << prefix
                << ".bin (Megatron) or an llm.c shard; hint: " << hint;
}

void read_stored_tokens(const std::string& path, const uint8_t* data, DType dtype, int64_t num_tokens, int64_t begin,
                        int64_t count, int32_t* out) {
  TESSEL_CHECK(begin >= 0 && count >= 0 && begin <= num_tokens && count <= num_tokens - begin)
      << "read of tokens [" << begin << ", " << begin + count << ") from '" << path
      << "' is out of range: the dataset has " << num_tokens << " tokens";
  if (count == 0) return;
  const uint8_t* src = data + begin * static_cast<int64_t>(dtype_size(dtype));
  int64_t bad = convert_tokens_to_int32(src, dtype, count, out);
  TESSEL_CHECK(bad < 0) << "dataset '" << path << "': token " << begin + bad << " has value "
                        << token_value_string(src, dtype, bad) << ", which is not an int32 token "
                        << "id (stored as " << dtype_short_name(dtype)
                        << "); hint: the file is damaged or not a token dataset";
}

}  // namespace tessel
