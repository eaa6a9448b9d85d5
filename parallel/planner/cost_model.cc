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
  if (ep > 1) s << ", ep " << ep;
  return s.str();
}

std::vector<std::pair<std::string, double>> TimeBreakdown::parts() const {
  return {{"compute", compute},           {"memory-bound kernels", memory_bound},
          {"kernel overheads", overhead}, {"TP communication", tp_comm},
          {"EP all-to-all", ep_comm},     {"pipeline bubble", pp_bubble},
          {"PP transfers", pp_comm},      {"DP communication", dp_exposed},
          {"optimizer", optimizer}};
}

namespace {

int64_t local_parameters(const ModelConfig& model, const ModelPart& part, int tp) {
  int64_t n = 0;
  for (const ParamSpec& s : part_param_specs(model, part)) n += shape_numel(local_shape(s, tp));
  return n;
}

}  // namespace

namespace {

// One layer's parameters on one tensor-parallel rank, by kind: dense or MoE FFN, and whether it
// projects its own keys and values (cross-layer attention shares them). Counted on models of one
// layer, not by listing every layer of the model.
struct LayerParameters {
  int64_t dense = 0, moe = 0;  // with their own k/v projections
  int64_t routed = 0;          // of moe, the routed experts' (all of them)
  int64_t kv = 0;              // the k/v projections, which the later layers of a CLA group lack
  // Layer `layer`'s, holding 1/ep of the routed experts.
  int64_t of(const ModelConfig& model, int64_t layer, int ep) const {
    return (model.moe.is_moe_layer(layer) ? moe - routed + routed / ep : dense) -
           (model.kv_source(layer) == layer ? 0 : kv);
  }
  int64_t experts_of(const ModelConfig& model, int64_t layer, int ep) const {
    return model.moe.is_moe_layer(layer) ? routed / ep : 0;
  }
};

LayerParameters layer_parameters(const ModelConfig& model, int tp) {
  ModelConfig one = model;
  one.layers = 1;
  one.cla_share = 1;
  ModelPart layer;
  layer.chunks = {ModelChunk{0, 1, 1}};
  layer.embedding = layer.head = false;
  LayerParameters p;
  ModelConfig dense = one;
  dense.moe = MoeConfig{};
  p.dense = local_parameters(dense, layer, tp);
  if (model.moe.enabled()) {
    ModelConfig moe = one;
    moe.moe.first_dense = 0;
    moe.moe.every = 1;
    p.moe = local_parameters(moe, layer, tp);
    for (const ParamSpec& spec : part_param_specs(moe, layer))
      if (spec.expert >= 0) p.routed += shape_numel(local_shape(spec, tp));
  }
  // k and v: (C + bias) · KV·D each, a rank holding its heads (a shared head whole).
  const int64_t kv_local = std::max<int64_t>(model.kv_heads / tp, 1) * model.head_dim();
  p.kv = model.arch == Arch::kGpt2 ? 0 : 2 * (model.d_model + (model.bias ? 1 : 0)) * kv_local;
  return p;
}

}  // namespace

namespace {

// rank_parameters (experts = false) or rank_expert_parameters.
int64_t count_rank_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split,
                              int rank, int ep, bool experts) {
  // A rank's parameters are its layers' (each of its kind) plus the embedding and the output
  // layer (with its own copy of a tied embedding) where it holds them.
  const LayerParameters per = layer_parameters(model, tp);
  const ModelPart part =
      pp == 1 ? ModelPart::whole(model.layers) : pipeline_model_part(model.layers, pp, virtual_stages, rank, {}, split);
  int64_t n = 0;
  for (const ModelChunk& c : part.chunks) {
    for (int64_t i = c.first_layer; i < c.end_layer; ++i)
      n += experts ? per.experts_of(model, i, ep) : per.of(model, i, ep);
  }
  if (experts || !(part.embedding || part.head)) return n;
  ModelConfig one_layer = model;
  one_layer.layers = 1;
  one_layer.cla_share = 1;
  one_layer.moe = MoeConfig{};
  ModelPart ends;
  ends.chunks = {ModelChunk{0, 0, 1}};
  ends.embedding = part.embedding;
  ends.head = part.head;
  return n + local_parameters(one_layer, ends, tp);
}

}  // namespace

int64_t rank_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split, int rank,
                        int ep) {
  return count_rank_parameters(model, tp, pp, virtual_stages, split, rank, ep, false);
}

int64_t rank_expert_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split,
                               int rank, int ep) {
  return count_rank_parameters(model, tp, pp, virtual_stages, split, rank, ep, true);
}

int64_t stage_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split,
                         int ep) {
  int64_t most = 0;
  for (int rank = 0; rank < pp; ++rank)
    most = std::max(most, rank_parameters(model, tp, pp, virtual_stages, split, rank, ep));
  return most;
}

