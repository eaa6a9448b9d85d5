#include "core/checkpoint/rank_file.h"

#include <cstdio>
#include <filesystem>

#include "core/checkpoint/format.h"
#include "core/checkpoint/manifest.h"
#include "core/checkpoint/region.h"
#include "core/io/crc32c.h"
#include "core/io/safetensors.h"

namespace tessel {
namespace fs = std::filesystem;

struct RankCheckpointFile::Impl {
  SafetensorsWriter writer;                            // holds the copies and their descriptions
  std::vector<std::pair<std::string, Tensor>> pieces;  // key, copy: checksummed when written
};

RankCheckpointFile::~RankCheckpointFile() = default;

uint64_t write_rank_checkpoint(const std::string& dir, int rank, const RankCheckpoint& part) {
  return RankCheckpointFile(part, false).write(dir, rank);
}

uint64_t RankCheckpointFile::write(const std::string& dir, int rank) const {
  if (impl_->writer.size() == 0) return 0;
  // Checksums here rather than when copying: an asynchronous save computes them off the step loop.
  SafetensorsWriter w = impl_->writer;
  for (const auto& [key, values] : impl_->pieces)
    w.set_metadata("crc32c." + key, crc32c_hex(crc32c(values.raw(), values.nbytes())));
  char name[40];
  std::snprintf(name, sizeof(name), "rank_%05d.safetensors", rank);
  const std::string path = (fs::path(dir) / name).string();
  w.write(path);
  return static_cast<uint64_t>(fs::file_size(path));
}

RankCheckpointFile::RankCheckpointFile(const RankCheckpoint& part, bool copy) : impl_(std::make_unique<Impl>()) {
  TESSEL_CHECK(part.params != nullptr) << "RankCheckpointFile: no parameters";
  const ParameterStore& store = *part.params;
  SafetensorsWriter& w = impl_->writer;
  // `local` holds the local tensor's elements from index `base` on.
  auto add = [&](const std::string& key, const std::string& tensor, const ParamEntry& e, const Region& r,
                 const Tensor& local, int64_t base) {
    Tensor values;  // the writer keeps the handle
    const int64_t start = copy ? -1 : contiguous_local_start(r, e.spec, store.tp_rank(), store.tp_size());
    if (start >= 0) {
      values = local.view(start - base, {r.numel()});
    } else {
      values = Tensor::empty({r.numel()}, DType::F32);
      gather_region(r, e.spec, store.tp_rank(), store.tp_size(), local.data<float>() - base, values.data<float>());
    }
    w.add(key, values);
    w.set_metadata("piece." + key, piece_description(tensor, e.spec.shape, r));
    bytes_ += values.nbytes();
    impl_->pieces.emplace_back(key, values);
  };
  const std::vector<ParamEntry>& entries = store.entries();
  for (size_t i = 0; i < entries.size() && i < part.write_params.size(); ++i) {
    if (!part.write_params[i]) continue;
    const ParamEntry& e = entries[i];
    const std::vector<Region> regions = shard_regions(e.spec, store.tp_rank(), store.tp_size(), 0, e.numel);
    for (size_t k = 0; k < regions.size(); ++k) {
      add("w/" + e.spec.name + "/" + std::to_string(k), e.spec.name, e, regions[k],
          store.params().view(e.offset, {e.numel}), 0);
    }
  }
  for (const RankCheckpoint::StateSegment& s : part.state) {
    const ParamEntry& e = entries.at(s.entry);
    const std::vector<Region> regions = shard_regions(e.spec, store.tp_rank(), store.tp_size(), s.begin, s.end);
    for (size_t k = 0; k < regions.size(); ++k) {
      const std::string tag = e.spec.name + "/" + std::to_string(s.begin) + "/" + std::to_string(k);
      add("m/" + tag, exp_avg_name(e.spec.name), e, regions[k], s.m, s.begin);
      add("v/" + tag, exp_avg_sq_name(e.spec.name), e, regions[k], s.v, s.begin);
    }
  }
}

}  // namespace tessel
