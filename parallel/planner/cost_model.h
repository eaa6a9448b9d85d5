// The planner's cost model: memory per GPU and time per step of one training layout of a model
// on a hardware profile (or, for a mixed cluster, each pipeline rank on its own), from first
// principles (docs/planner.md has the equations, and tests/planner/ the published runs it is
// checked against).
//
// Memory follows what Tessel allocates: weights, gradients and AdamW state (sharded by ZeRO as
// parallel/data_parallel.h shards them), each block's activation cache for the micro-batches a
// pipeline schedule keeps alive (from the schedule itself, parallel/pipeline_schedule.h), with
// tensor and sequence parallelism and recomputation, the classifier's workspace, communication
// buffers and a fixed workspace. Time adds, per micro-batch and pipeline rank, each GEMM forward
// and backward (a roofline of its shape, with tile and wave quantisation on the profile's SMs),
// attention as the framework implements it (framework.h), memory-bound kernels by bytes moved,
// per-kernel overheads, recomputation and tensor-parallel collectives at NCCL's bus bandwidth;
// the slowest rank sets the pipeline's pace, the others add the bubble, the links the
// transfers; then the data-parallel reduction not hidden behind the last micro-batch's backward,
// ZeRO's parameter all-gather and the optimizer. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/config/values.h"
#include "parallel/planner/framework.h"
#include "parallel/planner/hardware.h"

namespace tessel {

struct PlanLayout {
  int tp = 1, pp = 1, dp = 1, virtual_stages = 1;
  Schedule schedule = Schedule::k1F1B;
  int64_t micro = 1;
  ZeroStage zero = ZeroStage::k0;
  Recompute recompute = Recompute::kNone;
  bool sequence_parallel = false;
  int ep = 1;                    // expert parallelism: MoE experts' compute split over ep data-parallel ranks
  bool moe = false;              // the model has MoE layers (its --set line then names ep)
  std::string describe() const;  // "tp 8 x pp 4 x dp 2, micro 1, 1f1b, zero 1, selective, sp"
};

struct MemoryBreakdown {  // bytes per GPU, on the stage that needs the most
  double weights = 0, gradients = 0, optimizer = 0, activations = 0, buffers = 0, workspace = 0;
  double total() const { return weights + gradients + optimizer + activations + buffers + workspace; }
};

struct TimeBreakdown {      // seconds per step
  double compute = 0;       // GEMMs and attention, forward, backward and recomputation
  double memory_bound = 0;  // norms, activations, residuals, RoPE, the loss (and unfused attention's softmax)
  double overhead = 0;      // per-kernel launch gaps and ramps
  double tp_comm = 0;       // tensor-parallel collectives (not overlapped)
  double ep_comm = 0;       // MoE dispatch and combine all-to-alls (expert parallelism)
  double pp_bubble = 0;     // pipeline fill and drain
  double pp_comm = 0;       // activations and gradients between stages
  double dp_exposed = 0;    // gradient reduction not hidden behind backward, ZeRO's all-gather
  double optimizer = 0;
  double total = 0;
  std::string bottleneck;  // the largest part