// Layers on each pipeline rank (all its chunks together).
std::vector<int> layers_per_rank(const ModelConfig& model, const PlanLayout& L, const LayerSplit& split) {
  if (L.pp == 1) return {static_cast<int>(model.layers)};
  const std::vector<std::pair<int, int>> stages =
      partition_layers(static_cast<int>(model.layers), L.pp, L.virtual_stages, split);
  std::vector<int> per_rank(static_cast<size_t>(L.pp), 0);
  for (size_t s = 0; s < stages.size(); ++s)
    per_rank[s % static_cast<size_t>(L.pp)] += stages[s].second - stages[s].first;
  return per_rank;
}

LayerSplit split_for(const Config& config, const PlanLayout& layout) {
  const bool same = layout.pp == config.parallel.pp && layout.virtual_stages == config.parallel.virtual_stages;
  return same ? config.parallel.pipeline_split : LayerSplit{};
}

int64_t model_parameters(const ModelConfig& model) { return rank_parameters(model, 1, 1, 1, {}, 0); }

double model_flops_per_token(const ModelConfig& model) {
  // A token passes through top_k of an MoE layer's routed experts, not all of them.
  double active = static_cast<double>(model_parameters(model));
  if (model.moe.enabled()) {
    const double projections = model.activation == Activation::kSwiGlu ? 3 : 2;
    const double expert = projections * static_cast<double>(model.d_model * model.moe.expert_width(model.ffn_dim));
    for (int64_t i = 0; i < model.layers; ++i) {
      if (model.moe.is_moe_layer(i)) active -= static_cast<double>(model.moe.experts - model.moe.top_k) * expert;
    }
  }
  return 6.0 * active + 6.0 * static_cast<double>(model.layers * model.seq_len * model.d_model);
}

namespace {

// Peak micro-batch chunks alive on pipeline rank `rank` for a schedule (cached: the simulation
// is the same for every model).
int peak_alive(Schedule schedule, int pp, int v, int m, int rank = 0) {
  // GPipe runs every forward first; the other schedules' peak stops growing once the pipeline
  // is full, so a long step is simulated as one of 4·pp·v micro-batches.
  if (schedule == Schedule::kGpipe) return m;
  m = std::min(m, 4 * pp * v);
  static std::mutex mutex;
  static std::map<std::tuple<Schedule, int, int, int>, std::vector<int>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(schedule, pp, v, m);
  auto it = cache.find(key);
  if (it == cache.end())
    it = cache.emplace(key, simulate_pipeline(build_pipeline_schedule(schedule, pp, v, m), pp, v).peak_alive).first;
  return it->second[static_cast<size_t>(rank)];
}

// GEMM kernels on a GPU compute output tiles of kTileRows x kTileCols, one tile per SM at a time
// (cuBLAS's large Ampere and Hopper tiles); kSplitK is the smallest slice of K a split-K kernel
// gives one SM.
constexpr double kTileRows = 128, kTileCols = 256, kSplitK = 256;

}  // namespace

// The tile is laid along whichever of M and N quantises better, as cuBLAS's heuristics would pick.
double gemm_seconds(double M, double N, double K, double bytes_per_el, const HardwareProfile& hw, double peak_tflops,
                    double batch) {
  double efficiency = hw.gemm_efficiency;
  if (hw.sms > 0) {
    const double sms = hw.sms;
    auto quantised = [&](double rows, double cols) {
      const double tiles = batch * std::ceil(rows / kTileRows) * std::ceil(cols / kTileCols);
      const double slices =
          tiles >= sms ? 1.0 : std::max(1.0, std::min(std::floor(sms / tiles), std::floor(K / kSplitK)));
      const double work = tiles * slices;
      const double waves = std::ceil(work / sms);
      return batch * rows * cols / (tiles * kTileRows * kTileCols) * work / (waves * sms);
    };
    efficiency *= std::max(quantised(M, N), quantised(N, M));
  }
  const double flops = 2 * batch * M * N * K;
  const double bytes = batch * (M * K + K * N + M * N) * bytes_per_el;
  const double compute = flops / (peak_tflops * 1e12 * efficiency);
  const double memory = bytes / (hw.memory_bw_gbs * 1e9 * hw.memory_efficiency);
  return std::max(compute, memory);
}

double all_reduce_seconds(double bytes, int n, double busbw_gbs, double latency_us) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) / n * bytes / (busbw_gbs * 1e9) + 2.0 * (n - 1) * latency_us * 1e-6;
}
double all_gather_seconds(double bytes, int n, double busbw_gbs, double latency_us) {  // also reduce-scatter
  if (n <= 1) return 0;
  return (n - 1.0) / n * bytes / (busbw_gbs * 1e9) + (n - 1.0) * latency_us * 1e-6;
}

