// A Megatron indexed dataset: the input's first 4 bytes give the .bin's size (up to 1 MiB, zero
// filled), the rest is the .idx. Opening validates both; then tokens are read at a few places.
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/indexed_dataset.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_megatron(std::string_view data) {
  if (data.size() < 4) return;
  uint32_t bin_bytes = 0;
  std::memcpy(&bin_bytes, data.data(), 4);
  bin_bytes %= (1u << 20) + 1;
  std::filesystem::resize_file(scratch_file("d.bin", ""), bin_bytes);  // sparse: zeros cost nothing
  scratch_file("d.idx", data.substr(4));
  try {
    IndexedDataset d(scratch_dir() + "/d");
    std::vector<int32_t> out(64);
    const int64_t n = d.num_tokens();
    for (int64_t begin : {int64_t{0}, n / 2, n > 64 ? n - 64 : 0}) {
      const int64_t count = std::min<int64_t>(64, n - begin);
      if (count > 0) d.read(begin, count, out.data());
    }
    for (int64_t i = 0; i < std::min<int64_t>(d.num_sequences(), 16); ++i) {
      d.sequence_length(i);
      d.sequence_pointer(i);
    }
    for (int64_t i = 0; i <= std::min<int64_t>(d.num_documents(), 16); ++i) d.document_index(i);
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
