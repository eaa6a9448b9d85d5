#include "train/checkpointer.h"

#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/rank_file.h"
#include "core/checkpoint/writer.h"
#include "core/io/file.h"
#include "core/measure.h"
#include "core/model/param_specs.h"
#include "core/version.h"
#include "train/resume_check.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

// A checkpoint of another model or other data than this run's: refused at once, never skipped
// for an older one (which would be just as incompatible) nor reported as damage.
class IncompatibleCheckpoint : public Error {
 public:
  using Error::Error;
};

#define TESSEL_INCOMPATIBLE(message) throw IncompatibleCheckpoint(message, __FILE__, __LINE__)

std::string bullet_list(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "\n  " + line;
  return out;
}

}  // namespace

void broadcast_string(Communicator& group, std::string* text, int root) {
  Tensor length = Tensor::from_vector<int64_t>({static_cast<int64_t>(text->size())}, {1});
  group.broadcast(length, root);
  Tensor bytes = Tensor::empty({length.data<int64_t>()[0]}, DType::U8);
  if (group.rank() == root && !text->empty()) std::memcpy(bytes.raw(), text->data(), text->size());
  group.broadcast(bytes, root);
  text->assign(static_cast<const char*>(bytes.raw()), bytes.nbytes());
}

std::string checkpoint_root(const Config& config) {
  return config.checkpoint.dir.empty() ? (fs::path(config.run.out_dir) / "checkpoints").string()
                                       : config.checkpoint.dir;
}

Checkpointer::Checkpointer(const Config& config, Communicator& world, RankModel& rank,
                           std::vector<DatasetFingerprint> data)
    : config_(config),
      world_(world),
      rank_(rank),
      writer_(world.rank() == 0),
      root_(checkpoint_root(config)),
      data_(std::move(data)) {}

Checkpointer::~Checkpointer() {
  if (pending_ && pending_->thread.joinable()) pending_->thread.join();
}

std::string Checkpointer::save(const TrainingState& state) {
  wait();  // the previous save first
  const auto t0 = SteadyClock::now();
  std::string tmp = writer_ ? prepare_checkpoint_dir(root_, state.step) : "";
  broadcast_string(world_, &tmp, 0);
  // An asynchronous save copies the pieces; a synchronous one writes contiguous ones in place.
  auto file = std::make_shared<RankCheckpointFile>(rank_.checkpoint_part(), config_.checkpoint.async);
  double bytes = static_cast<double>(file->payload_bytes());
  world_.all_reduce_doubles(&bytes, 1, ReduceOp::kSum);
  auto p = std::make_unique<Pending>();
  p->tmp = tmp;
  p->dir = (fs::path(root_) / fs::path(tmp).filename().replace_extension("")).string();
  p->meta.state = state;
  // The loss scale is the step's own state, whoever asks for the save.
  p->meta.state.loss_scale = rank_.step->scaler().state().scale;
  p->meta.state.loss_scale_good_steps = rank_.step->scaler().state().good_steps;
  p->meta.config_yaml = to_yaml(config_);
  p->meta.layout = rank_.layout();
  p->meta.seed = config_.run.seed;
  p->meta.tessel_version = tessel_version_line();
  p->meta.data = data_;
  timing_ = SaveTiming{};
  timing_.bytes = static_cast<uint64_t>(bytes);
  const int rank = world_.rank();
  std::string dir = p->dir;
  if (!config_.checkpoint.async) {
    const auto tw = SteadyClock::now();
    file->write(tmp, rank);
    p->write_s = seconds_since(tw);
    p->done = true;
    pending_ = std::move(p);
    wait();
    timing_.snapshot_s = seconds_since(t0);
    if (writer_) {
      spdlog::info("saved checkpoint {}: {:.1f} MiB in {:.2f} s ({:.2f} GB/s)", dir, bytes / (1 << 20),
                   timing_.snapshot_s, bytes / timing_.snapshot_s / 1e9);
    }
    return dir;
  }
  // The copy is done: the file goes to disk in the background while training goes on.
  Pending* raw = p.get();
  p->thread = std::thread([file, raw, rank] {
    const auto tw = SteadyClock::now();
    try {
      file->write(raw->tmp, rank);
    } catch (...) {
      raw->error = std::current_exception();
    }
    raw->write_s = seconds_since(tw);
    raw->done = true;
  });
  pending_ = std::move(p);
  timing_.snapshot_s = seconds_since(t0);
  if (writer_) {
    spdlog::info("checkpoint {}: {:.1f} MiB copied in {:.3f} s, writing in the background", dir, bytes / (1 << 20),
                 timing_.snapshot_s);
  }
  return dir;
}

