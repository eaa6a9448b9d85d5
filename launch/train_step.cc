#include "launch/train_step.h"

#include <cmath>

#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"

namespace tessel {

TrainStep::TrainStep(const Config& config, Transformer& model)
    : config_(config),
      model_(model),
      accumulation_(config.batch.global / config.batch.micro),
      guard_(config.optim.max_skipped_steps) {
  const int64_t n = model.parameters().numel();
  m_ = Tensor::zeros({n}, DType::F32);
  v_ = Tensor::zeros({n}, DType::F32);
  const int64_t B = model.micro_batch(), T = model.seq_len();
  tokens_ = Tensor::empty({B, T}, DType::I32);
  targets_ = Tensor::empty({B, T}, DType::I32);
  for (const ParamEntry& e : model.parameters().entries()) {
    segments_.push_back({e.offset, e.numel, e.spec.weight_decay ? config.optim.weight_decay : 0.0});
  }
}

StepResult TrainStep::run(int64_t step, const BatchFn& fill) {
  ParameterStore& store = model_.parameters();
  const int64_t B = model_.micro_batch();
  const uint64_t first = static_cast<uint64_t>(step) * static_cast<uint64_t>(config_.batch.global);
  store.zero_grads();
  double loss = 0;
  for (int64_t a = 0; a < accumulation_; ++a) {
    fill(first + static_cast<uint64_t>(a * B), tokens_, targets_);
    loss += model_.forward_backward(tokens_, targets_, 1.0f / static_cast<float>(accumulation_));
  }
  StepResult r;
  r.loss = loss / static_cast<double>(accumulation_);
  r.grad_norm = std::sqrt(sum_of_squares(store.grads().data<float>(), store.numel()));
  r.lr = learning_rate(config_.optim, config_.run.steps, step);
  if (guard_.should_skip(r.loss, r.grad_norm, step)) {
    r.skipped = true;
    return r;
  }
  ++optimizer_steps_;
  AdamWStep s;
  s.lr = r.lr;
  s.beta1 = config_.optim.beta1;
  s.beta2 = config_.optim.beta2;
  s.eps = config_.optim.eps;
  s.step = optimizer_steps_;
  s.grad_scale = config_.optim.grad_clip > 0 ? clip_scale(r.grad_norm, config_.optim.grad_clip) : 1.0;
  adamw_update_segments(store.params().data<float>(), store.grads().data<float>(), m_.data<float>(),
                        v_.data<float>(), segments_, s);
  return r;
}

}  // namespace tessel
