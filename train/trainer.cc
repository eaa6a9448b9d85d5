#include "train/trainer.h"

#include "train/device_select.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/io/file.h"
#include "core/measure.h"
#include "data/dataset_identity.h"
#include "parallel/pipeline_schedule.h"
#include "train/metrics_log.h"
#include "train/tensorboard_writer.h"

namespace tessel {
namespace fs = std::filesystem;

namespace {

// What the run will read: each dataset's size and weight, and the realized share of the run's
// samples (the blend is deterministic, so counting the first samples is exact, not an estimate).
void log_mixture(const Sampler& sampler, uint64_t run_samples) {
  const uint64_t n = std::min<uint64_t>(std::max<uint64_t>(run_samples, 1), 1000000);
  std::vector<uint64_t> count(static_cast<size_t>(sampler.num_sources()), 0);
  for (uint64_t i = 0; i < n; ++i) ++count[static_cast<size_t>(sampler.locate(i).dataset)];
  for (int d = 0; d < sampler.num_sources(); ++d) {
    const double share = static_cast<double>(count[static_cast<size_t>(d)]) / static_cast<double>(n);
    const double epochs = sampler.windows(d) > 0 ? static_cast<double>(count[static_cast<size_t>(d)]) /
                                                       static_cast<double>(sampler.windows(d))
                                                 : 0.0;
    spdlog::info(
        "data {}: {} ({} tokens, {} samples of {}), weight {:.3f}, realized {:.3f} of the first {} samples ({:.2f} "
        "epochs)",
        d, sampler.source(d).path(), sampler.source(d).num_tokens(), sampler.windows(d), sampler.seq_len() + 1,
        sampler.weights()[static_cast<size_t>(d)], share, n, epochs);
  }
}

// A dataset `tessel data prepare` made records its tokenizer (the fingerprint carries it):
// training it with another one would read ids as the wrong words without any error.
void check_dataset_tokenizer(const DatasetFingerprint& data, const Config& config) {
  if (data.tokenizer.empty()) return;  // prepared elsewhere: nothing recorded
  const std::string wanted = name_of(config.data.tokenizer);
  TESSEL_CHECK(data.tokenizer == wanted) << config.source << ": dataset '" << data.path << "' was tokenized with "
                                         << data.tokenizer << " (" << dataset_record_path(data.path)
                                         << ") but data.tokenizer is " << wanted
                                         << "; hint: set data.tokenizer: " << data.tokenizer
                                         << ", or prepare the data again with --tokenizer " << wanted;
}

// What the run reads, fingerprinted for its checkpoints and checked against data.tokenizer.
std::vector<DatasetFingerprint> fingerprint_data(const Sampler& train, const Sampler* val, const Config& config) {
  std::vector<DatasetFingerprint> data;
  for (int d = 0; d < train.num_sources(); ++d) data.push_back(fingerprint_dataset("train", train.source(d)));
  if (val != nullptr) data.push_back(fingerprint_dataset("val", val->source(0)));
  for (const DatasetFingerprint& f : data) check_dataset_tokenizer(f, config);
  return data;
}

// Fails before any training when a directory the run will write into cannot be created or
// written, rather than after hours of steps.
void ensure_writable_directory(const std::string& dir, const std::string& key) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TESSEL_CHECK(!ec) << "cannot create directory '" << dir << "' (" << key << "): " << ec.message() << "; hint: set "
                    << key << " to a writable path";
  const fs::path probe = fs::path(dir) / ".tessel_write_test";
  FILE* f = std::fopen(probe.c_str(), "w");
  TESSEL_CHECK(f != nullptr) << "directory '" << dir << "' (" << key << ") is not writable; hint: set " << key
                             << " to a writable path";
  std::fclose(f);
  fs::remove(probe, ec);
}

// Claims run.out_dir and the checkpoint root (checkpoint.dir, by default run.out_dir/checkpoints)
// for this run: a second run pointed at either fails here, naming this one, before it writes
// anything.
std::vector<DirLock> lock_run_directories(const Config& config) {
  std::vector<DirLock> locks;
  locks.emplace_back(config.run.out_dir, "run.out_dir");
  const std::string root = checkpoint_root(config);
  if (resolved_path(root, "checkpoint.dir") != resolved_path(config.run.out_dir, "run.out_dir")) {
    locks.emplace_back(root, "checkpoint.dir");
  }
  for (const DirLock& lock : locks) {
    if (!lock.held()) {
      spdlog::warn(
          "cannot lock {}: its file system does not support locks, so another run writing there would "
          "not be noticed",
          lock.path());
    }
  }
  return locks;
}

}  // namespace