namespace {

// A forward GEMM (M x K) · (K x N) and its backward: the input gradient (M x N) · (N x K) and the
// weight gradient (K x M) · (M x N).
struct GemmTimes {
  double forward = 0, backward = 0;
};
GemmTimes operator*(double k, GemmTimes g) { return {k * g.forward, k * g.backward}; }
GemmTimes linear_seconds(double M, double N, double K, double a, const HardwareProfile& hw, double peak) {
  return {gemm_seconds(M, N, K, a, hw, peak), gemm_seconds(M, K, N, a, hw, peak) + gemm_seconds(K, N, M, a, hw, peak)};
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
  layout.ep = static_cast<int>(p.ep);
  layout.moe = config.model.moe.enabled();
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
  double expert_params = 0;      // of those, the routed experts' (1/ep of them)
  double zero_div = 1;           // what ZeRO divides the optimizer state by
  double qkv_local = 0;          // this rank's q, k and v width (shared key/value heads held whole)
  // MoE: the share of layers that are MoE, and their sizes (tensor-parallel shares of F).
  double moe_share = 0, E = 0, K = 0, Fe = 0, Fep = 0, Fs = 0, Fsp = 0;
  // Cross-layer attention: the share of layers that project their own keys and values.
  double kv_share = 1;
};

// count_parameters: false when only the time of a layer is needed: no parameters or layers per
// stage (which need the layers split as the config says).
LayoutSizes layout_sizes(const Config& config, const PlanLayout& L, bool count_parameters = true) {
  const ModelConfig& m = config.model;
  LayoutSizes s;
  s.model = sizes_of(m);
  s.fp32 = config.precision.compute == Precision::kFp32;
  s.a = s.fp32 ? 4 : 2;
  s.micro_batches = config.batch.global / (L.dp * L.micro);
  s.tp = L.tp;
  s.N = static_cast<double>(L.micro) * s.model.T;
  s.Nl = L.sequence_parallel ? s.N / s.tp : s.N;
  if (count_parameters) {
    const LayerSplit split = split_for(config, L);
    const std::vector<int> layers = layers_per_rank(m, L, split);
    s.layers_per_stage = *std::max_element(layers.begin(), layers.end());
    for (int rank = 0; rank < L.pp; ++rank) {
      const double params = static_cast<double>(rank_parameters(m, L.tp, L.pp, L.virtual_stages, split, rank, L.ep));
      if (params <= s.params) continue;
      s.params = params;
      s.expert_params = static_cast<double>(rank_expert_parameters(m, L.tp, L.pp, L.virtual_stages, split, rank, L.ep));
    }
  }
  s.zero_div = L.zero >= ZeroStage::k1 ? L.dp : 1;
  s.qkv_local = (s.model.H / s.tp + 2 * std::max(s.model.KV / s.tp, 1.0)) * s.model.D;
  if (m.moe.enabled()) {
    int64_t moe_layers = 0;
    for (int64_t i = 0; i < m.layers; ++i) moe_layers += m.moe.is_moe_layer(i) ? 1 : 0;
    const double in = m.activation == Activation::kSwiGlu ? 2 : 1;
    s.moe_share = static_cast<double>(moe_layers) / static_cast<double>(m.layers);
    s.E = static_cast<double>(m.moe.experts);
    s.K = static_cast<double>(m.moe.top_k);
    s.Fe = static_cast<double>(m.moe.expert_width(m.ffn_dim)) / s.tp;
    s.Fep = in * s.Fe;
    s.Fs = static_cast<double>(m.moe.shared_width(m.ffn_dim)) / s.tp;
    s.Fsp = in * s.Fs;
  }
  s.kv_share = 1.0 / static_cast<double>(m.cla_share);
  return s;
}

// What one pipeline rank holds: its parameters (one tensor-parallel rank's), its layers and the
// micro-batch chunks alive on it at the peak.
struct RankHolding {
  double params = 0;
  int layers = 0, alive = 1;
  double expert_params = 0;  // of params, the routed experts' (1/ep of them)
};

// What ZeRO divides the routed experts' optimizer state by: the ranks holding the same experts.
// (No sharding with one holder: the runtime then runs zero 0 on them.)
double expert_zero_div(const PlanLayout& L) { return L.zero >= ZeroStage::k1 ? static_cast<double>(L.dp) / L.ep : 1; }

MemoryBreakdown memory_of(const Config& config, const PlanLayout& L, const LayoutSizes& s, const RankHolding& r,
                          double workspace_bytes) {
  MemoryBreakdown memory;
  const bool fp32 = s.fp32;
  const double a = s.a, tp = s.tp, N = s.N, Nl = s.Nl, params = r.params, zero_div = s.zero_div;
  // Routed experts under expert parallelism reduce and shard over the dp / ep ranks that hold them.
  const double experts = r.expert_params, replicated = params - experts, edp = static_cast<double>(L.dp) / L.ep;
  const double T = s.model.T, C = s.model.C, H = s.model.H, D = s.model.D, F = s.model.F, V = s.model.V,
               Fp = s.model.Fp;
  // Memory: Tessel keeps fp32 gradients and (in bf16/fp16) fp32 master weights with the moments.
  memory.weights = params * a;
  // ZeRO-2 adds its shard buffers (the experts' only when more than one rank holds them).
  memory.gradients =
      params * 4 + (L.zero == ZeroStage::k2 ? replicated * 4 / L.dp + (edp > 1 ? experts * 4 / edp : 0) : 0);
  memory.optimizer = (replicated / zero_div + experts / expert_zero_div(L)) * (fp32 ? 8 : 12);
  // One layer's activations kept for backward, per micro-batch (core/model/block.h's cache).
  const double residual = Nl * C;
  // Key/value heads fewer than the ranks are held whole by several ranks (shared): qkv_local.
  // The FFN's: dense, or an MoE layer's (core/model/moe_layer.h: router logits, the gathered
  // rows and their outputs, the experts' activations for up to ep · N · k rows received, with ep
  // the rows as received and the local copies, the shared expert's), mixed as the layers are.
  const double NK = N * s.K, R = L.ep * NK;  // assignments, and the rows a rank may receive
  const double moe_ffn = N * s.E + 2 * NK + 2 * NK * C + R * (s.Fep + s.Fe) + N * (s.Fsp + s.Fs) +
                         (L.ep > 1 ? 3 * R * C + 2 * R : 0) + (config.model.moe.shared_gate ? N * C + 3 * N : 0);
  const double dense_ffn = N * Fp / tp + N * F / tp;
  double base = Nl * C + 2 * Nl + N * s.qkv_local + Nl * C + Nl * C + 2 * Nl;
  if (L.recompute != Recompute::kSelective) base += N * H * D / tp + static_cast<double>(L.micro) * H / tp * T;
  // Per layer, the kinds mixed as the layers are; full recomputation's one cache holds both.
  const double cache = base + (1 - s.moe_share) * dense_ffn + s.moe_share * moe_ffn;
  const double one_cache = base + (s.moe_share < 1 ? dense_ffn : 0) + (s.moe_share > 0 ? moe_ffn : 0);
  // Cross-layer attention keeps each group's shared keys and values beside the residual stream.
  const double shared_kv = s.kv_share < 1 ? s.kv_share * N * 2 * std::max(s.model.KV / tp, 1.0) * D : 0;
  const double per_layer = (L.recompute == Recompute::kFull ? residual : residual + cache) + shared_kv;
  const double chunk_layers = static_cast<double>(r.layers) / L.virtual_stages;
  // Each chunk also keeps its output (the next stage's input); full recomputation one cache.
  memory.activations =
      r.alive * (chunk_layers * per_layer + residual) * a + (L.recompute == Recompute::kFull ? one_cache * a : 0);
  // The classifier's logits chunk and the head's gradient input (last stage; taken as the larger stage).
  const double head = N * std::min(V / tp, 8192.0) * 4 + N * C * 4;
  memory.buffers = 2 * config.parallel.bucket_mb * 1048576.0 * (L.dp > 1) + 2 * Nl * C * a * (L.pp > 1) + head;
  memory.workspace = workspace_bytes;
  return memory;
}

// The bound every rank's memory is under: the most parameters, the most layers and stage 0's
// peak of micro-batches alive, whichever ranks they are on.
RankHolding worst_rank(const PlanLayout& L, const LayoutSizes& s) {
  const int alive = L.pp == 1 ? 1 : peak_alive(L.schedule, L.pp, L.virtual_stages, static_cast<int>(s.micro_batches));
  return {s.params, s.layers_per_stage, alive, s.expert_params};
}

}  // namespace

