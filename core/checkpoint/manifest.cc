#include "core/checkpoint/manifest.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/safetensors.h"

namespace tessel {
namespace fs = std::filesystem;
namespace pb = tessel::checkpoint;
namespace {

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

void set_meta(const CheckpointMeta& meta, pb::Manifest* m) {
  m->set_format_version(kCheckpointFormatVersion);
  pb::TrainingState* st = m->mutable_state();
  st->set_step(meta.state.step);
  st->set_consumed_samples(meta.state.consumed_samples);
  st->set_optimizer_steps(meta.state.optimizer_steps);
  st->set_skipped_total(meta.state.skipped_total);
  st->set_skipped_streak(meta.state.skipped_streak);
  m->set_config_yaml(meta.config_yaml);
  pb::Layout* l = m->mutable_layout();
  l->set_tp(meta.layout.tp);
  l->set_pp(meta.layout.pp);
  l->set_dp(meta.layout.dp);
  l->set_zero(meta.layout.zero);
  l->set_virtual_stages(meta.layout.virtual_stages);
  l->set_schedule(meta.layout.schedule);
  l->set_world_size(meta.layout.world_size);
  m->mutable_rng()->set_seed(meta.seed);
  m->mutable_scaler()->set_loss_scale(meta.state.loss_scale);
  m->mutable_scaler()->set_good_steps(meta.state.loss_scale_good_steps);
  m->set_has_optimizer(meta.has_optimizer);
  m->set_tessel_version(meta.tessel_version);
  for (const DatasetFingerprint& d : meta.data) {
    pb::DatasetFingerprint* f = m->add_data();
    f->set_role(d.role);
    f->set_path(d.path);
    f->set_bytes(d.bytes);
    f->set_hash(d.hash);
    f->set_tokenizer(d.tokenizer);
  }
}

// Every rank file's pieces, from the files themselves: what is on disk is what is recorded.
void add_pieces(const std::string& tmp_dir, pb::Manifest& m) {
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
}

}  // namespace

std::string piece_description(const std::string& tensor, const Shape& shape, const Region& r) {
  return tensor + "|" + join(shape) + "|" + join(r.box_start) + "|" + join(r.box_end) + "|" +
         std::to_string(r.flat_begin) + "|" + std::to_string(r.flat_end);
}

void write_manifest(const std::string& tmp_dir, const CheckpointMeta& meta) {
  pb::Manifest m;
  set_meta(meta, &m);
  add_pieces(tmp_dir, m);
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
}

pb::Manifest read_manifest(const std::string& step_dir) {
  const fs::path path = contained_path(step_dir, kManifestFile, "checkpoint " + step_dir);
  TESSEL_CHECK(path_exists(path.string())) << "checkpoint " << step_dir << " has no " << kManifestFile
                                           << ": it is not a complete checkpoint (an interrupted save leaves "
                                           << "step_N.tmp/, which is never loaded)";
  // protobuf parses at most 2 GiB: a larger manifest.pb is refused before it is read.
  const std::string bytes = read_file(path.string(), uint64_t{2} << 30);
  pb::ManifestFile mf;
  TESSEL_CHECK(mf.ParseFromString(bytes)) << "checkpoint " << path.string() << " is damaged: not a manifest";
  TESSEL_CHECK(mf.format_version() == kCheckpointFormatVersion)
      << "checkpoint " << path.string() << " has format version " << mf.format_version()
      << "; this Tessel reads version " << kCheckpointFormatVersion;
  const uint32_t crc = crc32c(mf.body().data(), mf.body().size());
  TESSEL_CHECK(crc == mf.body_crc32c()) << "checkpoint " << path.string() << " is damaged or was edited: its crc32c is "
                                        << crc32c_hex(crc) << ", it was written with " << crc32c_hex(mf.body_crc32c())
                                        << kCheckpointFallbackHint;
  pb::Manifest m;
  TESSEL_CHECK(m.ParseFromString(mf.body())) << "checkpoint " << path.string() << " is damaged: unreadable manifest";
  return m;
}

CheckpointMeta manifest_meta(const pb::Manifest& m) {
  CheckpointMeta meta;
  meta.state.step = m.state().step();
  meta.state.consumed_samples = m.state().consumed_samples();
  meta.state.optimizer_steps = m.state().optimizer_steps();
  meta.state.skipped_total = m.state().skipped_total();
  meta.state.skipped_streak = m.state().skipped_streak();
  meta.state.loss_scale = m.scaler().loss_scale();
  meta.state.loss_scale_good_steps = m.scaler().good_steps();
  meta.config_yaml = m.config_yaml();
  meta.layout.tp = m.layout().tp();
  meta.layout.pp = m.layout().pp();
  meta.layout.dp = m.layout().dp();
  meta.layout.zero = m.layout().zero();
  meta.layout.virtual_stages = m.layout().virtual_stages();
  meta.layout.schedule = m.layout().schedule();
  meta.layout.world_size = m.layout().world_size();
  meta.seed = m.rng().seed();
  meta.has_optimizer = m.has_optimizer();
  meta.tessel_version = m.tessel_version();
  for (const pb::DatasetFingerprint& f : m.data()) {
    meta.data.push_back({f.role(), f.path(), f.bytes(), f.hash(), f.tokenizer()});
  }
  return meta;
}

Region piece_region(const pb::Piece& p) {
  Region r;
  r.box_start.assign(p.box_start().begin(), p.box_start().end());
  r.box_end.assign(p.box_end().begin(), p.box_end().end());
  r.flat_begin = p.flat_begin();
  r.flat_end = p.flat_end();
  return r;
}

}  // namespace tessel