void Checkpointer::poll() {
  if (!pending_) return;
  double writing = pending_->done ? 0.0 : 1.0;
  world_.all_reduce_doubles(&writing, 1, ReduceOp::kSum);
  if (writing == 0) publish(*pending_);
}

void Checkpointer::wait() {
  if (!pending_) return;
  if (pending_->thread.joinable()) pending_->thread.join();
  publish(*pending_);
}

void Checkpointer::publish(Pending& p) {
  if (p.thread.joinable()) p.thread.join();
  std::unique_ptr<Pending> done = std::move(pending_);
  if (p.error) std::rethrow_exception(p.error);  // this rank's write failed: the job stops
  timing_.write_s = p.write_s;
  world_.barrier();  // every rank's file is complete
  if (writer_) {
    publish_checkpoint(root_, p.tmp, p.meta, config_.checkpoint.keep);
    if (config_.checkpoint.async) {
      spdlog::info("saved checkpoint {}: written in the background (rank 0's file in {:.2f} s)", p.dir, p.write_s);
    }
  }
}

std::string Checkpointer::candidate_checkpoints() const {
  const ResumeMode resume = config_.checkpoint.resume;
  const std::vector<std::string> existing = complete_checkpoints(root_);
  if (resume == ResumeMode::kNone) {
    if (!existing.empty()) {
      spdlog::warn(
          "checkpoint.resume=none but {} already holds checkpoints (newest {}); this run starts "
          "from step 0 and its checkpoints replace them as checkpoint.keep rotates",
          root_, existing.back());
    }
    return "";
  }
  // The run's own newest checkpoint that loads and verifies wins; a damaged one is skipped loudly
  // for the one before it. checkpoint.resume: PATH starts a run that has none yet, and must load
  // as it is.
  const std::string latest = latest_checkpoint(root_);
  if (resume == ResumeMode::kPath) {
    const std::string& path = config_.checkpoint.resume_path;
    if (path_is_inside(path, root_)) {
      const std::string dir = resolve_checkpoint(path);
      spdlog::info("resuming from {}: checkpoint.resume names a checkpoint of this run's own ({})", dir, root_);
      return dir + "\n";
    }
    if (latest.empty()) {
      const std::string dir = resolve_checkpoint(path);
      spdlog::info("starting from {} (checkpoint.resume): {} holds no checkpoint of this run yet", dir, root_);
      return dir + "\n";
    }
    spdlog::info(
        "resuming from this run's own newest checkpoint {}, not from checkpoint.resume={}: a run's own checkpoints "
        "take precedence once it has one (this is a rerun); hint: to start over from {}, use another "
        "checkpoint.dir or remove {}",
        latest, path, path, root_);
  }
  if (latest.empty()) return "";
  const std::string named = latest_named(root_);
  if (!named.empty() && fs::path(latest).filename() != named) {
    spdlog::warn(
        "{}/latest names {}, which is not a complete checkpoint (no manifest.pb); resuming from the newest "
        "complete one, {}",
        root_, named, latest);
  }
  std::string list = latest + "\n";
  for (auto it = existing.rbegin(); it != existing.rend(); ++it) {
    if (*it != latest) list += *it + "\n";
  }
  return list;
}

CheckpointMeta Checkpointer::resume() {
  std::string list = writer_ ? candidate_checkpoints() : "";
  broadcast_string(world_, &list, 0);
  std::vector<std::string> candidates;
  std::stringstream in(list);
  for (std::string line; std::getline(in, line);) candidates.push_back(line);
  for (size_t i = 0; i < candidates.size(); ++i) {
    double failed = 0;
    std::string error;
    std::exception_ptr caught;
    CheckpointMeta info;
    try {
      info = load(candidates[i]);
    } catch (const IncompatibleCheckpoint&) {
      throw;  // every rank decides alike from the same manifest and files: no fallback
    } catch (const Error& e) {
      failed = 1;
      error = e.message();
      caught = std::current_exception();
    }
    world_.all_reduce_doubles(&failed, 1, ReduceOp::kSum);
    if (failed == 0) return info;
    const bool last = i + 1 == candidates.size();
    if (!error.empty()) {
      if (last) std::rethrow_exception(caught);
      spdlog::error("CHECKPOINT {} FAILED VERIFICATION AND IS SKIPPED: {}", candidates[i], error);
    }
    TESSEL_CHECK(!last) << "checkpoint " << candidates[i] << " failed to load on " << failed << " other rank(s); "
                        << "their error says why; hint: set checkpoint.resume: none to start fresh";
    if (writer_) {
      spdlog::error(
          "CHECKPOINT {} FAILED VERIFICATION on {} rank(s) AND IS SKIPPED: falling back to the previous "
          "checkpoint {}",
          candidates[i], failed, candidates[i + 1]);
    }
  }
  return {};
}