MemoryBreakdown estimate_memory(const Config& config, const PlanLayout& L, double workspace_bytes) {
  const LayoutSizes s = layout_sizes(config, L);
  return memory_of(config, L, s, worst_rank(L, s), workspace_bytes);
}

namespace {

// What pipeline rank `rank` holds under `split`.
RankHolding holding_of(const Config& config, const PlanLayout& L, const LayoutSizes& s, const LayerSplit& split,
                       int rank) {
  RankHolding r;
  r.params = static_cast<double>(rank_parameters(config.model, L.tp, L.pp, L.virtual_stages, split, rank, L.ep));
  r.expert_params =
      static_cast<double>(rank_expert_parameters(config.model, L.tp, L.pp, L.virtual_stages, split, rank, L.ep));
  r.layers = layers_per_rank(config.model, L, split)[static_cast<size_t>(rank)];
  r.alive = L.pp == 1 ? 1 : peak_alive(L.schedule, L.pp, L.virtual_stages, static_cast<int>(s.micro_batches), rank);
  return r;
}

}  // namespace

MemoryBreakdown estimate_rank_memory(const Config& config, const PlanLayout& L, int rank, double workspace_bytes) {
  const LayoutSizes s = layout_sizes(config, L);
  return memory_of(config, L, s, holding_of(config, L, s, split_for(config, L), rank), workspace_bytes);
}