Trainer::Trainer(const Config& config, Communicator& world, const Topology& topology,
                 std::vector<std::string> rank_hosts)
    : config_(config), world_(world), topology_(topology), writer_(world.rank() == 0) {
  check_batch_split(config.batch, topology.size(Axis::kDp));
  check_device(config);
  TESSEL_CHECK(!config.data.train.empty())
      << config.source << ": data.train is empty; hint: prepare data with `tessel data prepare` "
      << "and list its prefix under data.train";
  // Text prepared with the byte tokenizer holds ids up to 256 (end-of-text): a smaller
  // vocabulary would fail at the first sample that holds one, possibly hours in.
  TESSEL_CHECK(config.data.tokenizer != TokenizerKind::kBytes || config.model.vocab_size >= 257)
      << config.source << ": model.vocab_size=" << config.model.vocab_size
      << " is too small for data.tokenizer: bytes, whose ids run to 256 (end-of-text); hint: set "
      << "model.vocab_size=257 or more";
  // Everything a user can get wrong is checked before the model is allocated and initialized.
  if (config.run.eval_every > 0 && config.data.val.empty()) {
    spdlog::warn("run.eval_every={} but data.val is empty: no evaluation will run", config.run.eval_every);
  }
  if (writer_) {
    locks_ = lock_run_directories(config);
    ensure_writable_directory(config.run.out_dir, "run.out_dir");
    ensure_writable_directory(checkpoint_root(config),
                              config.checkpoint.dir.empty() ? "run.out_dir (checkpoints)" : "checkpoint.dir");
  }
  train_ = make_sampler(config.data.train, config.model.seq_len, config.run.seed, config.model.vocab_size);
  if (writer_) log_mixture(*train_, static_cast<uint64_t>(config.run.steps * config.batch.global));
  if (!config.data.val.empty()) {
    val_ = make_sampler({{config.data.val, 1.0}}, config.model.seq_len, config.run.seed, config.model.vocab_size);
  }
  std::vector<DatasetFingerprint> data = fingerprint_data(*train_, val_.get(), config);
  // The schedule is checked before anything is allocated: a bad layout fails here, on every rank.
  r_ = RankModel::build(config, world, topology);
  if (r_.pipeline) {
    const int pp = r_.pp->size(), v = static_cast<int>(config.parallel.virtual_stages);
    const int m = r_.pipeline->micro_batches();
    if (writer_) {
      const double idle = r_.schedule.bubble_fraction;
      spdlog::info(
          "pipeline: {} stages x {} virtual, schedule {}, {} micro-batches per step: idle {:.1f}% of the "
          "busy time when backward costs 2 forwards (theory (p-1)/(m v) = {:.1f}%)",
          pp, v, name_of(config.parallel.schedule), m, 100 * idle / (1 - idle), 100.0 * (pp - 1) / (m * v));
    }
    for (int stage = 0; stage < pp && writer_; ++stage) {
      spdlog::info(
          "pipeline rank {}: {}", stage,
          pipeline_model_part(config.model.layers, pp, v, stage, {}, config.parallel.pipeline_split).describe());
    }
  }
  if (r_.tp->size() > 1 || config.parallel.recompute != Recompute::kNone) {
    spdlog::info("tensor parallel {}{}, recompute {}: {:.1f} MiB of activations per micro-batch on each rank",
                 r_.tp->size(), config.parallel.sequence_parallel ? " with sequence parallelism" : "",
                 name_of(config.parallel.recompute), static_cast<double>(r_.model->activation_bytes()) / (1 << 20));
  }
  if (r_.dp->size() > 1) {
    spdlog::info(
        "data parallel: {} ranks, {} gradient buckets of up to {} MiB, zero {}: optimizer state {:.1f} MiB per rank",
        r_.dp->size(), r_.step->data_parallel().buckets().size(), config.parallel.bucket_mb,
        zero_stage(r_.step->data_parallel().zero()), static_cast<double>(r_.step->optimizer_state_bytes()) / (1 << 20));
  }
  if (const DataParallel* experts = r_.step->expert_data_parallel()) {
    const ParameterStore& store = r_.model->parameters();
    spdlog::info(
        "expert parallel {}: {} of {} routed experts per MoE layer on each rank ({:.1f} MiB of weights), reduced over "
        "{} rank(s) holding the same ones, zero {}",
        r_.ep->size(), config.model.moe.experts / r_.ep->size(), config.model.moe.experts,
        static_cast<double>(store.numel() - store.expert_begin()) * 4 / (1 << 20), experts->size(),
        zero_stage(experts->zero()));
  }
  if (world.size() > 1) straggler_ = std::make_unique<StragglerMonitor>(world, std::move(rank_hosts));
  checkpointer_ = std::make_unique<Checkpointer>(config, world, r_, std::move(data));
  resume_if_asked();
  if (!writer_) return;  // metrics are rank 0's to write
  sinks_.push_back(std::make_unique<ConsoleSink>());
  goodput_ = std::make_unique<Goodput>([](const char* name) { return static_cast<const char*>(std::getenv(name)); },
                                       state_.step, epoch_seconds());
  if (config.logging.jsonl) {
    // A resumed run continues the file from its checkpoint's step; a fresh one starts it anew.
    const std::string path = (fs::path(config.run.out_dir) / "metrics.jsonl").string();
    truncate_metrics_after(path, state_.step);
    // This job's earlier attempts' steps (a job restarted by tessel launch).
    goodput_->add_earlier_steps(sum_metric(path, "step_time_s", goodput_->job_start()));
    sinks_.push_back(std::make_unique<MetricsLog>(path));
  }
  if (config.logging.tensorboard) sinks_.push_back(std::make_unique<TensorBoardWriter>(config.run.out_dir));
}

