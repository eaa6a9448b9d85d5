#include "launch/train_step.h"

#include <cmath>

#include "core/error.h"
#include "core/model/shard.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"

namespace tessel {

void check_batch_split(const BatchConfig& batch, int64_t dp) {
  TESSEL_CHECK(batch.global % (dp * batch.micro) == 0)
      << "batch.global (" << batch.global << ") must be divisible by dp (" << dp << ") x batch.micro ("
      << batch.micro << ") = " << dp * batch.micro << ": each data-parallel rank runs whole micro-batches; "
      << "hint: batch.global=" << std::max<int64_t>(1, batch.global / (dp * batch.micro)) * dp * batch.micro
      << ", or a batch.micro that divides " << batch.global / dp;
}

TrainStep::TrainStep(const Config& config, Transformer& model, Communicator& dp_group, Communicator* tp_group)
    : config_(config),
      model_(model),
      group_(dp_group),
      tp_group_(tp_group != nullptr && tp_group->size() > 1 ? tp_group : nullptr),
      dp_(dp_group, model.parameters(), config.parallel.bucket_mb, dp_group.size() > 1 ? config.parallel.zero : 0,
          config.parallel.overlap_grad_reduce),
      accumulation_(config.batch.global / (config.batch.micro * dp_group.size())),
      guard_(config.optim.max_skipped_steps) {
  check_batch_split(config.batch, dp_group.size());
  m_ = Tensor::zeros({dp_.state_numel()}, DType::F32);
  v_ = Tensor::zeros({dp_.state_numel()}, DType::F32);
  const int64_t B = model.micro_batch(), T = model.seq_len();
  tokens_ = Tensor::empty({B, T}, DType::I32);
  targets_ = Tensor::empty({B, T}, DType::I32);
  segments_ = dp_.optimizer_segments(config.optim.weight_decay);
  if (tp_group_ != nullptr) {
    // A value several ranks hold (replicated, or a shared key/value head) counts on one of them.
    for (const ParamEntry& e : model.parameters().entries()) {
      counted_.push_back(tp_group_->rank() % shard_replicas(e.spec, tp_group_->size()) == 0);
    }
  }
  if (dp_group.size() > 1) {
    model.set_grad_ready_hook([this](int64_t offset) { dp_.grads_ready_from(offset); });
  }
}

StepResult TrainStep::run(int64_t step, const BatchFn& fill) {
  ParameterStore& store = model_.parameters();
  const int64_t B = model_.micro_batch();
  const uint64_t per_rank = static_cast<uint64_t>(config_.batch.global / group_.size());
  const uint64_t first = static_cast<uint64_t>(step) * static_cast<uint64_t>(config_.batch.global) +
                         static_cast<uint64_t>(group_.rank()) * per_rank;
  store.zero_grads();
  double loss = 0;
  for (int64_t a = 0; a < accumulation_; ++a) {
    dp_.begin_micro_batch(a + 1 == accumulation_);
    model_.set_reduce_partial_grads(a + 1 == accumulation_);
    fill(first + static_cast<uint64_t>(a * B), tokens_, targets_);
    loss += model_.forward_backward(tokens_, targets_, 1.0f / static_cast<float>(accumulation_));
  }
  dp_.finish_gradient_sync();
  StepResult r;
  r.comm_wait_s = dp_.exposed_wait_s();
  r.loss = loss / static_cast<double>(accumulation_);
  if (group_.size() > 1) group_.all_reduce_doubles(&r.loss, 1, ReduceOp::kAvg);
  double sum_of_squares = dp_.grad_sum_of_squares(counted_);
  if (tp_group_ != nullptr) tp_group_->all_reduce_doubles(&sum_of_squares, 1, ReduceOp::kSum);
  r.grad_norm = std::sqrt(sum_of_squares);
  r.lr = learning_rate(config_.optim, config_.run.steps, step);
  // Every rank sees the same loss and norm, so every rank takes the same decision.
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
  adamw_update_segments(store.params().data<float>(), dp_.optimizer_grads(), m_.data<float>(), v_.data<float>(),
                        segments_, s);
  dp_.gather_params();
  return r;
}

void TrainStep::full_adam_state(Tensor* m, Tensor* v) {
  if (dp_.zero() == 0) {  // already full: views, no copy
    *m = m_;
    *v = v_;
    return;
  }
  const int64_t n = model_.parameters().numel();
  *m = Tensor::zeros({n}, DType::F32);
  *v = Tensor::zeros({n}, DType::F32);
  dp_.state_to_full(m_, *m);
  dp_.state_to_full(v_, *v);
}

void TrainStep::load_full_adam_state(const Tensor& m, const Tensor& v) {
  dp_.state_from_full(m, m_);
  dp_.state_from_full(v, v_);
}

}  // namespace tessel
