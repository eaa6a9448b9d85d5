// An llm.c token shard: header checked against the file's size on open, then tokens read.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "data/llmc_shard.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_llmc(std::string_view data) {
  const std::string path = scratch_file("shard.bin", data);
  try {
    LlmcShard shard(path);
    const int64_t n = shard.num_tokens();
    std::vector<int32_t> out(64);
    for (int64_t begin : {int64_t{0}, n / 2, n > 64 ? n - 64 : 0}) {
      const int64_t count = std::min<int64_t>(64, n - begin);
      if (count > 0) shard.read(begin, count, out.data());
    }
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