Trainer::~Trainer() = default;

StepMetrics Trainer::step_metrics(const StepResult& r, double step_s, double eval_loss, double eta_s) const {
  const Config& c = config_;
  const double tokens_per_step = static_cast<double>(c.batch.global * c.model.seq_len);
  StepMetrics m;
  m.step = state_.step;
  m.steps = c.run.steps;
  m.log_step = state_.step % c.run.log_every == 0 || state_.step == c.run.steps || !std::isnan(eval_loss);
  m.eta_s = eta_s;
  m.skipped = r.skipped;
  m.overflow = r.overflow;
  m.values = {{"loss", r.loss, "train/loss"},
              {"lr", r.lr, "train/lr"},
              {"grad_norm", r.grad_norm, "train/grad_norm"},
              {"tokens_per_s", tokens_per_step / step_s, "train/tokens_per_s"},
              {"tflops", r_.model->flops_per_token() * tokens_per_step / step_s / 1e12, ""},
              {"step_time_s", step_s, ""},
              {"skipped", r.skipped ? 1.0 : 0.0, ""}};
  if (r_.dp->size() > 1) m.values.push_back({"comm_wait_s", r.comm_wait_s, ""});
  if (r_.step->scaler().enabled()) m.values.push_back({"loss_scale", r.loss_scale, ""});
  if (c.model.moe.enabled()) {
    // The aux loss over every MoE layer, then each layer's expert load (assignments per expert
    // over the step, all ranks), its dropped and re-routed assignments and aux_free's bias.
    m.values.push_back({"aux_loss", r.aux_loss, "train/aux_loss"});
    for (const MoeLayerSummary& l : r.moe) {
      const std::string key = "moe." + std::to_string(l.layer) + ".", tag = "moe/" + std::to_string(l.layer) + "/";
      m.values.push_back({key + "max_tokens", l.max_tokens, tag + "max_tokens"});
      m.values.push_back({key + "mean_tokens", l.mean_tokens, tag + "mean_tokens"});
      m.values.push_back({key + "dropped", l.dropped, tag + "dropped"});
      m.values.push_back({key + "rerouted", l.rerouted, tag + "rerouted"});
      m.values.push_back({key + "aux_loss", l.aux_loss, tag + "aux_loss"});
      if (c.model.moe.balance == MoeBalance::kAuxFree)
        m.values.push_back({key + "bias_norm", l.bias_norm, tag + "bias_norm"});
    }
  }
  if (!std::isnan(eval_loss)) m.values.push_back({"eval_loss", eval_loss, "eval/loss"});
  return m;
}

