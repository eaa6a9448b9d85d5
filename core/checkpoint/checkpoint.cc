#include "core/checkpoint/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "core/checkpoint/region.h"
#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/safetensors.h"
#include "manifest.pb.h"

namespace tessel {
namespace fs = std::filesystem;
namespace pb = tessel::checkpoint;
namespace {

constexpr const char* kManifestFile = "manifest.pb";
constexpr const char* kFallbackHint =
    "; hint: with checkpoint.resume: auto the previous checkpoint is used instead, or resume from an earlier "
    "step_* directory";
constexpr const char* kExpAvg = "optim.exp_avg.";
constexpr const char* kExpAvgSq = "optim.exp_avg_sq.";

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

// The step number of a "step_NNNNNNNN" directory name, or -1 for anything else.
int64_t step_of(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() <= 5) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (int64_t{1} << 58)) return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

// Complete checkpoints under root, oldest first by step number (names stop sorting past 10^8).
std::vector<fs::path> complete_steps(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_directory() && fs::exists(e.path() / kManifestFile)) found.emplace_back(step, e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> steps;
  for (auto& f : found) steps.push_back(std::move(f.second));
  return steps;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

std::string join(const Shape& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

Shape split_ints(const std::string& s) {
  Shape out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// A piece's description in its rank file's metadata: "tensor|shape|box start|box end|flat
// begin|flat end", under "piece.<key>"; its checksum under "crc32c.<key>".
std::string piece_meta(const std::string& tensor, const Shape& shape, const Region& r) {
  return tensor + "|" + join(shape) + "|" + join(r.box_start) + "|" + join(r.box_end) + "|" +
         std::to_string(r.flat_begin) + "|" + std::to_string(r.flat_end);
}

}  // namespace

std::string exp_avg_name(const std::string& name) { return kExpAvg + name; }
std::string exp_avg_sq_name(const std::string& name) { return kExpAvgSq + name; }

std::string CheckpointLayout::describe() const {
  std::string s = "tp " + std::to_string(tp) + " x pp " + std::to_string(pp) + " x dp " + std::to_string(dp) +
                  ", zero " + std::to_string(zero);
  if (virtual_stages > 1) s += ", " + std::to_string(virtual_stages) + " virtual stages";
  return s;
}

std::string prepare_checkpoint_dir(const std::string& root, int64_t step) {
  const fs::path tmp_dir = fs::path(root) / (step_dir_name(step) + ".tmp");
  std::error_code ec;
  fs::create_directories(root, ec);
  TESSEL_CHECK(!ec) << "cannot create checkpoint directory '" << root << "': " << ec.message()
                    << "; hint: set checkpoint.dir to a writable path";
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  TESSEL_CHECK(!ec) << "cannot create '" << tmp_dir.string() << "': " << ec.message();
  return tmp_dir.string();
}

struct RankCheckpointFile::Impl {
  SafetensorsWriter writer;  // holds the copies and their descriptions
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
  for (const auto& [key, values] : impl_->pieces) w.set_metadata("crc32c." + key, hex32(crc32c(values.raw(), values.nbytes())));
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
    w.set_metadata("piece." + key, piece_meta(tensor, e.spec.shape, r));
    bytes_ += values.nbytes();
    impl_->pieces.emplace_back(key, values);
  };
  const std::vector<ParamEntry>& entries = store.entries();
  for (size_t i = 0; i < entries.size() && i < part.write_params.size(); ++i) {
    if (!part.write_params[i]) continue;
    const ParamEntry& e = entries[i];
    const std::vector<Region> regions = shard_regions(e.spec, store.tp_rank(), store.tp_size(), 0, e.numel);
    for (size_t k = 0; k < regions.size(); ++k) {
      add("w/" + e.spec.name + "/" + std::to_string(k), e.spec.name, e, regions[k], store.params().view(e.offset, {e.numel}),
          0);
    }
  }
  for (const RankCheckpoint::StateSegment& s : part.state) {
    const ParamEntry& e = entries.at(s.entry);
    const std::vector<Region> regions = shard_regions(e.spec, store.tp_rank(), store.tp_size(), s.begin, s.end);
    for (size_t k = 0; k < regions.size(); ++k) {
      const std::string tag = e.spec.name + "/" + std::to_string(s.begin) + "/" + std::to_string(k);
      add("m/" + tag, kExpAvg + e.spec.name, e, regions[k], s.m, s.begin);
      add("v/" + tag, kExpAvgSq + e.spec.name, e, regions[k], s.v, s.begin);
    }
  }
}

std::string publish_checkpoint(const std::string& root, const std::string& tmp_dir, const CheckpointMeta& meta,
                               int64_t keep) {
  pb::Manifest m;
  m.set_format_version(kCheckpointFormatVersion);
  pb::TrainingState* st = m.mutable_state();
  st->set_step(meta.state.step);
  st->set_consumed_samples(meta.state.consumed_samples);
  st->set_optimizer_steps(meta.state.optimizer_steps);
  st->set_skipped_total(meta.state.skipped_total);
  st->set_skipped_streak(meta.state.skipped_streak);
  m.set_config_yaml(meta.config_yaml);
  pb::Layout* l = m.mutable_layout();
  l->set_tp(meta.layout.tp);
  l->set_pp(meta.layout.pp);
  l->set_dp(meta.layout.dp);
  l->set_zero(meta.layout.zero);
  l->set_virtual_stages(meta.layout.virtual_stages);
  l->set_schedule(meta.layout.schedule);
  l->set_world_size(meta.layout.world_size);
  m.mutable_rng()->set_seed(meta.seed);
  m.mutable_scaler()->set_loss_scale(meta.state.loss_scale);
  m.mutable_scaler()->set_good_steps(meta.state.loss_scale_good_steps);
  m.set_has_optimizer(meta.has_optimizer);

  // Every rank file's pieces, from the files themselves: what is on disk is what is recorded.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(tmp_dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("rank_", 0) == 0 && e.path().extension() == ".safetensors") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, pb::Tensor> tensors;
  for (const fs::path& path : files) {
    const SafetensorsFile file(path.string());
    pb::File* f = m.add_files();
    f->set_name(path.filename().string());
    f->set_bytes(fs::file_size(path));
    for (const std::string& key : file.names()) {
      const auto desc = file.metadata().find("piece." + key);
      const auto crc = file.metadata().find("crc32c." + key);
      TESSEL_CHECK(desc != file.metadata().end() && crc != file.metadata().end())
          << "checkpoint file " << path.string() << ": tensor '" << key << "' has no piece description";
      std::vector<std::string> parts;
      std::stringstream in(desc->second);
      for (std::string item; std::getline(in, item, '|');) parts.push_back(item);
      TESSEL_CHECK(parts.size() == 6) << "checkpoint file " << path.string() << ": bad piece description '"
                                      << desc->second << "'";
      pb::Tensor& t = tensors[parts[0]];
      if (t.name().empty()) {
        t.set_name(parts[0]);
        for (int64_t d : split_ints(parts[1])) t.add_shape(d);
        t.set_dtype("F32");
      }
      pb::Piece* p = t.add_pieces();
      for (int64_t d : split_ints(parts[2])) p->add_box_start(d);
      for (int64_t d : split_ints(parts[3])) p->add_box_end(d);
      p->set_flat_begin(std::stoll(parts[4]));
      p->set_flat_end(std::stoll(parts[5]));
      const SafetensorsTensorInfo& info = file.info(key);
      p->set_file(path.filename().string());
      p->set_key(key);
      p->set_offset(8 + file.header_bytes() + info.begin);
      p->set_length(info.end - info.begin);
      p->set_crc32c(static_cast<uint32_t>(std::stoul(crc->second, nullptr, 16)));
    }
  }
  for (auto& [name, t] : tensors) {
    // The pieces must cover the tensor exactly: a writer that left a part out fails here, at
    // save time, rather than at some later resume.
    int64_t numel = 1, covered = 0;
    for (int64_t d : t.shape()) numel *= d;
    for (const pb::Piece& p : t.pieces()) covered += p.flat_end() - p.flat_begin();
    TESSEL_CHECK(covered == numel) << "checkpoint " << tmp_dir << ": the ranks' pieces of '" << name << "' hold "
                                   << covered << " elements, the tensor has " << numel;
    *m.add_tensors() = std::move(t);
  }
  pb::ManifestFile mf;
  mf.set_format_version(kCheckpointFormatVersion);
  std::string body;
  m.SerializeToString(&body);
  mf.set_body_crc32c(crc32c(body.data(), body.size()));
  mf.set_body(std::move(body));
  std::string bytes;
  mf.SerializeToString(&bytes);
  // The manifest goes last: a directory with one is complete.
  write_file_atomic((fs::path(tmp_dir) / kManifestFile).string(), bytes);
  fsync_directory(tmp_dir);

  const fs::path final_dir = fs::path(root) / step_dir_name(meta.state.step);
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  TESSEL_CHECK(!ec) << "cannot rename '" << tmp_dir << "' to '" << final_dir.string() << "': " << ec.message();
  fsync_directory(root);
  write_file_atomic((fs::path(root) / "latest").string(), final_dir.filename().string() + "\n");

  if (keep > 0) {
    // Keep the step just written (which `latest` names) and the newest keep − 1 others. Steps
    // newer than this one can only come from another run in the same directory; they count as
    // "others" and are never preferred over the checkpoint this run just wrote.
    std::vector<fs::path> others;
    for (const fs::path& p : complete_steps(root)) {
      if (p.filename() != final_dir.filename()) others.push_back(p);
    }
    const size_t keep_others = static_cast<size_t>(keep - 1);
    for (size_t i = 0; i + keep_others < others.size(); ++i) fs::remove_all(others[i], ec);
  }
  return final_dir.string();
}

std::string save_checkpoint(const std::string& root, const CheckpointData& data, int64_t keep) {
  TESSEL_CHECK(data.params != nullptr) << "save_checkpoint: no parameters";
  const ParameterStore& store = *data.params;
  RankCheckpoint part;
  part.params = &store;
  part.write_params.assign(store.entries().size(), true);
  if (data.adam_m != nullptr && data.adam_v != nullptr) {
    for (size_t i = 0; i < store.entries().size(); ++i) {
      const ParamEntry& e = store.entries()[i];
      part.state.push_back({i, 0, e.numel, data.adam_m->view(e.offset, {e.numel}), data.adam_v->view(e.offset, {e.numel})});
    }
  }
  const std::string tmp = prepare_checkpoint_dir(root, data.state.step);
  write_rank_checkpoint(tmp, 0, part);
  CheckpointMeta meta;
  meta.state = data.state;
  meta.config_yaml = data.config_yaml;
  meta.has_optimizer = data.adam_m != nullptr;
  meta.layout.tp = store.tp_size();
  return publish_checkpoint(root, tmp, meta, keep);
}

std::vector<std::string> complete_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  for (const fs::path& p : complete_steps(root)) out.push_back(p.string());
  return out;
}

std::string latest_named(const std::string& root) {
  const fs::path latest = fs::path(root) / "latest";
  if (!fs::exists(latest)) return "";
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name;
}

std::string latest_checkpoint(const std::string& root) {
  const std::string name = latest_named(root);
  if (step_of(name) >= 0 && fs::exists(fs::path(root) / name / kManifestFile)) return (fs::path(root) / name).string();
  std::vector<fs::path> steps = complete_steps(root);
  return steps.empty() ? std::string() : steps.back().string();
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / kManifestFile)) return path;
  TESSEL_CHECK(!fs::exists(fs::path(path) / "state.safetensors"))
      << "checkpoint " << path << " is in format 2 (one state.safetensors, written by an earlier Tessel); this "
      << "Tessel reads format " << kCheckpointFormatVersion << " (manifest.pb and per-rank files); hint: retrain, "
      << "or load it with the Tessel that wrote it";
  const std::string latest = latest_checkpoint(path);
  TESSEL_CHECK(!latest.empty())
      << "no checkpoint at '" << path << "': expected a step_NNNNNNNN directory holding " << kManifestFile
      << ", or a checkpoint root with one; hint: train with checkpoint.every or point at "
      << "<run.out_dir>/checkpoints";
  return latest;
}