  // The parts above by name ("compute", "memory-bound kernels", "kernel overheads", "TP
  // communication", "EP all-to-all", "pipeline bubble", "PP transfers", "DP communication",
  // "optimizer"), in that order.
  std::vector<std::pair<std::string, double>> parts() const;
};

struct PlanEstimate {
  PlanLayout layout;
  MemoryBreakdown memory;
  TimeBreakdown time;
  double tokens_per_s = 0, tflops_per_gpu = 0, mfu = 0;
  bool fits = false;  // memory within the GPU's, with the safety margin
};

// The layout `config.parallel` and batch.micro describe, with `dp` data-parallel replicas.
PlanLayout layout_of(const Config& config, int dp);

// The memory part of the estimate: bytes per rank on the stage that needs the most, with
// `workspace_bytes` for the device's workspace and the allocator's slack (0 on the CPU).
MemoryBreakdown estimate_memory(const Config& config, const PlanLayout& layout, double workspace_bytes);

// The memory of pipeline rank `rank` alone: its parameters, its layers and the micro-batches
// alive on it (estimate_memory bounds every rank at once).
MemoryBreakdown estimate_rank_memory(const Config& config, const PlanLayout& layout, int rank, double workspace_bytes);
// The device's workspace and allocator slack a rank needs besides the model (1 GiB on GPUs).
double device_workspace_bytes(const Config& config, const HardwareProfile& hw);

// Seconds of one micro-batch's forward and backward (with recomputation) through `layers` layers
// of the layout on `hw`, and the output layer when `head`: a pipeline rank's share of a step.
double rank_micro_batch_seconds(const Config& config, const PlanLayout& layout, const HardwareProfile& hw, int layers,
                                bool head, const Framework& framework = {});
// Ring collectives over n ranks of `bytes` (the whole tensor) at a link's bus bandwidth.
double all_reduce_seconds(double bytes, int n, double busbw_gbs, double latency_us);
double all_gather_seconds(double bytes, int n, double busbw_gbs, double latency_us);  // and reduce-scatter

// Where a layout's pipeline ranks run: each rank's GPU (all its tensor- and data-parallel ranks
// on one kind), and the link each rank's activations cross to the next.
struct Link {
  double bw_gbs = 0, latency_us = 0;  // per GPU, each direction
};
struct Placement {
  std::vector<const HardwareProfile*> rank;  // pp entries, not owned
  std::vector<Link> next;                    // pp - 1 entries: rank r to r + 1
};
// The link between two neighbouring stages of one kind of GPU: within a node when two stages'
// GPUs (tp · dp each) fit in one, else between nodes.
Link stage_link(const PlanLayout& layout, const HardwareProfile& hw);
// Every rank on `hw`, each stage linked to the next by stage_link.
Placement placement_on(const PlanLayout& layout, const HardwareProfile& hw);
// The estimate of a layout whose pipeline ranks may run on different GPUs (a mixed cluster):
// each rank's time on its own GPU, the slowest setting the pace; each rank's memory against its
// own GPU's. estimate_layout is this on one kind.
PlanEstimate estimate_placed(const Config& config, const PlanLayout& layout, const Placement& placement,
                             double margin = 0.1, const Framework& framework = {});

// The estimate of `layout` for config.model, batch.global and precision.compute on `gpus` GPUs
// (= tp · pp · dp). margin: the share of GPU memory kept free.
PlanEstimate estimate_layout(const Config& config, const PlanLayout& layout, const HardwareProfile& hw,
                             double margin = 0.1, const Framework& framework = {});

// Parameters of pipeline rank `rank` (all its chunks), on one tensor-parallel rank, its layers
// cut as `split` says (parallel.pipeline_split); with expert parallelism (ep > 1) its 1/ep of
// each MoE layer's routed experts.
int64_t rank_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split, int rank,
                        int ep = 1);
// Of those, the routed experts' (0 for a dense model).
int64_t rank_expert_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split,
                               int rank, int ep = 1);
// Layers on each pipeline rank (all its chunks together).
std::vector<int> layers_per_rank(const ModelConfig& model, const PlanLayout& layout, const LayerSplit& split);
// Parameters of the stage that holds the most, on one tensor-parallel rank, its layers cut as
// `split` says (parallel.pipeline_split).
int64_t stage_parameters(const ModelConfig& model, int tp, int pp, int virtual_stages, const LayerSplit& split = {},
                         int ep = 1);
// The config's parallel.pipeline_split where the layout has its pp and virtual_stages; an even
// split for any other layout (a plan's candidates).
LayerSplit split_for(const Config& config, const PlanLayout& layout);
// Parameters of the whole model (tied embeddings once), as `tessel train` counts them.
int64_t model_parameters(const ModelConfig& model);
// Model FLOPs per token, 6·N_params + 6·L·T·C, as `tessel train` reports them (N_params: the
// parameters a token passes through, top_k of an MoE layer's routed experts).
double model_flops_per_token(const ModelConfig& model);

// Seconds for `batch` GEMMs of (M x K) by (K x N) with elements of `bytes_per_el` bytes: the
// roofline of the shape against peak_tflops · gemm_efficiency and the memory bandwidth. On a
// profile with its SM count, output tiles of 128 x 256 run one per SM at a time: the padding of
// the last tile (tile quantisation) and the idle SMs of the last wave (wave quantisation) cost
// their share; fewer tiles than SMs split K to fill them, as far as K allows.
double gemm_seconds(double M, double N, double K, double bytes_per_el, const HardwareProfile& hw, double peak_tflops,
                    double batch = 1);

// The shortest step, in seconds, whose time the model can predict: below it, what the model
// leaves out (kernel launches, thread start-up, framework and MPI latencies) dominates. `tessel
// tune` records no calibration from steps this short and `tessel plan` warns of predictions
// under it.
constexpr double kShortestPredictableStep = 0.1;

}  // namespace tessel