void Checkpointer::check_compatible(const CheckpointReader& reader) const {
  const CheckpointMeta& meta = reader.meta();
  const std::string hint = "; hint: resume with the config it was saved with (tessel ckpt inspect " + meta.path +
                           " prints it), or start elsewhere (another checkpoint.dir, or checkpoint.resume: none)";
  try {
    reader.check_model(transformer_param_specs(config_.model));
  } catch (const Error& e) {
    TESSEL_INCOMPATIBLE("checkpoint " + meta.path + " is incompatible with this run (not damaged): " + e.message());
  }
  if (!meta.config_yaml.empty()) {
    const std::vector<std::string> changed = model_changes(checkpoint_config(meta).model, config_.model);
    if (!changed.empty()) {
      TESSEL_INCOMPATIBLE("checkpoint " + meta.path +
                          " is incompatible with this run (not damaged): its tensors fit, but the model computes "
                          "something else with these settings:" +
                          bullet_list(changed) + hint);
    }
  }
  // Only a trained checkpoint read data; an import starts a run on whatever data it likes.
  if (meta.has_optimizer && !meta.data.empty()) {
    const std::vector<std::string> changed = data_changes(meta.data, data_);
    if (!changed.empty() && !config_.checkpoint.allow_data_change) {
      TESSEL_INCOMPATIBLE("checkpoint " + meta.path +
                          " was trained on other data than this run reads (a dataset was rewritten, replaced or "
                          "listed differently):" +
                          bullet_list(changed) +
                          "\nhint: if the change is intended, set checkpoint.allow_data_change: true; if not, "
                          "restore the data the run was trained on (tessel data inspect shows a dataset)");
    }
    if (!changed.empty() && writer_) {
      spdlog::warn("checkpoint.allow_data_change: the run continues on other data than {} was trained on:{}", meta.path,
                   bullet_list(changed));
    }
  }
}

CheckpointMeta Checkpointer::load(const std::string& dir) {
  const auto t0 = SteadyClock::now();
  const CheckpointReader reader(dir);
  check_compatible(reader);
  const CheckpointMeta& info = reader.meta();
  ParameterStore& local = rank_.model->parameters();
  // Read on the host, then into the model wherever it lives.
  const bool on_host = local.params().device().is_cpu();
  const Tensor params = on_host ? local.params() : Tensor::empty({local.numel()}, DType::F32);
  reader.read(local, "", params);
  // The moments laid out like this rank's parameters; a ZeRO rank keeps its shard of them.
  Tensor m = Tensor::zeros({local.numel()}, DType::F32), v = Tensor::zeros({local.numel()}, DType::F32);
  if (info.has_optimizer) {
    reader.read(local, exp_avg_name(""), m);
    reader.read(local, exp_avg_sq_name(""), v);
  } else if (writer_) {
    spdlog::warn("checkpoint {} holds weights only: the optimizer starts from zero moments", dir);
  }
  // The config the run was trained with, read once. A weights-only checkpoint (an import) was
  // never trained with its config's settings.
  std::optional<Config> trained;
  if (info.has_optimizer && !info.config_yaml.empty()) trained = checkpoint_config(info);
  if (writer_) {
    spdlog::info("loaded {} (saved at step {} by {}{}) into {} in {:.2f} s", dir, info.state.step,
                 info.layout.describe(), info.tessel_version.empty() ? "" : ", " + info.tessel_version,
                 rank_.layout().describe(), seconds_since(t0));
    const std::vector<std::string> changes =
        trained ? training_changes(*trained, config_, info.state.step) : std::vector<std::string>{};
    if (!changes.empty()) {
      spdlog::warn(
          "resuming from {} with settings other than it was trained with; the run will not follow the one "
          "it continues:{}",
          dir, bullet_list(changes));
    }
  }
  rank_.load_values(params, m, v);
  rank_.step->set_optimizer_steps(info.state.optimizer_steps);
  rank_.step->guard().restore({info.state.skipped_streak, info.state.skipped_total});
  // A loss scale carries over from a trained fp16 run only; any other (another precision, an
  // import of weights) starts the scaler afresh.
  if (trained && trained->precision.compute == Precision::kFp16) {
    rank_.step->scaler().restore({info.state.loss_scale, info.state.loss_scale_good_steps});
  }
  return info;
}

}  // namespace tessel
