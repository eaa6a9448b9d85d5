#include "train/train_step.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/model/init_rng.h"
#include "core/model/param_specs.h"
#include "core/model/shard.h"
#include "core/ops.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"

namespace tessel {

TrainStep::BatchFn synthetic_batches(const Config& config) {
  const uint64_t stream = fnv1a64("bench.tokens"), seed = config.run.seed;
  const double V = static_cast<double>(config.model.vocab_size);
  return [stream, seed, V](uint64_t first, const Tensor& tokens, const Tensor& targets) {
    const uint64_t T = static_cast<uint64_t>(tokens.size(1));
    for (int64_t i = 0; i < tokens.numel(); ++i) {
      const uint64_t k = first * T + static_cast<uint64_t>(i);
      tokens.data<int32_t>()[i] = static_cast<int32_t>(uniform_at(seed, stream, 2 * k) * V);
      targets.data<int32_t>()[i] = static_cast<int32_t>(uniform_at(seed, stream, 2 * k + 1) * V);
    }
  };
}

void check_batch_split(const BatchConfig& batch, int64_t dp) {
  if (!batch.shares.empty()) {
    TESSEL_CHECK(static_cast<int64_t>(batch.shares.size()) == dp)
        << "batch.shares lists " << batch.shares.size() << " data-parallel replicas, but the layout has dp " << dp
        << "; hint: one share (micro-batches per step) per replica";
    int64_t micro_batches = 0;
    for (int64_t n : batch.shares) micro_batches += n;
    TESSEL_CHECK(micro_batches * batch.micro == batch.global)
        << "batch.shares adds up to " << micro_batches << " micro-batches of " << batch.micro << ", not batch.global ("
        << batch.global << ")";
    return;
  }
  TESSEL_CHECK(batch.global % (dp * batch.micro) == 0)
      << "batch.global (" << batch.global << ") must be divisible by dp (" << dp << ") x batch.micro (" << batch.micro
      << ") = " << dp * batch.micro << ": each data-parallel rank runs whole micro-batches; "
      << "hint: batch.global=" << std::max<int64_t>(1, batch.global / (dp * batch.micro)) * dp * batch.micro
      << ", or a batch.micro that divides " << batch.global / dp;
}

std::vector<int64_t> micro_batches_per_replica(const BatchConfig& batch, int64_t dp) {
  check_batch_split(batch, dp);
  if (!batch.shares.empty()) return batch.shares;
  return std::vector<int64_t>(static_cast<size_t>(dp), batch.global / (dp * batch.micro));
}

TrainStep::TrainStep(const Config& config, Transformer& model, Communicator& dp_group, Communicator* tp_group,
                     PipelineExecutor* pipeline, Communicator* ep_group, Communicator* expert_dp_group)
    : config_(config),
      model_(model),
      device_(model.parameters().params().storage()->backend()),
      group_(dp_group),
      tp_group_(tp_group != nullptr && tp_group->size() > 1 ? tp_group : nullptr),
      pipeline_(pipeline != nullptr && pipeline->group().size() > 1 ? pipeline : nullptr),
      // Unequal shares: each replica's gradient is weighted by its share of the batch's tokens
      // (scaled by 1 / the step's micro-batches), so the replicas' sum is the step's mean.
      weighted_(!config.batch.shares.empty()),
      dp_(dp_group, model.parameters(), config.parallel.bucket_mb,
          dp_group.size() > 1 ? config.parallel.zero : ZeroStage::k0, config.parallel.overlap_grad_reduce,
          weighted_ ? ReduceOp::kSum : ReduceOp::kAvg, GradBucket{0, model.parameters().expert_begin()}),
      micro_batches_(micro_batches_per_replica(config.batch, dp_group.size())),
      accumulation_(micro_batches_[static_cast<size_t>(dp_group.rank())]),
      step_micro_batches_(config.batch.global / config.batch.micro),
      guard_(config.optim.max_skipped_steps),
      scaler_(config.precision.compute == Precision::kFp16, config.precision.loss_scale) {
  TESSEL_CHECK(pipeline_ == nullptr || pipeline_->micro_batches() == accumulation_)
      << "pipeline schedule of " << pipeline_->micro_batches() << " micro-batches for a step of " << accumulation_;
  const ParameterStore& store = model.parameters();
  if (store.has_expert_region()) {
    // Expert parallelism: each routed expert lives on one rank of its expert-parallel group, and
    // its gradient (the tokens of all ep replicas) averages over the ranks that hold it, then
    // divides by ep: the mean over every replica, as for the other parameters.
    TESSEL_CHECK(ep_group != nullptr && expert_dp_group != nullptr && !weighted_)
        << "a model split over expert-parallel ranks needs its expert-parallel and expert-data-parallel groups, "
        << "and equal shares of the batch";
    ep_group_ = ep_group;
    edp_ = std::make_unique<DataParallel>(*expert_dp_group, model.parameters(), config.parallel.bucket_mb,
                                          expert_dp_group->size() > 1 ? config.parallel.zero : ZeroStage::k0, false,
                                          ReduceOp::kAvg, GradBucket{store.expert_begin(), store.numel()},
                                          1.0 / static_cast<double>(ep_group->size()));
  }
  // The moments live beside the parameters: the replicated parameters', then the experts'.
  const int64_t state = dp_.state_numel() + (edp_ ? edp_->state_numel() : 0);
  m_ = zeros_on(device_, {state}, DType::F32);
  v_ = zeros_on(device_, {state}, DType::F32);
  const int64_t B = model.micro_batch(), T = model.seq_len();
  tokens_ = Tensor::empty({B, T}, DType::I32);
  targets_ = Tensor::empty({B, T}, DType::I32);

  segments_ = dp_.optimizer_segments(config.optim.weight_decay);
  if (edp_) {
    expert_segments_ = edp_->optimizer_segments(config.optim.weight_decay);
    for (AdamWSegment& seg : expert_segments_) seg.state_offset += dp_.state_numel();
  }
  const std::string wte = model_names(config.model).wte;
  const bool tied_copy =
      pipeline_ != nullptr && config.model.tie_embeddings && (model.part().embedding || model.part().head);
  if (tied_copy) {
    tied_grad_ = store.grad(wte).reshape({store.entry(wte).numel});
    tied_peer_ = empty_on(device_, {tied_grad_.numel()}, DType::F32);
    tied_end_ = store.entry(wte).offset + store.entry(wte).numel;
  }
  if (tp_group_ != nullptr || pipeline_ != nullptr) {
    for (const ParamEntry& e : store.entries()) {
      // A value several ranks hold (replicated, or a shared key/value head) counts on one of
      // them; the last stage's copy of a tied embedding counts on the first stage.
      bool counted = tp_group_ == nullptr || tp_group_->rank() % shard_replicas(e.spec, tp_group_->size()) == 0;
      if (model.is_tied_copy(e.spec.name)) counted = false;
      counted_.push_back(counted);
    }
  }
  if (dp_group.size() > 1) {
    model.set_grad_ready_hook([this](int64_t offset) {
      // In a pipeline only the last micro-batch's backward finishes gradients (a chunk's, from
      // its last layer down); the tied embedding's wait for the sum between stages.
      if (pipeline_ != nullptr && !last_micro_batch_) return;
      dp_.grads_ready_from(std::max(offset, tied_end_));
    });
  }
}

void TrainStep::sum_tied_embedding_grads() {
  if (!tied_grad_.defined()) return;
  Communicator& pp = pipeline_->group();
  const int peer = model_.part().embedding ? pp.size() - 1 : 0;
  // Tag 0: never used by the pipeline executor (see parallel/pipeline_executor.h).
  pp.send_recv({{P2POp::kSend, tied_grad_, peer, 0}, {P2POp::kRecv, tied_peer_, peer, 0}});
  // a + b on one side, b + a on the other: the same bits on both.
  ops::residual_forward(tied_grad_, tied_grad_, tied_peer_);
}

StepResult TrainStep::run(int64_t step, const BatchFn& fill) {
  ParameterStore& store = model_.parameters();
  const int64_t B = model_.micro_batch();
  // This replica's samples: after those of the replicas before it.
  int64_t before = 0;
  for (int r = 0; r < group_.rank(); ++r) before += micro_batches_[static_cast<size_t>(r)];
  const uint64_t first =
      static_cast<uint64_t>(step) * static_cast<uint64_t>(config_.batch.global) + static_cast<uint64_t>(before * B);
  store.zero_grads();
  double loss = 0;
  // The loss scale (a power of two, or 1) rides on the gradient's scale: exact in binary.
  const double loss_scale = scaler_.scale();
  const float grad_scale =
      static_cast<float>(loss_scale / static_cast<double>(weighted_ ? step_micro_batches_ : accumulation_));
  if (pipeline_ != nullptr) {
    dp_.begin_micro_batch(true);  // the hook lets only the last micro-batch's backward through
    loss =
        pipeline_->train([&](int mb, const Tensor& tokens,
                             const Tensor& targets) { fill(first + static_cast<uint64_t>(mb * B), tokens, targets); },
                         grad_scale,
                         [&](const PipeAction& a) {
                           last_micro_batch_ = a.micro_batch + 1 == accumulation_;
                           model_.set_reduce_partial_grads(last_micro_batch_);
                         });
    last_micro_batch_ = false;
    sum_tied_embedding_grads();
    // Only the last stage has the loss.
    pipeline_->group().all_reduce_doubles(&loss, 1, ReduceOp::kSum);
  } else {
    for (int64_t a = 0; a < accumulation_; ++a) {
      dp_.begin_micro_batch(a + 1 == accumulation_);
      model_.set_reduce_partial_grads(a + 1 == accumulation_);
      fill(first + static_cast<uint64_t>(a * B), tokens_, targets_);
      loss += model_.forward_backward(tokens_, targets_, grad_scale);  // a device model copies them over
    }
  }
  dp_.finish_gradient_sync();
  if (edp_) {
    edp_->begin_micro_batch(true);  // every bucket starts here, after backward
    edp_->finish_gradient_sync();
  }
  StepResult r;
  r.comm_wait_s = dp_.exposed_wait_s() + (edp_ ? edp_->exposed_wait_s() : 0);
  r.loss = loss / static_cast<double>(weighted_ ? step_micro_batches_ : accumulation_);
  if (group_.size() > 1) group_.all_reduce_doubles(&r.loss, 1, weighted_ ? ReduceOp::kSum : ReduceOp::kAvg);
  double sum_of_squares = dp_.grad_sum_of_squares(counted_);
  if (edp_) {
    // Each expert-parallel rank's experts, then all of them.
    double experts = edp_->grad_sum_of_squares(counted_);
    ep_group_->all_reduce_doubles(&experts, 1, ReduceOp::kSum);
    sum_of_squares += experts;
  }
  if (tp_group_ != nullptr) tp_group_->all_reduce_doubles(&sum_of_squares, 1, ReduceOp::kSum);
  if (pipeline_ != nullptr) pipeline_->group().all_reduce_doubles(&sum_of_squares, 1, ReduceOp::kSum);
  r.grad_norm = std::sqrt(sum_of_squares) / loss_scale;
  r.lr = learning_rate(config_.optim, config_.run.steps, step);
  r.loss_scale = loss_scale;
  // An fp16 overflow under a dynamic scale: expected while the scale settles, not a failure.
  // A non-finite loss is not an overflow (no scale fixes a forward NaN): the guard's.
  if (scaler_.overflowed(std::isfinite(r.loss) && !std::isfinite(sum_of_squares), step)) {
    r.skipped = r.overflow = true;
    finish_moe_step(r, false);
    return r;
  }
  // Every rank sees the same loss and norm, so every rank takes the same decision.
  if (guard_.should_skip(r.loss, r.grad_norm, step)) {
    r.skipped = true;
    finish_moe_step(r, false);
    return r;
  }
  ++optimizer_steps_;
  scaler_.applied();
  AdamWStep s;
  s.lr = r.lr;
  s.beta1 = config_.optim.beta1;
  s.beta2 = config_.optim.beta2;
  s.eps = config_.optim.eps;
  s.step = optimizer_steps_;
  s.grad_scale = (config_.optim.grad_clip > 0 ? clip_scale(r.grad_norm, config_.optim.grad_clip) : 1.0) / loss_scale;
  // With a compute copy (bf16 weights of fp32 masters) the update rewrites both.
  adamw_update_segments(store.params(), dp_.optimizer_grads(), m_, v_, segments_, s, store.compute_params());
  dp_.gather_params();
  if (edp_) {
    adamw_update_segments(store.params(), edp_->optimizer_grads(), m_, v_, expert_segments_, s, store.compute_params());
    edp_->gather_params();
  }
  finish_moe_step(r, true);
  return r;
}

void TrainStep::finish_moe_step(StepResult& r, bool applied) {
  const MoeConfig& moe = config_.model.moe;
  if (!moe.enabled()) return;
  std::vector<MoeLayerStats>& stats = model_.moe_stats();
  // Summed over the data-parallel ranks in rank order (the same bits on every rank).
  std::vector<double> mine;
  for (const MoeLayerStats& s : stats) {
    const std::vector<double> packed = s.pack();
    mine.insert(mine.end(), packed.begin(), packed.end());
  }
  if (group_.size() > 1 && !mine.empty()) {
    const int64_t n = static_cast<int64_t>(mine.size());
    const Tensor in = Tensor::empty({n}, DType::F64);
    const Tensor all = Tensor::empty({n * group_.size()}, DType::F64);
    std::copy(mine.begin(), mine.end(), in.data<double>());
    group_.all_gather(in, all);
    const double* a = all.data<double>();
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0;
      for (int rank = 0; rank < group_.size(); ++rank) sum += a[rank * n + i];
      mine[static_cast<size_t>(i)] = sum;
    }
    size_t at = 0;
    for (MoeLayerStats& s : stats) {
      const size_t size = s.pack().size();
      s.unpack(std::vector<double>(mine.begin() + static_cast<std::ptrdiff_t>(at),
                                   mine.begin() + static_cast<std::ptrdiff_t>(at + size)));
      at += size;
    }
  }
  const std::vector<Tensor> biases = model_.selection_biases();
  if (applied && moe.balance == MoeBalance::kAuxFree) {
    for (size_t i = 0; i < stats.size(); ++i) {
      // A device's bias is moved on the host and copied back (E numbers per layer).
      const Tensor host = biases[i].device().is_cpu() ? biases[i] : Tensor::empty(biases[i].shape(), DType::F32);
      if (host.raw() != biases[i].raw()) host.copy_from(biases[i]);
      update_selection_bias(host.data<float>(), stats[i].chosen, moe.bias_update_rate);
      if (host.raw() != biases[i].raw()) biases[i].copy_from(host);
    }
  }
  // Every MoE layer of the model: this part's filled in, the others' by their stages.
  std::vector<int64_t> layers;
  for (int64_t i = 0; i < config_.model.layers; ++i) {
    if (moe.is_moe_layer(i)) layers.push_back(i);
  }
  constexpr size_t kFields = 6;
  std::vector<double> table(layers.size() * kFields, 0.0);
  for (size_t i = 0; i < stats.size(); ++i) {
    const MoeLayerStats& s = stats[i];
    const size_t row = static_cast<size_t>(std::lower_bound(layers.begin(), layers.end(), s.layer) - layers.begin());
    double* t = table.data() + row * kFields;
    t[0] = s.micro_batches > 0 ? s.aux_loss / s.micro_batches : 0;
    t[1] = *std::max_element(s.computed.begin(), s.computed.end());
    t[2] = std::accumulate(s.computed.begin(), s.computed.end(), 0.0) / static_cast<double>(s.computed.size());
    t[3] = s.dropped;
    t[4] = s.rerouted;
    if (i < biases.size()) {
      double sq = 0;
      const Tensor host = biases[i].device().is_cpu() ? biases[i] : Tensor::empty(biases[i].shape(), DType::F32);
      if (host.raw() != biases[i].raw()) host.copy_from(biases[i]);
      const float* b = host.data<float>();
      for (int64_t e = 0; e < biases[i].numel(); ++e) sq += static_cast<double>(b[e]) * b[e];
      t[5] = std::sqrt(sq);
    }
  }
  if (pipeline_ != nullptr && !table.empty()) {
    pipeline_->group().all_reduce_doubles(table.data(), static_cast<int>(table.size()), ReduceOp::kSum);
  }
  r.aux_loss = 0;
  r.moe.clear();
  r.moe_exchange_s = 0;
  for (const MoeLayerStats& st : stats) r.moe_exchange_s += st.exchange_s;
  for (size_t row = 0; row < layers.size(); ++row) {
    const double* t = table.data() + row * kFields;
    r.moe.push_back({layers[row], t[0], t[1], t[2], t[3], t[4], t[5]});
    r.aux_loss += t[0];
  }
  for (MoeLayerStats& s : stats) s.clear();
}