namespace {

// One layer's time on one micro-batch, forward and backward, split as TimeBreakdown splits a
// step; `recompute` is what recomputation reruns before the backward.
struct LayerTime {
  double compute = 0, memory_bound = 0, overhead = 0, tp_comm = 0, ep_comm = 0;
  double total() const { return compute + memory_bound + overhead + tp_comm + ep_comm; }
  LayerTime& operator+=(const LayerTime& o) {
    compute += o.compute, memory_bound += o.memory_bound, overhead += o.overhead, tp_comm += o.tp_comm;
    ep_comm += o.ep_comm;
    return *this;
  }
};
LayerTime operator*(double k, LayerTime t) {
  t.compute *= k, t.memory_bound *= k, t.overhead *= k, t.tp_comm *= k, t.ep_comm *= k;
  return t;
}

struct LayerCost {
  LayerTime forward, backward, recompute;
};

// Kernels of one layer's forward (norms, GEMMs, attention, activation, residuals, RoPE) and
// backward; unfused attention adds its batched GEMMs, softmax and dropout.
constexpr double kLayerKernelsForward = 12, kLayerKernelsBackward = 24, kUnfusedAttentionKernels = 4;

// An MoE FFN's forward (or backward) on one micro-batch: the router; the routed experts as one
// GEMM per expert and projection over its rows (N·k/E per expert when balanced, or with ep
// its E/ep experts over the ep·N·k/E rows the group sends each); the shared expert; the
// permutations and activations by their bytes; a few kernels per expert; with ep, the dispatch
// and combine all-to-alls of (ep−1)/ep of the rows, inside a node when tp · ep GPUs fit in one.
LayerTime moe_cost(const PlanLayout& L, const LayoutSizes& s, const HardwareProfile& hw, double peak, bool backward) {
  const double a = s.a, N = s.N, C = s.model.C, ep = L.ep, NK = N * s.K;
  const double rows = ep * NK / s.E, experts = s.E / ep;
  const auto pick = [&](const GemmTimes& g) { return backward ? g.backward : g.forward; };
  LayerTime t;
  t.compute =
      pick(linear_seconds(N, s.E, C, a, hw, peak)) +
      experts * (pick(linear_seconds(rows, s.Fep, C, a, hw, peak)) + pick(linear_seconds(rows, C, s.Fe, a, hw, peak)));
  if (s.Fs > 0) {
    t.compute += pick(linear_seconds(N, s.Fsp, C, a, hw, peak)) + pick(linear_seconds(N, C, s.Fs, a, hw, peak));
  }
  const double hbm = hw.memory_bw_gbs * 1e9 * hw.memory_efficiency;
  const double permuted = (ep > 1 ? 8 : 4) * NK * C, activation = ep * NK * (s.Fep + s.Fe) + N * (s.Fsp + s.Fs);
  t.memory_bound = (backward ? 2 : 1) * (permuted + activation) * a / hbm;
  t.overhead = (backward ? 2 : 1) * (4 * experts + 8) * hw.kernel_overhead_us * 1e-6;
  if (L.ep > 1) {
    const bool inside = L.tp * L.ep <= hw.gpus_per_node;
    const double busbw = inside ? hw.intra_node_busbw_gbs : hw.inter_node_busbw_gbs;
    const double latency = inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
    const double one = NK * C * a * (ep - 1) / ep / (busbw * 1e9) + latency * 1e-6;
    t.ep_comm = 2 * one;  // dispatch and combine (backward: the gradients both ways)
  }
  return t;
}

LayerCost layer_cost(const Config& config, const PlanLayout& L, const LayoutSizes& s, const HardwareProfile& hw,
                     const Framework& framework) {
  const ModelConfig& m = config.model;
  const double peak = hw.peak_tflops(config.precision.compute);
  const double a = s.a, tp = s.tp, N = s.N, Nl = s.Nl, b = static_cast<double>(L.micro);
  const double T = s.model.T, C = s.model.C, H = s.model.H, D = s.model.D, F = s.model.F, Fp = s.model.Fp;
  const double hbm = hw.memory_bw_gbs * 1e9 * hw.memory_efficiency;
  LayerCost cost;
  // The attention projections: q, k, v (k and v only on the layers of a CLA group that project
  // them); the attention output.
  // One fused GEMM when every layer projects its keys and values; with CLA, q and the k/v of a
  // group's first layer apart.
  const double kv_width = s.kv_share < 1 ? 2 * std::max(s.model.KV / tp, 1.0) * D : 0;
  std::vector<GemmTimes> projections = {linear_seconds(N, s.qkv_local - kv_width, C, a, hw, peak),
                                        linear_seconds(N, C, H * D / tp, a, hw, peak)};
  if (kv_width > 0) projections.push_back(s.kv_share * linear_seconds(N, kv_width, C, a, hw, peak));
  for (const GemmTimes& g : projections) {
    cost.forward.compute += g.forward;
    cost.backward.compute += g.backward;
  }
  // The FFN: dense (input gate | up, output), or MoE, weighted by the share of each kind.
  for (const GemmTimes& g : {linear_seconds(N, Fp / tp, C, a, hw, peak), linear_seconds(N, C, F / tp, a, hw, peak)}) {
    cost.forward.compute += (1 - s.moe_share) * g.forward;
    cost.backward.compute += (1 - s.moe_share) * g.backward;
  }
  if (s.moe_share > 0) {
    const LayerTime moe_fwd = moe_cost(L, s, hw, peak, false), moe_bwd = moe_cost(L, s, hw, peak, true);
    cost.forward += s.moe_share * moe_fwd;
    cost.backward += s.moe_share * moe_bwd;
  }
  // Attention core, per (sequence, head) pair of this rank.
  const double heads = b * H / tp;
  LayerTime attention_fwd, attention_bwd;
  if (framework.attention == AttentionImpl::kFused) {
    // Causal, fused: 4·T²·D FLOPs per head halved by the mask; backward 2.5x forward (five
    // matmuls to two), at the profile's attention_efficiency of the GEMM rate (FlashAttention-2
    // reports 50-73% of the A100's peak forward, less backward: 0.6 unless measured).
    const double flops = 2.0 * heads * T * T * D;
    attention_fwd.compute = flops / (peak * 1e12 * hw.gemm_efficiency * hw.attention_efficiency);
    attention_bwd.compute = 2.5 * attention_fwd.compute;
  } else {
    // Scores Q·Kᵀ and output P·V as batched GEMMs over the whole T x T (the mask applied after);
    // backward: dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q. Between them the scaled, masked
    // softmax and dropout read and write the T x T matrix: forward 2 + 3 passes of a bytes and a
    // one-byte mask, backward 3 + 2.
    attention_fwd.compute = gemm_seconds(T, T, D, a, hw, peak, heads) + gemm_seconds(T, D, T, a, hw, peak, heads);
    attention_bwd.compute = gemm_seconds(T, T, D, a, hw, peak, heads) + 3 * gemm_seconds(T, D, T, a, hw, peak, heads);
    // The context is then copied from (head, position) to (position, head) order: read and
    // written once each way.
    const double scores = heads * T * T;
    attention_fwd.memory_bound = ((5 * a + 1) * scores + 2 * N * H * D / tp * a) / hbm;
    attention_bwd.memory_bound = ((5 * a + 1) * scores + 2 * N * H * D / tp * a) / hbm;
    attention_fwd.overhead = kUnfusedAttentionKernels * hw.kernel_overhead_us * 1e-6;
    attention_bwd.overhead = 2 * attention_fwd.overhead;
  }
  cost.forward += attention_fwd;
  cost.backward += attention_bwd;
  // Memory-bound kernels by the bytes they move: two norms (read, write), two residual adds
  // (two reads, a write), the activation (reads the FFN input, writes its output), RoPE (q and
  // k in place); backward reads the gradient and the saved input and writes a gradient: twice.
  double elements = 4 * Nl * C + 6 * Nl * C + (1 - s.moe_share) * N * (Fp + F) / tp;
  if (m.position == Position::kRope) elements += 2 * N * (s.qkv_local - std::max(s.model.KV / tp, 1.0) * D);
  cost.forward.memory_bound += elements * a / hbm;
  cost.backward.memory_bound += 2 * elements * a / hbm;
  if (framework.hidden_dropout) {  // two masks of Nl·C bytes: written forward, read backward
    cost.forward.memory_bound += 2 * Nl * C / hbm;
    cost.backward.memory_bound += 2 * Nl * C / hbm;
  }
  cost.forward.overhead += kLayerKernelsForward * hw.kernel_overhead_us * 1e-6;
  cost.backward.overhead += kLayerKernelsBackward * hw.kernel_overhead_us * 1e-6;
  // Tensor parallel: per layer forward two all-reduces of (N, C), or with sequence parallelism
  // two all-gathers and two reduce-scatters; backward two all-reduces, or two reduce-scatters
  // and four all-gathers (the gradients, and the inputs gathered again for the weight
  // gradients: core/model/block.cc). Not overlapped with compute.
  if (L.tp > 1) {
    const bool inside = L.tp <= hw.gpus_per_node;
    const double busbw = inside ? hw.intra_node_busbw_gbs : hw.inter_node_busbw_gbs;
    const double latency = inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
    const double bytes = N * C * a;
    if (L.sequence_parallel) {
      const double one = all_gather_seconds(bytes, L.tp, busbw, latency);
      cost.forward.tp_comm = 4 * one;
      cost.backward.tp_comm = 6 * one;
    } else {
      const double one = all_reduce_seconds(bytes, L.tp, busbw, latency);
      cost.forward.tp_comm = 2 * one;
      cost.backward.tp_comm = 2 * one;
    }
  }
  if (L.recompute == Recompute::kSelective) cost.recompute = attention_fwd;
  if (L.recompute == Recompute::kFull) cost.recompute = cost.forward;
  return cost;
}

// The output layer (last stage): the logits GEMM forward and backward, and the loss's passes
// over the fp32 logits (softmax, its gradient).
LayerTime head_cost(const Config& config, const LayoutSizes& s, const HardwareProfile& hw) {
  const double peak = hw.peak_tflops(config.precision.compute);
  const GemmTimes g = linear_seconds(s.N, s.model.V / s.tp, s.model.C, s.a, hw, peak);
  LayerTime t;
  t.compute = g.forward + g.backward;
  t.memory_bound = 4 * s.N * s.model.V / s.tp * 4 / (hw.memory_bw_gbs * 1e9 * hw.memory_efficiency);
  t.overhead = 8 * hw.kernel_overhead_us * 1e-6;
  return t;
}

}  // namespace

