#include "parallel/planner/cost_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/model/model_part.h"
#include "core/model/shard.h"
#include "parallel/pipeline_executor.h"
#include "parallel/pipeline_schedule.h"

namespace tessel {

std::string PlanLayout::describe() const {
  std::ostringstream s;
  s << "tp " << tp << " x pp " << pp << " x dp " << dp << ", micro " << micro;
  if (pp > 1) s << ", " << schedule << (virtual_stages > 1 ? " v" + std::to_string(virtual_stages) : "");
  s << ", zero " << zero << ", " << recompute << (sequence_parallel ? ", sp" : "");
  return s.str();
}

std::vector<std::pair<std::string, double>> TimeBreakdown::parts() const {
  return {{"compute", compute},          {"memory-bound kernels", memory_bound},
          {"TP communication", tp_comm}, {"pipeline bubble", pp_bubble},
          {"PP transfers", pp_comm},     {"DP communication", dp_exposed},
          {"optimizer", optimizer}};
}

int64_t stage_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split) {
  int64_t most = 0;
  for (int rank = 0; rank < pp; ++rank) {
    const ModelPart part = pp == 1 ? ModelPart::whole(model.layers)
                                   : pipeline_model_part(model.layers, pp, virtual_stages, rank, {}, split);
    int64_t n = 0;
    for (const ParamSpec& s : part_param_specs(model, part)) n += shape_numel(local_shape(s, tp));
    most = std::max(most, n);
  }
  return most;
}

namespace {

// Layers on the pipeline rank that holds the most (all its chunks together).
int most_layers_per_rank(const ModelConfig& model, const PlanLayout& L, const LayerSplit& split) {
  if (L.pp == 1) return static_cast<int>(model.layers);
  const std::vector<std::pair<int, int>> stages =
      partition_layers(static_cast<int>(model.layers), L.pp, L.virtual_stages, split);
  std::vector<int> per_rank(static_cast<size_t>(L.pp), 0);
  for (size_t s = 0; s < stages.size(); ++s)
    per_rank[s % static_cast<size_t>(L.pp)] += stages[s].second - stages[s].first;
  return *std::max_element(per_rank.begin(), per_rank.end());
}

}  // namespace

LayerSplit split_for(const Config& config, const PlanLayout& layout) {
  const bool same = layout.pp == config.parallel.pp && layout.virtual_stages == config.parallel.virtual_stages;
  return same ? config.parallel.pipeline_split : LayerSplit{};
}

int64_t model_parameters(const ModelConfig& model) {
  int64_t n = 0;
  for (const ParamSpec& s : part_param_specs(model, ModelPart::whole(model.layers))) n += shape_numel(s.shape);
  return n;
}

namespace {

// Peak micro-batch chunks alive on stage 0 for a schedule (cached: the simulation is the same
// for every model).
int peak_alive(Schedule schedule, int pp, int v, int m) {
  // GPipe runs every forward first; the other schedules' peak stops growing once the pipeline
  // is full, so a long step is simulated as one of 4·pp·v micro-batches.
  if (schedule == Schedule::kGpipe) return m;
  m = std::min(m, 4 * pp * v);
  static std::mutex mutex;
  static std::map<std::tuple<Schedule, int, int, int>, int> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(schedule, pp, v, m);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const int peak = simulate_pipeline(build_pipeline_schedule(schedule, pp, v, m), pp, v).peak_alive[0];
  cache[key] = peak;
  return peak;
}

// Seconds for a GEMM of (M x K) by (K x N): the roofline of its arithmetic intensity.
double gemm_seconds(double M, double N, double K, double bytes_per_el, const HardwareProfile& hw, double peak_tflops) {
  const double flops = 2 * M * N * K;
  const double bytes = (M * K + K * N + M * N) * bytes_per_el;
  const double compute = flops / (peak_tflops * 1e12 * hw.gemm_efficiency);
  const double memory = bytes / (hw.memory_bw_gbs * 1e9);
  return std::max(compute, memory);
}

// Ring all-reduce of `bytes` over n ranks on a link.
double all_reduce_seconds(double bytes, int n, double bw_gbs, double latency_us) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) / n * bytes / (bw_gbs * 1e9) + 2.0 * (n - 1) * latency_us * 1e-6;
}

