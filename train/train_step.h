// TrainStep: one optimizer step on one rank — gradient accumulation over micro-batches (or a
// pipeline schedule over them), the data-parallel gradient reduction (overlapped with backward)
// and ZeRO, the global gradient norm, clipping, the non-finite guard, and the fused AdamW
// update.
//
// Under pipeline parallelism the step's micro-batches run through the PipelineExecutor; each
// chunk's gradients are reduced over the data-parallel group during its backward of the last
// micro-batch. A tied embedding lives on the first and the last stage: their gradients are
// summed between the two (before the data-parallel reduction, which is linear) so both copies
// take the same update and stay identical. The loss comes from the last stage and the
// gradient norm sums over every stage (the tied copy counted once).
//
// With precision.compute fp16 the loss is scaled before backward (LossScaler) and the scale is
// divided out of the gradient norm and the update; an overflow of a dynamic scale skips the
// step and halves the scale.
//
// Owns the AdamW moments (flat buffers laid out like the parameters, or this rank's ZeRO shard
// of them) and the counters a checkpoint must carry. The trainer and `tessel bench step` both
// drive training through it, so what is benchmarked is what trains. With a data-parallel group
// of one it is the single-rank reference. A model on a device (core/device_backend.h) trains in
// any layout: its moments (and ZeRO-2's gradient shard) live beside its parameters, the model
// copies each micro-batch's tokens over, the groups work on device tensors (NCCL, or staged
// through the host: train/device_comm.h), and only the loss and the gradient norm come back.
// Not thread-safe.
#pragma once

#include <functional>
#include <memory>

#include "core/checkpoint/rank_file.h"
#include "core/comm/communicator.h"
#include "core/config/config.h"
#include "core/model/transformer.h"
#include "optim/adamw.h"
#include "optim/loss_scaler.h"
#include "optim/step_guard.h"
#include "parallel/data_parallel.h"
#include "parallel/pipeline_executor.h"

namespace tessel {

// One MoE layer's routing over a step, all data-parallel ranks (metrics.jsonl, TensorBoard).
struct MoeLayerSummary {
  int64_t layer = 0;
  double aux_loss = 0;     // per micro-batch (with the coefficient)
  double max_tokens = 0;   // assignments the busiest expert computed
  double mean_tokens = 0;  // assignments per expert
  double dropped = 0, rerouted = 0;
  double bias_norm = 0;  // aux_free: the selection bias's L2 norm after the step's update
};

struct StepResult {
  double loss = 0;       // mean over the step's tokens, all data-parallel ranks
  double grad_norm = 0;  // before clipping
  double lr = 0;
  bool skipped = false;    // non-finite loss or gradient: no update was applied
  bool overflow = false;   // skipped as an fp16 overflow of the dynamic loss scale (not a non-finite step)
  double loss_scale = 1;   // the scale this step ran with (fp16; 1 otherwise)
  double comm_wait_s = 0;  // data-parallel reduction not hidden behind backward
  // model.moe: the aux loss per micro-batch summed over layers (the loss above is the language
  // model's alone), and every MoE layer of the model (all pipeline stages), in layer order.
  double aux_loss = 0;
  std::vector<MoeLayerSummary> moe;
  double moe_exchange_s = 0;  // expert parallelism: this rank's time in dispatch and combine
};

class TrainStep {
 public:
  // dp_group: this rank's data-parallel group (a SingleCommunicator for one rank). The model's
  // parameter buffers must be a multiple of bucket_multiple(dp_group.size()) long. tp_group:
  // the model's tensor-parallel group, or null; the gradient norm sums over it, counting each
  // replicated parameter once. pipeline: runs the micro-batches when pp > 1 (null: none); the
  // model is then its part.
  // ep_group and expert_dp_group (expert parallelism, when the model's store has an expert
  // region): the ranks that split the routed experts, and those that hold the same ones (the
  // data-parallel group's ranks at the same place in their expert-parallel group). The routed
  // experts then reduce and shard their optimizer state over expert_dp_group.
  TrainStep(const Config& config, Transformer& model, Communicator& dp_group, Communicator* tp_group = nullptr,
            PipelineExecutor* pipeline = nullptr, Communicator* ep_group = nullptr,
            Communicator* expert_dp_group = nullptr);

  // Fills one micro-batch, tokens and targets I32 (B, T), with global samples
  // [first, first + B).
  using BatchFn = std::function<void(uint64_t first, const Tensor& tokens, const Tensor& targets)>;

