// TrainStep: one optimizer step on one rank — gradient accumulation over micro-batches, the
// global gradient norm, clipping, the non-finite guard, and the fused AdamW update.
//
// Owns the AdamW moments (flat buffers twinned with the ParameterStore) and the counters a
// checkpoint must carry. The trainer and `tessel bench step` both drive training through it,
// so what is benchmarked is what trains. Not thread-safe.
#pragma once

#include <functional>

#include "core/config.h"
#include "core/model/transformer.h"
#include "optim/adamw.h"
#include "optim/step_guard.h"

namespace tessel {

struct StepResult {
  double loss = 0;       // mean over the step's tokens
  double grad_norm = 0;  // before clipping
  double lr = 0;
  bool skipped = false;  // non-finite loss or gradient: no update was applied
};

class TrainStep {
 public:
  TrainStep(const Config& config, Transformer& model);

  // Fills one micro-batch, tokens and targets I32 (B, T), with global samples
  // [first, first + B).
  using BatchFn = std::function<void(uint64_t first, const Tensor& tokens, const Tensor& targets)>;

  // Runs step `step` (0-based), which reads global samples [step·G, (step+1)·G).
  StepResult run(int64_t step, const BatchFn& fill);

  Tensor& adam_m() { return m_; }  // (numel of the parameter buffer)
  Tensor& adam_v() { return v_; }
  int64_t optimizer_steps() const { return optimizer_steps_; }
  void set_optimizer_steps(int64_t n) { optimizer_steps_ = n; }
  StepGuard& guard() { return guard_; }
  int64_t accumulation_steps() const { return accumulation_; }

 private:
  Config config_;
  Transformer& model_;
  int64_t accumulation_;
  Tensor m_, v_;
  Tensor tokens_, targets_;  // (B, T) staging for one micro-batch
  std::vector<AdamWSegment> segments_;  // one per parameter, with its weight decay
  int64_t optimizer_steps_ = 0;  // updates applied (skipped steps excluded): AdamW's t
  StepGuard guard_;
};

}  // namespace tessel
