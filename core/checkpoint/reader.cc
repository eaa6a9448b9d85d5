#include "core/checkpoint/reader.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/checkpoint/manifest.h"
#include "core/checkpoint/region.h"
#include "core/error.h"
#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/safetensors.h"

namespace tessel {
namespace fs = std::filesystem;
namespace pb = tessel::checkpoint;
namespace {

Shape shape_of(const pb::Tensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

}  // namespace

// The manifest, the tensors by name, and the rank files mapped as they are first needed.
struct CheckpointReader::Impl {
  std::string dir;
  pb::Manifest manifest;
  std::map<std::string, const pb::Tensor*> tensors;
  std::map<std::string, std::string> paths;  // every file the manifest lists: its path, checked to stay in dir
  mutable std::map<std::string, std::unique_ptr<SafetensorsFile>> files;

  // The piece's bytes, verified: the rank file must be valid safetensors (its header is checked
  // when it is first opened) and hold the piece where the manifest says, with its checksum.
  const uint8_t* piece_bytes(const pb::Tensor& t, const pb::Piece& p) const {
    auto it = files.find(p.file());
    if (it == files.end()) {
      it = files.emplace(p.file(), std::make_unique<SafetensorsFile>(paths.at(p.file()))).first;
    }
    const SafetensorsFile& file = *it->second;
    const bool listed = file.has(p.key());
    TESSEL_CHECK(listed && file.info(p.key()).dtype_name == "F32" &&
                 8 + file.header_bytes() + file.info(p.key()).begin == p.offset() &&
                 file.info(p.key()).end - file.info(p.key()).begin == p.length())
        << "checkpoint " << dir << " is damaged: file " << p.file() << " does not hold tensor '" << t.name()
        << "' (piece " << p.key() << ") where the manifest says";
    const uint8_t* bytes = file.raw(p.key());
    const uint32_t crc = crc32c(bytes, p.length());
    TESSEL_CHECK(crc == p.crc32c()) << "checkpoint " << dir << " is damaged: file " << p.file() << ", tensor '"
                                    << t.name() << "' (piece " << p.key() << ") has crc32c " << crc32c_hex(crc)
                                    << " but was saved with " << crc32c_hex(p.crc32c()) << kCheckpointFallbackHint;
    return bytes;
  }
};

CheckpointReader::CheckpointReader(const std::string& step_dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = step_dir;
  impl_->manifest = read_manifest(step_dir);
  const pb::Manifest& m = impl_->manifest;
  std::map<std::string, uint64_t> sizes;
  for (int i = 0; i < m.files_size(); ++i) {
    const pb::File& f = m.files(i);
    // Names come from a file that may have been crafted: each must be a file of step_dir.
    const std::string file = contained_path(
        step_dir, f.name(), (fs::path(step_dir) / kManifestFile).string() + ", files[" + std::to_string(i) + "].name");
    std::error_code ec;
    TESSEL_CHECK(path_exists(file)) << "checkpoint " << step_dir << " is incomplete: file " << f.name()
                                    << " that its manifest lists is missing" << kCheckpointFallbackHint;
    const uint64_t size = fs::file_size(file, ec);
    TESSEL_CHECK(size == f.bytes()) << "checkpoint " << step_dir << " is damaged: file " << f.name() << " has " << size
                                    << " bytes, its manifest says " << f.bytes() << " (truncated or overwritten)"
                                    << kCheckpointFallbackHint;
    sizes[f.name()] = f.bytes();
    impl_->paths[f.name()] = file;
  }
  for (const pb::Tensor& t : m.tensors()) {
    const Shape shape = shape_of(t);
    int64_t covered = 0;
    for (const pb::Piece& p : t.pieces()) {
      const Region r = piece_region(p);
      bool inside = r.box_start.size() == shape.size() && r.box_end.size() == shape.size();
      for (size_t d = 0; inside && d < shape.size(); ++d) {
        inside = 0 <= r.box_start[d] && r.box_start[d] < r.box_end[d] && r.box_end[d] <= shape[d];
      }
      inside = inside && 0 <= r.flat_begin && r.flat_begin < r.flat_end && r.flat_end <= r.box_numel();
      auto size = sizes.find(p.file());
      TESSEL_CHECK(inside && size != sizes.end() && p.length() == static_cast<uint64_t>(r.numel()) * sizeof(float) &&
                   p.offset() + p.length() <= size->second)
          << "checkpoint " << step_dir << " is damaged: manifest piece " << p.key() << " of tensor '" << t.name()
          << "' does not fit its tensor " << shape_str(shape) << " or its file " << p.file();
      covered += r.numel();
    }
    TESSEL_CHECK(covered == shape_numel(shape))
        << "checkpoint " << step_dir << " is damaged: the pieces of tensor '" << t.name() << "' hold " << covered
        << " elements, it has " << shape_numel(shape);
    impl_->tensors[t.name()] = &t;
  }
  meta_ = manifest_meta(m);
  meta_.path = step_dir;
}

CheckpointReader::~CheckpointReader() = default;

std::vector<CheckpointTensorInfo> CheckpointReader::tensors() const {
  std::vector<CheckpointTensorInfo> out;
  for (const pb::Tensor& t : impl_->manifest.tensors()) {
    CheckpointTensorInfo i{t.name(), shape_of(t), t.dtype(), t.pieces_size(), 0};
    for (const pb::Piece& p : t.pieces()) i.bytes += p.length();
    out.push_back(std::move(i));
  }
  return out;
}

std::vector<std::pair<std::string, uint64_t>> CheckpointReader::files() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const pb::File& f : impl_->manifest.files()) out.emplace_back(f.name(), f.bytes());
  return out;
}