std::string Trainer::flight_records() const {
  const std::string prefix = "  ";
  std::string out = "communicator '" + world_.name() + "':\n" + world_.recorder().dump(prefix);
  for (const std::unique_ptr<Communicator>* group : {&r_.tp, &r_.dp, &r_.pp, &r_.ep, &r_.edp}) {
    if (*group) out += "communicator '" + (*group)->name() + "':\n" + (*group)->recorder().dump(prefix);
  }
  return out;
}

void Trainer::resume_if_asked() {
  const CheckpointMeta info = checkpointer_->resume();
  if (info.path.empty()) return;
  state_ = info.state;
  TESSEL_CHECK(state_.consumed_samples == static_cast<uint64_t>(state_.step * config_.batch.global))
      << "checkpoint " << info.path << " consumed " << state_.consumed_samples << " samples in " << state_.step
      << " steps, which does not match batch.global=" << config_.batch.global
      << "; hint: resume with the batch.global it was trained with";
  spdlog::info("resumed from {} at step {} ({} samples consumed)", info.path, state_.step, state_.consumed_samples);
}

std::string Trainer::save() {
  state_.optimizer_steps = r_.step->optimizer_steps();
  state_.skipped_streak = r_.step->guard().state().consecutive;
  state_.skipped_total = r_.step->guard().state().total_skipped;
  state_.consumed_samples = static_cast<uint64_t>(state_.step * config_.batch.global);
  return checkpointer_->save(state_);
}

double Trainer::evaluate(int64_t batches) {
  TESSEL_CHECK(val_ != nullptr) << "evaluation needs data.val; hint: prepare with --val-fraction "
                                << "and set data.val to the _val prefix";
  const int64_t samples = batches * config_.batch.global;
  if (!r_.pipeline) return mean_eval_loss(*r_.model, *val_, samples, r_.dp.get());
  // Through the pipeline: the last stage has the losses, which every stage then gets.
  return mean_eval_loss(*val_, samples, config_.batch.micro, r_.dp.get(), [&](int micro_batches, const EvalFill& fill) {
    double total = r_.pipeline->evaluate(micro_batches, fill);
    r_.pp->all_reduce_doubles(&total, 1, ReduceOp::kSum);
    return total;
  });
}

