// Typed run configuration: YAML (yaml-cpp) parsed into structs and validated before anything
// is allocated.
//
// Keys follow DESIGN.md's schema (v1); extend it, never rename. `model.arch` is a preset for the
// knobs below it: unset knobs take the preset's value, explicitly set ones win. Errors name the
// file:line:col, the dotted key, the value found, what is valid, and a hint (for an unknown key,
// the closest valid key). Dotted `--set key=value` overrides are applied to the YAML tree before
// parsing, so they get the same type checks and their errors name the override.
// A Config is a plain value: copy it, pass it, never keep it in a global.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config/values.h"

namespace tessel {

struct RunConfig {
  std::string name = "tessel";
  std::string out_dir = "runs/tessel";
  uint64_t seed = 1234;
  int64_t steps = 100;
  int64_t log_every = 1;
  int64_t eval_every = 0;    // 0: never during training
  int64_t eval_batches = 4;  // batches (of batch.global sequences) of data.val per evaluation
  RunDevice device = RunDevice::kAuto;
  AttentionKernelChoice attention = AttentionKernelChoice::kAuto;  // cuda only: auto | reference | flash
  int threads = 0;                                                 // CPU threads per rank; 0: all cores / local ranks
  // Stop early, with a checkpoint, after this many steps of this run or this many minutes since
  // it started (0: no limit): a job's time limit, without changing the schedule of run.steps.
  int64_t exit_after_steps = 0;
  double exit_after_minutes = 0;
};

// model.moe: a Mixture-of-Experts FFN in place of the dense one (core/model/moe_layer.h).
// Absent or experts 0: a dense model.
struct MoeConfig {
  int64_t experts = 0;         // routed experts E
  int64_t top_k = 2;           // experts per token
  int64_t shared_experts = 0;  // always-on experts, run as one FFN of shared_ffn_dim
  int64_t expert_ffn_dim = 0;  // one routed expert's FFN width; 0: model.ffn_dim
  int64_t shared_ffn_dim = 0;  // the shared FFN's width; 0: expert_ffn_dim × shared_experts
  bool shared_gate = false;    // Qwen2-MoE: the shared FFN's output times sigmoid(x · w) per token
  MoeRouter router = MoeRouter::kSoftmax;
  bool norm_topk = true;       // renormalise the top-k weights to sum to 1
  double capacity_factor = 0;  // 0: dropless; else each expert takes ceil(cf · tokens · k / E) per micro-batch
  MoeOverflow overflow = MoeOverflow::kDrop;  // past capacity: drop, or re-route to an expert with room
  MoeBalance balance = MoeBalance::kAux;
  double aux_loss_coeff = 0.01;
  double bias_update_rate = 0.001;  // aux_free: the per-expert selection bias moves this much per step
  int64_t every = 1;                // layers first_dense, first_dense + every, ... are MoE
  int64_t first_dense = 0;          // leading dense layers

  bool enabled() const { return experts > 0; }
  bool is_moe_layer(int64_t layer) const {
    return enabled() && layer >= first_dense && (layer - first_dense) % every == 0;
  }
  int64_t expert_width(int64_t ffn_dim) const { return expert_ffn_dim > 0 ? expert_ffn_dim : ffn_dim; }
  int64_t shared_width(int64_t ffn_dim) const {
    if (shared_experts == 0) return 0;
    return shared_ffn_dim > 0 ? shared_ffn_dim : expert_width(ffn_dim) * shared_experts;
  }
};

struct ModelConfig {
  Arch arch = Arch::kGpt2;  // preset for the knobs below
  int64_t vocab_size = 50257;
  int64_t seq_len = 1024;  // T: also the number of learned positions
  int64_t layers = 12;     // L
  int64_t d_model = 768;   // C
  int64_t heads = 12;      // H
  int64_t kv_heads = 12;   // grouped-query attention when < heads
  int64_t ffn_dim = 3072;  // F
  Norm norm = Norm::kLayerNorm;
  double norm_eps = 1e-5;
  Activation activation = Activation::kGelu;
  Position position = Position::kLearned;
  double rope_theta = 10000.0;
  bool bias = true;
  bool tie_embeddings = true;
  double init_std = 0.02;
  MoeConfig moe;
  // Cross-layer attention (Hunyuan-Large's CLA): each group of cla_share consecutive layers
  // shares the keys and values of its first layer, and the others have no k/v projections.
  int64_t cla_share = 1;
  // The layer whose keys and values layer `layer` attends with (itself when it computes them).
  int64_t kv_source(int64_t layer) const { return layer - layer % cla_share; }

