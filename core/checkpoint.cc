#include "core/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/safetensors.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStateFile = "state.safetensors";
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
    if (step >= 0 && e.is_directory() && fs::exists(e.path() / kStateFile)) found.emplace_back(step, e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> steps;
  for (auto& f : found) steps.push_back(std::move(f.second));
  return steps;
}

std::string crc_key(const std::string& tensor) { return "crc32c." + tensor; }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& path) {
  auto it = meta.find(key);
  TESSEL_CHECK(it != meta.end()) << "checkpoint " << path << " has no '" << key
                                 << "' in its metadata; it was not written by Tessel or is damaged";
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    TESSEL_FAIL() << "checkpoint " << path << ": metadata '" << key << "' is '" << it->second
                  << "', expected an integer";
  }
}

}  // namespace

std::string save_checkpoint(const std::string& root, const CheckpointData& data, int64_t keep) {
  TESSEL_CHECK(data.params != nullptr) << "save_checkpoint: no parameters";
  const ParameterStore& store = *data.params;
  TESSEL_CHECK(store.tp_size() == 1) << "save_checkpoint takes whole tensors; gather tensor-parallel shards first";
  const fs::path final_dir = fs::path(root) / step_dir_name(data.state.step);
  const fs::path tmp_dir = fs::path(root) / (step_dir_name(data.state.step) + ".tmp");
  std::error_code ec;
  fs::create_directories(root, ec);
  TESSEL_CHECK(!ec) << "cannot create checkpoint directory '" << root << "': " << ec.message();
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  TESSEL_CHECK(!ec) << "cannot create '" << tmp_dir.string() << "': " << ec.message();

  SafetensorsWriter w;
  // Each tensor's crc32c goes in the metadata, so a load detects bytes damaged after writing.
  auto add = [&](const std::string& name, const Tensor& t) {
    w.add(name, t);
    w.set_metadata(crc_key(name), hex32(crc32c(t.raw(), t.nbytes())));
  };
  for (const ParamEntry& e : store.entries()) {
    add(e.spec.name, store.params().view(e.offset, e.shape));
    if (data.adam_m != nullptr) add(kExpAvg + e.spec.name, data.adam_m->view(e.offset, e.shape));
    if (data.adam_v != nullptr) add(kExpAvgSq + e.spec.name, data.adam_v->view(e.offset, e.shape));
  }
  const TrainingState& s = data.state;
  w.set_metadata("tessel_format", std::to_string(kCheckpointFormatVersion));
  w.set_metadata("step", std::to_string(s.step));
  w.set_metadata("consumed_samples", std::to_string(s.consumed_samples));
  w.set_metadata("optimizer_steps", std::to_string(s.optimizer_steps));
  w.set_metadata("skipped_total", std::to_string(s.skipped_total));
  w.set_metadata("skipped_streak", std::to_string(s.skipped_streak));
  w.set_metadata("has_optimizer", data.adam_m != nullptr ? "1" : "0");
  w.set_metadata("config", data.config_yaml);
  w.write((tmp_dir / kStateFile).string());
  fsync_directory(tmp_dir.string());

  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  TESSEL_CHECK(!ec) << "cannot rename '" << tmp_dir.string() << "' to '" << final_dir.string()
                    << "': " << ec.message();
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

std::vector<std::string> complete_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  for (const fs::path& p : complete_steps(root)) out.push_back(p.string());
  return out;
}

std::string latest_checkpoint(const std::string& root) {
  const fs::path latest = fs::path(root) / "latest";
  if (fs::exists(latest)) {
    std::string name = read_file(latest.string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    const fs::path dir = fs::path(root) / name;
    if (fs::exists(dir / kStateFile)) return dir.string();
  }
  std::vector<fs::path> steps = complete_steps(root);
  return steps.empty() ? std::string() : steps.back().string();
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / kStateFile)) return path;
  const std::string latest = latest_checkpoint(path);
  TESSEL_CHECK(!latest.empty())
      << "no checkpoint at '" << path << "': expected a step_NNNNNNNN directory holding "
      << kStateFile << ", or a checkpoint root with one; hint: train with checkpoint.every or "
      << "point at <run.out_dir>/checkpoints";
  return latest;
}