double rank_micro_batch_seconds(const Config& config, const PlanLayout& L, const HardwareProfile& hw, int layers,
                                bool head, const Framework& framework) {
  const LayoutSizes s = layout_sizes(config, L, /*count_parameters=*/false);
  const LayerCost c = layer_cost(config, L, s, hw, framework);
  double t = layers * (c.forward.total() + c.backward.total() + c.recompute.total());
  if (head) t += head_cost(config, s, hw).total();
  return t;
}

double device_workspace_bytes(const Config& config, const HardwareProfile& hw) {
  return config.precision.compute == Precision::kFp32 && hw.name == "cpu-local" ? 0.0 : 1.0 * (1 << 30);
}

Link stage_link(const PlanLayout& L, const HardwareProfile& hw) {
  const bool inside = L.tp * L.dp * 2 <= hw.gpus_per_node;  // neighbouring stages on one node
  return inside ? Link{hw.intra_node_bw_gbs, hw.intra_node_latency_us}
                : Link{hw.inter_node_bw_gbs, hw.inter_node_latency_us};
}

Placement placement_on(const PlanLayout& L, const HardwareProfile& hw) {
  Placement p;
  p.rank.assign(static_cast<size_t>(L.pp), &hw);
  p.next.assign(static_cast<size_t>(std::max(0, L.pp - 1)), stage_link(L, hw));
  return p;
}