// The model's sizes as the formulas below name them: sequence T, width C, heads H, key/value
// heads KV, head_dim D, FFN width F, vocabulary V, and Fp the FFN input projection's width (two
// projections under SwiGLU).
struct ModelSizes {
  double T, C, H, KV, D, F, V, Fp;
};
ModelSizes sizes_of(const ModelConfig& m) {
  const double F = static_cast<double>(m.ffn_dim);
  return {static_cast<double>(m.seq_len),    static_cast<double>(m.d_model),
          static_cast<double>(m.heads),      static_cast<double>(m.kv_heads),
          static_cast<double>(m.head_dim()), F,
          static_cast<double>(m.vocab_size), m.activation == Activation::kSwiGlu ? 2 * F : F};
}

}  // namespace

PlanLayout layout_of(const Config& config, int dp) {
  const ParallelConfig& p = config.parallel;
  PlanLayout layout;
  layout.tp = static_cast<int>(p.tp);
  layout.pp = static_cast<int>(p.pp);
  layout.dp = dp;
  layout.virtual_stages = static_cast<int>(p.virtual_stages);
  layout.schedule = p.schedule;
  layout.micro = config.batch.micro;
  layout.zero = p.zero;
  layout.recompute = p.recompute;
  layout.sequence_parallel = p.sequence_parallel;
  return layout;
}

namespace {

// What the memory and the time estimates of a layout both derive from the config: computed once.
struct LayoutSizes {
  ModelSizes model;
  bool fp32 = true;
  double a = 4;                  // bytes per activation and weight element
  int64_t micro_batches = 1;     // per replica and step
  double tp = 1, N = 0, Nl = 0;  // rows of a micro-batch, and this rank's rows of the residual stream
  int layers_per_stage = 0;      // on the pipeline rank that holds the most
  double params = 0;             // of the stage that holds the most, on one tensor-parallel rank
  double zero_div = 1;           // what ZeRO divides the optimizer state by
  double qkv_local = 0;          // this rank's q, k and v width (shared key/value heads held whole)
};

LayoutSizes layout_sizes(const Config& config, const PlanLayout& L) {
  const ModelConfig& m = config.model;
  LayoutSizes s;
  s.model = sizes_of(m);
  s.fp32 = config.precision.compute == Precision::kFp32;
  s.a = s.fp32 ? 4 : 2;
  s.micro_batches = config.batch.global / (L.dp * L.micro);
  s.tp = L.tp;
  s.N = static_cast<double>(L.micro) * s.model.T;
  s.Nl = L.sequence_parallel ? s.N / s.tp : s.N;
  const LayerSplit split = split_for(config, L);
  s.layers_per_stage = most_layers_per_rank(m, L, split);
  s.params = static_cast<double>(stage_parameters(m, L.tp, L.pp, L.virtual_stages, split));
  s.zero_div = L.zero >= ZeroStage::k1 ? L.dp : 1;
  s.qkv_local = (s.model.H / s.tp + 2 * std::max(s.model.KV / s.tp, 1.0)) * s.model.D;
  return s;
}

MemoryBreakdown memory_of(const Config& config, const PlanLayout& L, const LayoutSizes& s, double workspace_bytes) {
  MemoryBreakdown memory;
  const bool fp32 = s.fp32;
  const double a = s.a, tp = s.tp, N = s.N, Nl = s.Nl, params = s.params, zero_div = s.zero_div;
  const double T = s.model.T, C = s.model.C, H = s.model.H, D = s.model.D, F = s.model.F, V = s.model.V,
               Fp = s.model.Fp;
  // Memory: Tessel keeps fp32 gradients and (in bf16/fp16) fp32 master weights with the moments.
  memory.weights = params * a;
  memory.gradients = params * 4 + (L.zero == ZeroStage::k2 ? params * 4 / L.dp : 0);  // ZeRO-2 adds its shard buffer
  memory.optimizer = params * (fp32 ? 8 : 12) / zero_div;
  // One layer's activations kept for backward, per micro-batch (core/model/block.h's cache).
  const double residual = Nl * C;
  // Key/value heads fewer than the ranks are held whole by several ranks (shared): qkv_local.
  double cache = Nl * C + 2 * Nl + N * s.qkv_local + Nl * C + Nl * C + 2 * Nl + N * Fp / tp + N * F / tp;
  if (L.recompute != Recompute::kSelective) cache += N * H * D / tp + static_cast<double>(L.micro) * H / tp * T;
  const double per_layer = L.recompute == Recompute::kFull ? residual : residual + cache;
  const int alive = L.pp == 1 ? 1 : peak_alive(L.schedule, L.pp, L.virtual_stages, static_cast<int>(s.micro_batches));
  const double chunk_layers = static_cast<double>(s.layers_per_stage) / L.virtual_stages;
  // Each chunk also keeps its output (the next stage's input); full recomputation one cache.
  memory.activations =
      alive * (chunk_layers * per_layer + residual) * a + (L.recompute == Recompute::kFull ? cache * a : 0);
  // The classifier's logits chunk and the head's gradient input (last stage; taken as the larger stage).
  const double head = N * std::min(V / tp, 8192.0) * 4 + N * C * 4;
  memory.buffers = 2 * config.parallel.bucket_mb * 1048576.0 * (L.dp > 1) + 2 * Nl * C * a * (L.pp > 1) + head;
  memory.workspace = workspace_bytes;
  return memory;
}

}  // namespace