namespace {

// The training state and config recorded in an opened state file's metadata.
CheckpointInfo info_of(const SafetensorsFile& st, const std::string& step_dir) {
  const std::string& file = st.path();
  const auto& meta = st.metadata();
  CheckpointInfo info;
  info.path = step_dir;
  const int64_t version = meta_int(meta, "tessel_format", file);
  TESSEL_CHECK(version == kCheckpointFormatVersion)
      << "checkpoint " << file << " has format version " << version << "; this Tessel reads version "
      << kCheckpointFormatVersion;
  info.state.step = meta_int(meta, "step", file);
  info.state.consumed_samples = static_cast<uint64_t>(meta_int(meta, "consumed_samples", file));
  info.state.optimizer_steps = meta_int(meta, "optimizer_steps", file);
  info.state.skipped_total = meta_int(meta, "skipped_total", file);
  info.state.skipped_streak = meta_int(meta, "skipped_streak", file);
  auto it = meta.find("config");
  TESSEL_CHECK(it != meta.end()) << "checkpoint " << file << " does not record its config";
  info.config_yaml = it->second;
  return info;
}

}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& step_dir) {
  return info_of(SafetensorsFile((fs::path(step_dir) / kStateFile).string()), step_dir);
}

CheckpointInfo load_checkpoint(const std::string& step_dir, ParameterStore& params,
                               Tensor* adam_m, Tensor* adam_v) {
  TESSEL_CHECK(params.tp_size() == 1) << "load_checkpoint fills whole tensors; scatter them into tensor-parallel shards after";
  const std::string file = (fs::path(step_dir) / kStateFile).string();
  SafetensorsFile st(file);  // mapped and validated once for the state and every tensor
  CheckpointInfo info = info_of(st, step_dir);
  auto load_into = [&](const std::string& name, const ParamEntry& e, const Tensor& flat) {
    TESSEL_CHECK(st.has(name))
        << "checkpoint " << file << " has no tensor '" << name << "' that this model needs; "
        << "hint: the checkpoint was saved from another model shape (compare model.* with the "
        << "config stored in it) or without optimizer state";
    const SafetensorsTensorInfo& ti = st.info(name);
    TESSEL_CHECK(ti.shape == e.spec.shape && ti.dtype == DType::F32)
        << "checkpoint " << file << ": tensor '" << name << "' is " << ti.dtype_name
        << shape_str(ti.shape) << " but this model expects F32" << shape_str(e.spec.shape)
        << "; hint: the checkpoint comes from a different model shape — resume with the config "
        << "it was saved with, or set checkpoint.resume: none to start fresh";
    const uint8_t* src = st.raw(name);
    auto crc = st.metadata().find(crc_key(name));
    TESSEL_CHECK(crc != st.metadata().end())
        << "checkpoint " << file << " records no checksum for tensor '" << name
        << "'; it is damaged or was not written by Tessel";
    const std::string actual = hex32(crc32c(src, ti.end - ti.begin));
    TESSEL_CHECK(actual == crc->second)
        << "checkpoint " << file << " is damaged: tensor '" << name << "' has crc32c " << actual
        << " but was saved with " << crc->second << "; hint: with checkpoint.resume: auto the "
        << "previous checkpoint is used instead, or resume from an earlier step_* directory";
    std::copy(src, src + (ti.end - ti.begin),
              static_cast<uint8_t*>(flat.view(e.offset, e.shape).raw()));
  };
  for (const ParamEntry& e : params.entries()) {
    load_into(e.spec.name, e, params.params());
    if (adam_m != nullptr) load_into(kExpAvg + e.spec.name, e, *adam_m);
    if (adam_v != nullptr) load_into(kExpAvgSq + e.spec.name, e, *adam_v);
  }
  for (const std::string& name : st.names()) {
    const bool moment = name.rfind(kExpAvg, 0) == 0 || name.rfind(kExpAvgSq, 0) == 0;
    if (!moment) {
      TESSEL_CHECK(params.has(name))
          << "checkpoint " << file << " holds tensor '" << name << "' that this model does not have; "
          << "hint: the checkpoint comes from a different model shape (model.layers, "
          << "tie_embeddings, bias...)";
    }
  }
  return info;
}

}  // namespace tessel