PlanEstimate estimate_layout(const Config& config, const PlanLayout& L, const HardwareProfile& hw, double margin,
                             const Framework& framework) {
  return estimate_placed(config, L, placement_on(L, hw), margin, framework);
}

PlanEstimate estimate_placed(const Config& config, const PlanLayout& L, const Placement& place, double margin,
                             const Framework& framework) {
  TESSEL_CHECK(place.rank.size() == static_cast<size_t>(L.pp) && place.next.size() + 1 == place.rank.size())
      << "estimate_placed: a placement of " << place.rank.size() << " ranks and " << place.next.size()
      << " links for pp " << L.pp;
  const ModelConfig& m = config.model;
  PlanEstimate e;
  e.layout = L;
  const int world = L.tp * L.pp * L.dp;
  const LayoutSizes s = layout_sizes(config, L);
  const double a = s.a, Nl = s.Nl, C = s.model.C;
  const LayerSplit split = split_for(config, L);
  const std::vector<int> layers = layers_per_rank(m, L, split);
  const bool one_kind = std::all_of(place.rank.begin(), place.rank.end(),
                                    [&](const HardwareProfile* h) { return h == place.rank.front(); });
  std::vector<RankHolding> held(static_cast<size_t>(L.pp));  // each rank's, on several kinds of GPU

  // Memory: on one kind of GPU, the bound every rank is under; on several, each rank against its
  // own GPU's memory, the one nearest its limit reported.
  if (one_kind) {
    const HardwareProfile& hw = *place.rank.front();
    e.memory = memory_of(config, L, s, worst_rank(L, s), device_workspace_bytes(config, hw));
    e.fits = e.memory.total() <= hw.memory_gb * 1e9 * (1 - margin);
  } else {
    double worst_share = -1;
    e.fits = true;
    for (int r = 0; r < L.pp; ++r) {
      const HardwareProfile& hw = *place.rank[static_cast<size_t>(r)];
      held[static_cast<size_t>(r)] = holding_of(config, L, s, split, r);
      const MemoryBreakdown mem =
          memory_of(config, L, s, held[static_cast<size_t>(r)], device_workspace_bytes(config, hw));
      const double share = mem.total() / (hw.memory_gb * 1e9);
      e.fits = e.fits && share <= 1 - margin;
      if (share > worst_share) worst_share = share, e.memory = mem;
    }
  }

  // One micro-batch on each pipeline rank (all its chunks): its layers, and the output layer on
  // the last, each on its rank's GPU. The slowest rank sets the pace of the steady state; the
  // fill and drain pass through every other rank once, v chunks at a time.
  std::vector<LayerTime> rank(layers.size());
  std::vector<LayerCost> layer(layers.size());
  for (size_t r = 0; r < layers.size(); ++r) {
    const HardwareProfile& hw = *place.rank[r];
    layer[r] = layer_cost(config, L, s, hw, framework);
    LayerTime per_layer = layer[r].forward;
    per_layer += layer[r].backward;
    per_layer += layer[r].recompute;
    rank[r] = static_cast<double>(layers[r]) * per_layer;
    if (r + 1 == layers.size()) rank[r] += head_cost(config, s, hw);
  }
  const auto slowest = std::max_element(rank.begin(), rank.end(),
                                        [](const LayerTime& x, const LayerTime& y) { return x.total() < y.total(); });
  double others = 0;
  for (const LayerTime& t : rank) others += t.total();
  others -= slowest->total();

  const double m_ = static_cast<double>(s.micro_batches);
  e.time.compute = slowest->compute * m_;
  e.time.memory_bound = slowest->memory_bound * m_;
  e.time.overhead = slowest->overhead * m_;
  e.time.tp_comm = slowest->tp_comm * m_;
  e.time.ep_comm = slowest->ep_comm * m_;
  e.time.pp_bubble = others / L.virtual_stages;
  // Activations and gradients between stages, at the pace of the slowest link.
  double transfer = 0;
  for (size_t r = 0; r + 1 < place.rank.size(); ++r) {
    const Link& link = place.next[r];
    const HardwareProfile& hw = *place.rank[r];
    double t = Nl * C * a / (link.bw_gbs * 1e9) + link.latency_us * 1e-6;
    if (framework.pp_scatter_gather && !L.sequence_parallel && L.tp > 1)  // 1/tp sent, then gathered in the node
      t = Nl * C * a / L.tp / (link.bw_gbs * 1e9) + link.latency_us * 1e-6 +
          all_gather_seconds(Nl * C * a, L.tp, hw.intra_node_busbw_gbs, hw.intra_node_latency_us);
    transfer = std::max(transfer, t);
  }
  e.time.pp_comm = 2 * (m_ * L.virtual_stages + L.pp - 1) * transfer;
  // Per pipeline rank, on its own GPUs: fp32 gradients reduced over the data-parallel replicas
  // during the last micro-batch's backward (ZeRO's all-gather after), and the optimizer step
  // (AdamW reads and writes weights, gradients, moments and master weights of its shard).
  const double optimizer_bytes = framework.optimizer_bytes_per_param > 0 ? framework.optimizer_bytes_per_param
                                 : s.fp32                                ? 24
                                                                         : 34;
  for (int r = 0; r < L.pp; ++r) {
    const HardwareProfile& hw = *place.rank[static_cast<size_t>(r)];
    const double params = one_kind ? s.params : held[static_cast<size_t>(r)].params;
    // Routed experts under expert parallelism: reduced over the dp / ep ranks holding them, after
    // backward (not overlapped), and sharded over those by ZeRO.
    const double experts = one_kind ? s.expert_params : held[static_cast<size_t>(r)].expert_params;
    const double replicated = params - experts;
    const int edp = L.dp / L.ep;
    if (L.dp > 1) {
      const bool inside = L.tp * L.dp <= hw.gpus_per_node;
      const double busbw = inside ? hw.intra_node_busbw_gbs : hw.inter_node_busbw_gbs;
      const double lat = inside ? hw.intra_node_latency_us : hw.inter_node_latency_us;
      const double half = L.zero == ZeroStage::k2 ? 0.5 : 1;  // reduce-scatter only
      const double reduce = all_reduce_seconds(replicated * 4, L.dp, busbw, lat) * half;
      const double expert_reduce = edp > 1 ? all_reduce_seconds(experts * 4, edp, busbw, lat) * half : 0;
      const double backward = layer[static_cast<size_t>(r)].backward.total();
      const double hidden =
          config.parallel.overlap_grad_reduce ? backward * (one_kind ? s.layers_per_stage : layers[r]) : 0;
      double gather = 0;
      if (L.zero >= ZeroStage::k1) {
        gather = all_gather_seconds(replicated * a, L.dp, busbw, lat) +
                 (edp > 1 ? all_gather_seconds(experts * a, edp, busbw, lat) : 0);
      }
      e.time.dp_exposed = std::max(e.time.dp_exposed, std::max(0.0, reduce - hidden) + expert_reduce + gather);
    }
    const double updated = replicated / s.zero_div + experts / expert_zero_div(L);
    e.time.optimizer =
        std::max(e.time.optimizer, updated * optimizer_bytes / (hw.memory_bw_gbs * 1e9 * hw.memory_efficiency));
  }
  double total = 0;
  for (const auto& [name, seconds] : e.time.parts()) total += seconds;
  e.time.total = total;
  const std::vector<std::pair<std::string, double>> parts = e.time.parts();
  e.time.bottleneck =
      std::max_element(parts.begin(), parts.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;

  double peak = 0;  // the ranks' mean
  for (const HardwareProfile* hw : place.rank) peak += hw->peak_tflops(config.precision.compute) / L.pp;
  const double tokens = static_cast<double>(config.batch.global) * s.model.T;
  const double flops = model_flops_per_token(m) * tokens;
  e.tokens_per_s = tokens / e.time.total;
  e.tflops_per_gpu = flops / e.time.total / world / 1e12;
  e.mfu = e.tflops_per_gpu / peak;
  return e;
}

}  // namespace tessel