  // Runs step `step` (0-based). The step reads global samples [step·G, (step+1)·G); data-parallel
  // rank d reads the d-th contiguous 1/dp of them.
  StepResult run(int64_t step, const BatchFn& fill);

  // AdamW moments as this rank holds them: (numel of the parameter buffer) at zero 0, its
  // shard else; with an expert region, the replicated parameters' state, then the experts'. load_full_adam_state takes
  // them laid out like the parameters (from a checkpoint) and keeps this rank's part.
  void load_full_adam_state(const Tensor& m, const Tensor& v);
  // The AdamW moments this rank holds, by parameter (every element of each at zero 0, its
  // shard's parts else), pointing into the live buffers: what a checkpoint stores.
  std::vector<RankCheckpoint::StateSegment> state_segments() const { return state_segments(m_, v_); }
  // The same segments as views of other buffers laid out like the moments (host copies of a
  // device's moments).
  std::vector<RankCheckpoint::StateSegment> state_segments(const Tensor& m, const Tensor& v) const;
  const Tensor& exp_avg() const { return m_; }  // (state numel): the moments as held
  const Tensor& exp_avg_sq() const { return v_; }
  int64_t optimizer_state_bytes() const { return static_cast<int64_t>(m_.nbytes() + v_.nbytes()); }

  int64_t optimizer_steps() const { return optimizer_steps_; }
  void set_optimizer_steps(int64_t n) { optimizer_steps_ = n; }
  StepGuard& guard() { return guard_; }
  LossScaler& scaler() { return scaler_; }
  int64_t accumulation_steps() const { return accumulation_; }
  DataParallel& data_parallel() { return dp_; }
  // The routed experts' reduction (expert parallelism), or null.
  const DataParallel* expert_data_parallel() const { return edp_.get(); }
  PipelineExecutor* pipeline() { return pipeline_; }

 private:
  // Sums the tied embedding's gradient between the first and the last pipeline stage.
  void sum_tied_embedding_grads();
  // model.moe: sums the step's routing over the data-parallel ranks, moves aux_free's selection
  // biases when the update was applied, fills r.aux_loss and r.moe (over every pipeline stage)
  // and starts the next step's counts.
  void finish_moe_step(StepResult& r, bool applied);

  Config config_;
  Transformer& model_;
  DeviceBackend* device_;  // where the model's buffers live (null: the CPU)
  Communicator& group_;
  Communicator* tp_group_;
  PipelineExecutor* pipeline_;
  Tensor tied_grad_, tied_peer_;        // this stage's tied embedding gradient, and room for the other's
  int64_t tied_end_ = 0;                // gradients below it wait for sum_tied_embedding_grads
  bool last_micro_batch_ = false;       // a pipeline backward of the step's last micro-batch is running
  std::vector<bool> counted_;           // per parameter: in this rank's share of the gradient norm
  bool weighted_;                       // batch.shares: replicas of unequal shares
  DataParallel dp_;                     // the replicated parameters (all of them without an expert region)
  Communicator* ep_group_ = nullptr;    // with an expert region: the experts' split ...
  std::unique_ptr<DataParallel> edp_;   // ... and their reduction over the ranks holding the same ones
  std::vector<int64_t> micro_batches_;  // per data-parallel replica, per step
  int64_t accumulation_;                // this replica's
  int64_t step_micro_batches_;          // all replicas'
  Tensor m_, v_;
  Tensor tokens_, targets_;                    // (B, T) staging for one micro-batch (host)
  std::vector<AdamWSegment> segments_;         // what this rank updates, with each parameter's decay
  std::vector<AdamWSegment> expert_segments_;  // the same in the expert region, state after dp_'s
  int64_t optimizer_steps_ = 0;                // updates applied (skipped steps excluded): AdamW's t
  StepGuard guard_;
  LossScaler scaler_;  // fp16: the loss scale (optim/loss_scaler.h); disabled otherwise
};

// Micro-batches of uniformly random tokens from the counter-based RNG (keyed by run.seed), a
// pure function of the sample index: benchmarks train on them without a dataset.
TrainStep::BatchFn synthetic_batches(const Config& config);

// Checks that batch.global splits into dp ranks × batch.micro × accumulation steps; the
// message names the keys and the values that would work.
void check_batch_split(const BatchConfig& batch, int64_t dp);
// The micro-batches each of the dp replicas runs per step: batch.shares, or an equal split.
std::vector<int64_t> micro_batches_per_replica(const BatchConfig& batch, int64_t dp);

}  // namespace tessel