  int64_t head_dim() const { return d_model / heads; }  // D
};

struct ParallelConfig {
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t dp = 0;  // 0 means auto: world size / (tp * pp)
  // Expert parallelism: MoE experts split over groups of ep data-parallel ranks (core/model/moe_layer.h).
  int64_t ep = 1;
  bool sequence_parallel = false;
  Schedule schedule = Schedule::k1F1B;
  int64_t virtual_stages = 1;
  // How layers are split into pipeline stages: even (the embedding and the head ride along
  // with the first and last stage) | ends_as_layers (each of them weighs as one layer) | a list
  // of each stage's layers.
  LayerSplit pipeline_split;
  ZeroStage zero = ZeroStage::k0;
  Recompute recompute = Recompute::kNone;
  double bucket_mb = 25.0;
  bool overlap_grad_reduce = true;    // start each bucket's reduction during backward
  std::string order = "tp-cp-dp-pp";  // grid axes, innermost first (parallel/topology.h)
  double timeout_s = 600.0;           // a collective waiting longer fails the run (0: wait forever)
  // run.device=cuda: NCCL when each rank owns its GPU, or device → host → MPI → device staging
  // when ranks share one (auto picks by the ranks per GPU).
  DeviceComm device_comm = DeviceComm::kAuto;
};

struct BatchConfig {
  int64_t global = 8;  // sequences per optimizer step, all data-parallel ranks together
  int64_t micro = 8;   // sequences per micro-batch per data-parallel rank
  // Micro-batches each data-parallel replica runs per step, when they differ (replicas on GPUs
  // of unequal speed); empty: global / (dp · micro) each. Gradients are weighted by tokens.
  std::vector<int64_t> shares;
};

struct PrecisionConfig {
  Precision compute = Precision::kFp32;
  double loss_scale = 0.0;  // fp16's loss scale: 0 for dynamic (written "dynamic"), else fixed
};

struct OptimConfig {
  double lr = 3e-4;
  double min_lr = 0.0;
  LrSchedule schedule = LrSchedule::kCosine;
  int64_t warmup_steps = 0;
  int64_t decay_steps = 0;  // 0: run.steps - warmup (wsd: the final decay phase, default 20%)
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;         // 0: no clipping
  int64_t max_skipped_steps = 5;  // consecutive non-finite steps before the run stops
};

struct DataSource {
  // A dataset prefix (PREFIX.bin/.idx), an llm.c shard file, or a glob of them
  // ("data/shards/web_*.bin"; data/dataset_glob.h).
  std::string path;
  // Its share of the blend, relative to the others'; unset: in proportion to its tokens. A glob's
  // weight is shared by its datasets in proportion to their tokens.
  std::optional<double> weight;
};

struct DataConfig {
  std::vector<DataSource> train;
  std::string val;
  TokenizerKind tokenizer = TokenizerKind::kBytes;
  std::string tokenizer_dir;
};

struct CheckpointConfig {
  std::string dir;    // empty: <run.out_dir>/checkpoints
  int64_t every = 0;  // 0: only at the end of the run
  int64_t keep = 3;
  bool async = false;
  // Resume even when a dataset the checkpoint's run read has changed (train/resume_check.h).
  bool allow_data_change = false;
  ResumeMode resume = ResumeMode::kAuto;  // written auto | none | the path
  std::string resume_path;                // with ResumeMode::kPath: a step directory or a root
};

struct LoggingConfig {
  bool jsonl = true;
  bool tensorboard = true;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  ParallelConfig parallel;
  BatchConfig batch;
  PrecisionConfig precision;
  OptimConfig optim;
  DataConfig data;
  CheckpointConfig checkpoint;
  LoggingConfig logging;

  std::string source;  // where it came from, for messages: a path or "<string>"
  // Where each explicitly set key came from, by dotted key: "cfg.yaml:12:10" or
  // "override 'optim.lr=1e-3'". Filled by parse_config so that validate_config can point at the
  // line; keys absent here took their default or preset value. Not part of the config's value
  // (to_yaml ignores it).
  std::map<std::string, std::string> origins;
};

// Bounds validate_config puts on shapes and degrees, far beyond any model trained, so that the
// arithmetic on them (sizes in bytes, the divisor lists of its messages) stays within int64 and
// a moment's work.
constexpr int64_t kMaxVocabSize = 2147483647;       // token ids are int32
constexpr int64_t kMaxShapeDim = int64_t{1} << 24;  // seq_len, d_model, heads, kv_heads, ffn_dim
constexpr int64_t kMaxLayers = int64_t{1} << 16;
constexpr int64_t kMaxParallelDegree = int64_t{1} << 20;  // tp, pp, dp
constexpr int64_t kMaxBatch = int64_t{1} << 30;           // batch.global, batch.micro

// Parses YAML text; `source` names it in errors. `overrides` are "dotted.key=value" strings.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Checks the combinations that do not depend on the world size (heads by kv_heads, and so on).
// parse_config calls it; it is public so that code building a Config by hand can too.
void validate_config(const Config& config);

// The resolved config as YAML, every key present: printed at start, stored in checkpoints,
// and parse_config(to_yaml(c)) == c.
std::string to_yaml(const Config& config);

}  // namespace tessel