TrainSummary Trainer::run(const std::function<bool()>& stop_requested) {
  using Clock = std::chrono::steady_clock;
  const Config& c = config_;
  TrainSummary summary;
  summary.first_step = state_.step;
  summary.last_step = state_.step;
  if (state_.step >= c.run.steps) {
    spdlog::info("already at step {} of run.steps={}: nothing to train; hint: raise run.steps to continue", state_.step,
                 c.run.steps);
    return summary;
  }
  const double tokens_per_step = static_cast<double>(c.batch.global * c.model.seq_len);
  const double flops_per_step = r_.model->flops_per_token() * tokens_per_step;
  spdlog::info(
      "model: {} parameters, {:.3g} GFLOP per step; batch {} x {} tokens ({} data-parallel ranks x {} micro-batches of "
      "{})",
      r_.model->num_parameters(), flops_per_step / 1e9, c.batch.global, c.model.seq_len, r_.dp->size(),
      r_.step->accumulation_steps(), c.batch.micro);
  if (r_.device) {
    spdlog::info("device: {} on {}, compute {}; {} MiB allocated after setup", r_.device->device().str(),
                 r_.device->describe(), name_of(c.precision.compute), r_.device->memory().allocated >> 20);
  }
  const auto run_start = Clock::now();
  double elapsed_steps_time = 0;
  int64_t timed_steps = 0;
  while (state_.step < c.run.steps) {
    const auto t0 = Clock::now();
    StepResult r = r_.step->run(state_.step, [&](uint64_t first, const Tensor& tokens, const Tensor& targets) {
      fill_micro_batch(*train_, first, tokens, targets);
    });
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    ++state_.step;
    // Every rank, at the steps the progress line shows: who held the others up.
    std::optional<StragglerMonitor::Report> straggler;
    if (straggler_) {
      straggler_->add(dt - r.comm_wait_s);
      if (state_.step % c.run.log_every == 0 || state_.step == c.run.steps) {
        straggler = straggler_->gather();
        if (writer_ && straggler->straggling) {
          spdlog::warn(
              "straggler: rank {}{} worked {:.2f}x the median rank's time over the last steps (its step "
              "time less its wait for the gradient reduction); the others wait for it",
              straggler->rank, straggler->host.empty() ? "" : " on " + straggler->host, straggler->slowdown);
        }
      }
    }
    state_.consumed_samples = static_cast<uint64_t>(state_.step * c.batch.global);
    if (state_.step > summary.first_step + 1) {  // the first step warms caches: not in the ETA
      elapsed_steps_time += dt;
      ++timed_steps;
    }
    if (summary.losses.empty()) summary.first_loss = r.loss;
    summary.last_loss = r.loss;
    summary.losses.push_back(r.loss);
    double eval_loss = NAN;
    if (c.run.eval_every > 0 && val_ && (state_.step % c.run.eval_every == 0 || state_.step == c.run.steps)) {
      eval_loss = evaluate(c.run.eval_batches);
      summary.last_eval_loss = eval_loss;
    }
    if (!sinks_.empty()) {
      const double per_step = timed_steps > 0 ? elapsed_steps_time / timed_steps : dt;
      StepMetrics m = step_metrics(r, dt, eval_loss, per_step * static_cast<double>(c.run.steps - state_.step));
      for (const auto& [name, value] : goodput_->after_step(dt, epoch_seconds(), state_.step == c.run.steps))
        m.values.push_back({name, value, ""});
      if (straggler) {
        m.values.push_back({"straggler_rank", static_cast<double>(straggler->rank), ""});
        m.values.push_back({"straggler_slowdown", straggler->slowdown, "train/straggler_slowdown"});
      }
      for (const std::unique_ptr<MetricsSink>& sink : sinks_) sink->write(m);
    }
    checkpointer_->poll();  // publishes a background save once every rank has written it
    int64_t saved_at = -1;
    if (c.checkpoint.every > 0 && state_.step % c.checkpoint.every == 0 && state_.step < c.run.steps) {
      summary.checkpoint = save();
      saved_at = state_.step;
    }
    // A stop request (SIGTERM, SIGINT) on any rank stops every rank after the same step.
    if (stop_requested && state_.step < c.run.steps) {
      double stop = stop_requested() ? 1.0 : 0.0;
      if (world_.size() > 1) world_.all_reduce_doubles(&stop, 1, ReduceOp::kMax);
      if (stop > 0) {
        if (writer_)
          spdlog::warn(
              "stop requested: saving a checkpoint at step {} of {} and stopping; resume with "
              "checkpoint.resume: auto",
              state_.step, c.run.steps);
        summary.stopped = true;
        if (saved_at == state_.step) break;
        summary.checkpoint = save();
        break;
      }
    }
  }
  for (const std::unique_ptr<MetricsSink>& sink : sinks_) sink->flush();
  if (!summary.stopped) summary.checkpoint = save();  // run() returned early when there was nothing to train
  checkpointer_->wait();                              // a background save is published before the run ends
  summary.last_step = state_.step;
  if (r_.device) {
    const AllocatorStats m = r_.device->memory();
    spdlog::info("device memory: peak {} MiB allocated, {} MiB reserved", m.peak_allocated >> 20,
                 m.peak_reserved >> 20);
  }
  spdlog::info("{}: {} steps in {}", summary.stopped ? "stopped" : "done", state_.step - summary.first_step,
               format_duration(std::chrono::duration<double>(Clock::now() - run_start).count()));
  if (goodput_) spdlog::info("goodput: {}", goodput_->summary(epoch_seconds()));
  return summary;
}

}  // namespace tessel