std::vector<RankCheckpoint::StateSegment> TrainStep::state_segments(const Tensor& m, const Tensor& v) const {
  const std::vector<ParamEntry>& entries = model_.parameters().entries();
  std::vector<RankCheckpoint::StateSegment> out;
  std::vector<AdamWSegment> all = segments_;
  all.insert(all.end(), expert_segments_.begin(), expert_segments_.end());
  for (const AdamWSegment& s : all) {
    // The parameter holding the segment (segments never cross parameters).
    const auto it = std::upper_bound(entries.begin(), entries.end(), s.offset,
                                     [](int64_t offset, const ParamEntry& e) { return offset < e.offset; });
    const size_t i = static_cast<size_t>(it - entries.begin()) - 1;
    const int64_t state = s.state_offset >= 0 ? s.state_offset : s.offset;
    out.push_back({i, s.offset - entries[i].offset, s.offset - entries[i].offset + s.numel, m.view(state, {s.numel}),
                   v.view(state, {s.numel})});
  }
  return out;
}

void TrainStep::load_full_adam_state(const Tensor& m, const Tensor& v) {
  const int64_t n = dp_.state_numel();
  dp_.state_from_full(m, m_.slice(0, n));
  dp_.state_from_full(v, v_.slice(0, n));
  if (edp_) {
    edp_->state_from_full(m, m_.slice(n, m_.numel()));
    edp_->state_from_full(v, v_.slice(n, v_.numel()));
  }
}

}  // namespace tessel