void CheckpointReader::check_model(const std::vector<ParamSpec>& specs) const {
  std::map<std::string, const ParamSpec*> wanted;
  for (const ParamSpec& s : specs) wanted[s.name] = &s;
  for (const ParamSpec& s : specs) {
    auto it = impl_->tensors.find(s.name);
    TESSEL_CHECK(it != impl_->tensors.end())
        << "checkpoint " << impl_->dir << " has no tensor '" << s.name << "' that this model needs; hint: the "
        << "checkpoint was saved from another model shape (compare model.* with the config stored in it)";
    const Shape shape = shape_of(*it->second);
    TESSEL_CHECK(shape == s.shape)
        << "checkpoint " << impl_->dir << ": tensor '" << s.name << "' is F32" << shape_str(shape)
        << " but this model expects F32" << shape_str(s.shape) << "; hint: the checkpoint comes from a different "
        << "model shape — resume with the config it was saved with, or set checkpoint.resume: none to start fresh";
  }
  for (const auto& [name, t] : impl_->tensors) {
    if (name.rfind("optim.", 0) == 0) continue;
    TESSEL_CHECK(wanted.count(name) != 0)
        << "checkpoint " << impl_->dir << " holds tensor '" << name << "' that this model does not have; hint: the "
        << "checkpoint comes from a different model shape (model.layers, tie_embeddings, bias...)";
  }
}

void CheckpointReader::read(const ParameterStore& store, const std::string& prefix, const Tensor& values) const {
  TESSEL_CHECK(values.numel() >= store.numel() && values.dtype() == DType::F32)
      << "checkpoint values buffer of " << values.numel() << " elements for a store of " << store.numel();
  float* out = values.data<float>();
  for (const ParamEntry& e : store.entries()) {
    const std::string name = prefix + e.spec.name;
    auto it = impl_->tensors.find(name);
    TESSEL_CHECK(it != impl_->tensors.end())
        << "checkpoint " << impl_->dir << " has no tensor '" << name << "' that this model needs; hint: the "
        << "checkpoint was saved from another model shape, or without optimizer state";
    const pb::Tensor& t = *it->second;
    TESSEL_CHECK(shape_of(t) == e.spec.shape)
        << "checkpoint " << impl_->dir << ": tensor '" << name << "' is F32" << shape_str(shape_of(t))
        << " but this model expects F32" << shape_str(e.spec.shape) << "; hint: the checkpoint comes from a "
        << "different model shape — resume with the config it was saved with, or set checkpoint.resume: none";
    const std::vector<Region> mine = shard_regions(e.spec, store.tp_rank(), store.tp_size(), 0, e.numel);
    int64_t copied = 0;
    for (const pb::Piece& p : t.pieces()) {
      const Region r = piece_region(p);
      if (std::none_of(mine.begin(), mine.end(), [&](const Region& m) { return boxes_overlap(m, r); })) continue;
      const float* piece = reinterpret_cast<const float*>(impl_->piece_bytes(t, p));
      copied += copy_overlap(r, piece, e.spec, store.tp_rank(), store.tp_size(), out + e.offset);
    }
    TESSEL_CHECK(copied == e.numel) << "checkpoint " << impl_->dir << ": the pieces of tensor '" << name << "' give "
                                    << copied << " of the " << e.numel << " elements tensor-parallel rank "
                                    << store.tp_rank() << " of " << store.tp_size() << " needs";
  }
}

uint64_t CheckpointReader::verify_all() const {
  uint64_t bytes = 0;
  for (const pb::Tensor& t : impl_->manifest.tensors()) {
    for (const pb::Piece& p : t.pieces()) {
      impl_->piece_bytes(t, p);
      bytes += p.length();
    }
  }
  return bytes;
}

CheckpointMeta read_checkpoint_meta(const std::string& step_dir) { return CheckpointReader(step_dir).meta(); }

Config checkpoint_config(const CheckpointMeta& meta) {
  return parse_config(meta.config_yaml, meta.path + "/manifest.pb[config]");
}

CheckpointMeta load_checkpoint(const std::string& step_dir, const ParameterStore& params, Tensor* adam_m,
                               Tensor* adam_v) {
  const CheckpointReader reader(step_dir);
  reader.read(params, "", params.params());
  if (adam_m != nullptr) reader.read(params, kExpAvgPrefix, *adam_m);
  if (adam_v != nullptr) reader.read(params, kExpAvgSqPrefix, *adam_v);
  return reader.meta();
}

}  // namespace tessel