MemoryBreakdown estimate_memory(const Config& config, const PlanLayout& L, double workspace_bytes) {
  return memory_of(config, L, layout_sizes(config, L), workspace_bytes);
}

PlanEstimate estimate_layout(const Config& config, const PlanLayout& L, const HardwareProfile& hw, double margin) {
  const ModelConfig& m = config.model;
  PlanEstimate e;
  e.layout = L;
  const Precision precision = config.precision.compute;
  const double peak = hw.peak_tflops(precision);
  const int world = L.tp * L.pp * L.dp;
  const LayoutSizes s = layout_sizes(config, L);
  const bool fp32 = s.fp32;
  const double a = s.a, tp = s.tp, N = s.N, Nl = s.Nl, params = s.params, zero_div = s.zero_div;
  const double qkv_local = s.qkv_local;
  const double T = s.model.T, C = s.model.C, H = s.model.H, D = s.model.D, F = s.model.F, V = s.model.V,
               Fp = s.model.Fp;
  const int64_t micro_batches = s.micro_batches;
  const int layers_per_stage = s.layers_per_stage;

  const double workspace = fp32 && hw.name == "cpu-local" ? 0.0 : 1.0 * (1 << 30);  // cuBLAS workspace, allocator slack
  e.memory = memory_of(config, L, s, workspace);
  e.fits = e.memory.total() <= hw.memory_gb * 1e9 * (1 - margin);

  // Time of one micro-batch on one stage (its v chunks together).
  const double layers = static_cast<double>(layers_per_stage);
  auto gemms = [&](double rows) {  // forward GEMMs of one layer
    return gemm_seconds(rows, qkv_local, C, a, hw, peak) + gemm_seconds(rows, C, H * D / tp, a, hw, peak) +
           gemm_seconds(rows, Fp / tp, C, a, hw, peak) + gemm_seconds(rows, C, F / tp, a, hw, peak);
  };
  const double attention_flops =
      2.0 * static_cast<double>(L.micro) * (H / tp) * T * T * D;  // causal: half of 4·B·H·T²·D
  // Fused attention reaches less of the peak than large GEMMs (FlashAttention-2 reports 50-70% of
  // peak forward, less backward): 0.6 of the GEMM efficiency, an assumption until measured.
  const double attention = attention_flops / (peak * 1e12 * hw.gemm_efficiency * 0.6);
  const double fwd_layer = gemms(N) + attention;
  double recompute = 0;
  if (L.recompute == Recompute::kSelective) recompute = attention;
  if (L.recompute == Recompute::kFull) recompute = fwd_layer;
  const double head_fwd = gemm_seconds(N, V / tp, C, a, hw, peak);
  const double compute_mb = layers * (3 * fwd_layer + recompute) + 3 * head_fwd / L.pp;
  const double bytes_layer = (12 * Nl * C + 4 * N * Fp / tp + 2 * N * H * D / tp) * a;  // forward; backward twice
  const double memory_mb = layers * 3 * bytes_layer / (hw.memory_bw_gbs * 1e9);
  const bool tp_inside = L.tp <= hw.gpus_per_node;
  const double tp_bw = tp_inside ? hw.intra_node_bw_gbs : hw.inter_node_bw_gbs;
  const double tp_lat = tp_inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
  // 2 collectives of (N, C) per layer forward, 2 backward (all-reduce, or reduce-scatter + all-gather).
  const double tp_mb = L.tp > 1 ? layers * 4 * all_reduce_seconds(N * C * a, L.tp, tp_bw, tp_lat) : 0;
  const double t_mb = compute_mb + memory_mb + tp_mb;
  const double m_ = static_cast<double>(micro_batches);
  e.time.compute = compute_mb * m_;
  e.time.memory_bound = memory_mb * m_;
  e.time.tp_comm = tp_mb * m_;
  e.time.pp_bubble = L.pp > 1 ? t_mb * (L.pp - 1) / L.virtual_stages : 0;
  if (L.pp > 1) {
    const bool pp_inside = L.tp * L.dp * 2 <= hw.gpus_per_node;  // neighbouring stages on one node
    const double bw = pp_inside ? hw.intra_node_bw_gbs : hw.inter_node_bw_gbs;
    const double lat = pp_inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
    const double transfer = Nl * C * a / (bw * 1e9) + lat * 1e-6;
    e.time.pp_comm = 2 * (m_ * L.virtual_stages + L.pp - 1) * transfer;
  }
  // Data parallel: fp32 gradients reduced during the last micro-batch's backward.
  if (L.dp > 1) {
    const bool dp_inside = L.tp * L.dp <= hw.gpus_per_node;
    const double bw = dp_inside ? hw.intra_node_bw_gbs : hw.inter_node_bw_gbs;
    const double lat = dp_inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
    double reduce = all_reduce_seconds(params * 4, L.dp, bw, lat);
    if (L.zero == ZeroStage::k2) reduce /= 2;  // reduce-scatter only
    const double hidden = config.parallel.overlap_grad_reduce ? 2 * (compute_mb + memory_mb) / 3 : 0;
    const double gather = L.zero >= ZeroStage::k1 ? (L.dp - 1.0) / L.dp * params * a / (bw * 1e9) : 0;
    e.time.dp_exposed = std::max(0.0, reduce - hidden) + gather;
  }
  // AdamW reads and writes weights, gradients, moments (and master weights) of its shard.
  e.time.optimizer = params / zero_div * (fp32 ? 24 : 34) / (hw.memory_bw_gbs * 1e9);
  e.time.total = e.time.compute + e.time.memory_bound + e.time.tp_comm + e.time.pp_bubble + e.time.pp_comm +
                 e.time.dp_exposed + e.time.optimizer;
  const std::vector<std::pair<std::string, double>> parts = e.time.parts();
  e.time.bottleneck =
      std::max_element(parts.begin(), parts.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;

  const double n_total = static_cast<double>(model_parameters(m));
  const double tokens = static_cast<double>(config.batch.global) * T;
  const double flops = (6 * n_total + 6 * static_cast<double>(m.layers) * T * C) * tokens;
  e.tokens_per_s = tokens / e.time.total;
  e.tflops_per_gpu = flops / e.time.total / world / 1e12;
  e.mfu = e.tflops_per_gpu / peak;
  return e;
}

}  // namespace tessel