// The manifest, the tensors by name, and the rank files mapped as they are first needed.
struct CheckpointReader::Impl {
  std::string dir;
  pb::Manifest manifest;
  std::map<std::string, const pb::Tensor*> tensors;
  mutable std::map<std::string, std::unique_ptr<SafetensorsFile>> files;

  // The piece's bytes, verified: the rank file must be valid safetensors (its header is checked
  // when it is first opened) and hold the piece where the manifest says, with its checksum.
  const uint8_t* piece_bytes(const pb::Tensor& t, const pb::Piece& p) const {
    auto it = files.find(p.file());
    if (it == files.end()) {
      it = files.emplace(p.file(), std::make_unique<SafetensorsFile>((fs::path(dir) / p.file()).string())).first;
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
    TESSEL_CHECK(crc == p.crc32c())
        << "checkpoint " << dir << " is damaged: file " << p.file() << ", tensor '" << t.name() << "' (piece "
        << p.key() << ") has crc32c " << hex32(crc) << " but was saved with " << hex32(p.crc32c())
        << "; hint: with checkpoint.resume: auto the previous checkpoint is used instead, or resume from an "
        << "earlier step_* directory";
    return bytes;
  }
};

namespace {

Region region_of(const pb::Piece& p) {
  Region r;
  r.box_start.assign(p.box_start().begin(), p.box_start().end());
  r.box_end.assign(p.box_end().begin(), p.box_end().end());
  r.flat_begin = p.flat_begin();
  r.flat_end = p.flat_end();
  return r;
}

Shape shape_of(const pb::Tensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

}  // namespace

CheckpointReader::CheckpointReader(const std::string& step_dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = step_dir;
  const fs::path path = fs::path(step_dir) / kManifestFile;
  TESSEL_CHECK(fs::exists(path)) << "checkpoint " << step_dir << " has no " << kManifestFile
                                 << ": it is not a complete checkpoint (an interrupted save leaves step_N.tmp/, "
                                 << "which is never loaded)";
  const std::string bytes = read_file(path.string());
  pb::ManifestFile mf;
  TESSEL_CHECK(mf.ParseFromString(bytes)) << "checkpoint " << path.string() << " is damaged: not a manifest";
  TESSEL_CHECK(mf.format_version() == kCheckpointFormatVersion)
      << "checkpoint " << path.string() << " has format version " << mf.format_version() << "; this Tessel reads version "
      << kCheckpointFormatVersion;
  const uint32_t crc = crc32c(mf.body().data(), mf.body().size());
  TESSEL_CHECK(crc == mf.body_crc32c()) << "checkpoint " << path.string() << " is damaged or was edited: its crc32c is "
                                        << hex32(crc) << ", it was written with " << hex32(mf.body_crc32c())
                                        << kFallbackHint;
  pb::Manifest& m = impl_->manifest;
  TESSEL_CHECK(m.ParseFromString(mf.body())) << "checkpoint " << path.string() << " is damaged: unreadable manifest";
  std::map<std::string, uint64_t> sizes;
  for (const pb::File& f : m.files()) {
    const fs::path file = fs::path(step_dir) / f.name();
    std::error_code ec;
    TESSEL_CHECK(fs::exists(file, ec)) << "checkpoint " << step_dir << " is incomplete: file " << f.name()
                                       << " that its manifest lists is missing" << kFallbackHint;
    const uint64_t size = fs::file_size(file, ec);
    TESSEL_CHECK(size == f.bytes()) << "checkpoint " << step_dir << " is damaged: file " << f.name() << " has " << size
                                    << " bytes, its manifest says " << f.bytes() << " (truncated or overwritten)"
                                    << kFallbackHint;
    sizes[f.name()] = f.bytes();
  }
  for (const pb::Tensor& t : m.tensors()) {
    const Shape shape = shape_of(t);
    int64_t covered = 0;
    for (const pb::Piece& p : t.pieces()) {
      const Region r = region_of(p);
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
    TESSEL_CHECK(covered == shape_numel(shape)) << "checkpoint " << step_dir << " is damaged: the pieces of tensor '"
                                                << t.name() << "' hold " << covered << " elements, it has "
                                                << shape_numel(shape);
    impl_->tensors[t.name()] = &t;
  }
  info_.path = step_dir;
  info_.state.step = m.state().step();
  info_.state.consumed_samples = m.state().consumed_samples();
  info_.state.optimizer_steps = m.state().optimizer_steps();
  info_.state.skipped_total = m.state().skipped_total();
  info_.state.skipped_streak = m.state().skipped_streak();
  info_.state.loss_scale = m.scaler().loss_scale();
  info_.state.loss_scale_good_steps = m.scaler().good_steps();
  info_.config_yaml = m.config_yaml();
  info_.layout.tp = m.layout().tp();
  info_.layout.pp = m.layout().pp();
  info_.layout.dp = m.layout().dp();
  info_.layout.zero = m.layout().zero();
  info_.layout.virtual_stages = m.layout().virtual_stages();
  info_.layout.schedule = m.layout().schedule();
  info_.layout.world_size = m.layout().world_size();
  info_.seed = m.rng().seed();
  info_.has_optimizer = m.has_optimizer();
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
      const Region r = region_of(p);
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

CheckpointInfo read_checkpoint_info(const std::string& step_dir) { return CheckpointReader(step_dir).info(); }

Config checkpoint_config(const CheckpointInfo& info) {
  return parse_config(info.config_yaml, info.path + "/manifest.pb[config]");
}

CheckpointInfo load_checkpoint(const std::string& step_dir, const ParameterStore& params, Tensor* adam_m,
                               Tensor* adam_v) {
  const CheckpointReader reader(step_dir);
  reader.read(params, "", params.params());
  if (adam_m != nullptr) reader.read(params, kExpAvg, *adam_m);
  if (adam_v != nullptr) reader.read(params, kExpAvgSq, *adam_v);
  return reader.info();
}

}  // namespace tessel
