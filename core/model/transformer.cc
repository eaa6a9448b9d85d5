#include "core/model/transformer.h"

#include <algorithm>

namespace tessel {

Transformer::Transformer(const ModelConfig& config, const TransformerOptions& o)
    : config_(config),
      device_(o.device),
      values_(o.compute),
      part_(o.part.chunks.empty() ? ModelPart::whole(config.layers) : o.part),
      B_(o.micro_batch),
      T_(o.seq_len),
      recompute_full_(o.recompute == Recompute::kFull),
      tp_(o.tp_group, o.sequence_parallel, o.micro_batch, o.seq_len, config.d_model, config.kv_heads, o.device,
          o.compute),
      store_(part_param_specs(config, part_, o.ep_group != nullptr ? o.ep_group->rank() : 0,
                              o.ep_group != nullptr ? o.ep_group->size() : 1),
             o.param_multiple, tp_.rank(), tp_.size(), o.device, o.compute,
             o.ep_group != nullptr && o.ep_group->size() > 1 ? o.expert_param_multiple : 0) {
  const int64_t seq_len = o.seq_len;
  TESSEL_CHECK(seq_len <= config.seq_len || config.position == Position::kRope)
      << "sequence length " << seq_len << " exceeds model.seq_len " << config.seq_len << " learned positions";
  TESSEL_CHECK(config.vocab_size % tp_.size() == 0)
      << "model.vocab_size (" << config.vocab_size << ") must be divisible by parallel.tp (" << tp_.size() << ")";
  const ModelNames n = model_names(config);
  if (store_.has(n.wte)) {
    wte_ = store_.compute_param(n.wte);
    dwte_ = store_.grad(n.wte);
    vocab_start_ = tp_.rank() * wte_.size(0);
  }
  if (part_.embedding && config.position == Position::kLearned) {
    wpe_ = store_.compute_param(n.wpe);
    dwpe_ = store_.grad(n.wpe);
  }
  if (part_.head) {
    if (!config.tie_embeddings) {
      lm_head_ = store_.compute_param(n.lm_head);
      dlm_head_ = store_.grad(n.lm_head);
      vocab_start_ = tp_.rank() * lm_head_.size(0);
    }
    final_norm_ = norm_ref(store_, n.final_norm_w, n.final_norm_b, config.norm == Norm::kLayerNorm);
    final_norm_offset_ = store_.entry(n.final_norm_w).offset;
  }

  const BlockDims d = BlockDims::of(config, B_, T_, tp_);
  // MoE layers: their statistics live here, one per MoE layer of the part, made before the
  // blocks that point at them.
  bool any_dense = false, any_moe = false;
  for (const ModelChunk& mc : part_.chunks) {
    for (int64_t i = mc.first_layer; i < mc.end_layer; ++i) {
      const bool moe = config.moe.is_moe_layer(i);
      any_moe = any_moe || moe;
      any_dense = any_dense || !moe;
      if (moe) moe_stats_.emplace_back();
    }
  }
  size_t next_stats = 0;
  const int ep = o.ep_group != nullptr ? o.ep_group->size() : 1;
  const int64_t N = d.N, Nl = d.Nl, C = config.d_model;
  const bool store_attention = o.recompute != Recompute::kSelective;
  for (size_t c = 0; c < part_.chunks.size(); ++c) {
    const ModelChunk& mc = part_.chunks[c];
    TESSEL_CHECK(mc.first_layer >= 0 && mc.first_layer < mc.end_layer && mc.end_layer <= config.layers)
        << "model chunk of layers [" << mc.first_layer << ", " << mc.end_layer << ") outside the model's "
        << config.layers << " layers";
    TESSEL_CHECK(mc.slots >= 1) << "a model chunk needs at least one activation slot, got " << mc.slots;
    Chunk chunk;
    chunk.embedding = c == 0 && part_.embedding;
    chunk.head = c + 1 == part_.chunks.size() && part_.head;
    chunk.first_block = blocks_.size();
    chunk.first_layer = mc.first_layer;
    TESSEL_CHECK(mc.first_layer % config.cla_share == 0 && mc.end_layer % config.cla_share == 0)
        << "model chunk of layers [" << mc.first_layer << ", " << mc.end_layer
        << ") splits a group of model.cla_share (" << config.cla_share << ") layers that share keys and values";
    for (int64_t i = mc.first_layer; i < mc.end_layer; ++i) {
      MoeLayerStats* stats = config.moe.is_moe_layer(i) ? &moe_stats_[next_stats++] : nullptr;
      blocks_.emplace_back(config, store_, i, tp_, stats, o.ep_group);
      block_offsets_.push_back(store_.entry(n.layer(i, "ln_1.weight", "input_layernorm.weight")).offset);
    }
    chunk.end_block = blocks_.size();
    chunk.first_offset = c == 0 ? 0 : block_offsets_[chunk.first_block];
    for (int k = 0; k < mc.slots; ++k) {
      Slot s;
      for (int64_t i = mc.first_layer; i <= mc.end_layer; ++i) s.residual.push_back(make({Nl, C}, values_));
      if (!recompute_full_) {
        for (int64_t i = mc.first_layer; i < mc.end_layer; ++i) {
          const bool moe = config.moe.is_moe_layer(i);
          s.caches.push_back(BlockCache::allocate(d, B_, T_, store_attention, device_, values_, !moe, moe, ep));
        }
      }
      if (device_ != nullptr && chunk.embedding) s.tokens = make({B_, T_}, DType::I32);
      if (config.cla_share > 1) {
        for (int64_t g = mc.first_layer; g < mc.end_layer; g += config.cla_share)
          s.shared_kv.push_back(make({N, 2 * d.KV * d.D}, values_));
      }
      if (chunk.head) {
        s.final_ln = make({Nl, C}, values_);
        s.final_mean = make({Nl}, DType::F32);
        s.final_rstd = make({Nl}, DType::F32);
        s.final_full = tp_.sequence_parallel() ? make({N, C}, values_) : s.final_ln;
      }
      chunk.slots.push_back(std::move(s));
    }
    chunks_.push_back(std::move(chunk));
  }
  // Full recomputation rebuilds a block's cache in backward: one cache serves every slot.
  if (recompute_full_) {
    full_cache_ = BlockCache::allocate(d, B_, T_, store_attention, device_, values_, any_dense, any_moe, ep);
  }
  scratch_ = BlockScratch::allocate(d, B_, T_, device_, values_, any_moe, ep);
  if (part_.embedding && tp_.size() > 1) embed_full_ = make({N, C}, values_);
  if (part_.head) {
    losses_ = make({N}, DType::F32);
    if (device_ != nullptr) host_losses_ = Tensor::empty({N}, DType::F32);
    if (device_ != nullptr) targets_here_ = make({B_, T_}, DType::I32);
    if (tp_.size() > 1) {
      vocab_loss_ = VocabParallelLossBuffers::allocate(N, head_weight().size(0), device_, values_);
    } else {
      // The CPU's workspace counts floats, a device's bytes (its chunks hold values of the
      // storage type beside fp32 logits).
      head_workspace_ =
          device_ == nullptr
              ? make({ops::classifier_workspace_numel(N, config.vocab_size)}, DType::F32)
              : make({device_->classifier_workspace_bytes(N, config.vocab_size, dtype_size(values_))}, DType::U8);
    }
  }
  dx_ = make({Nl, C}, values_);
  if (config.cla_share > 1) d_shared_kv_ = make({N, 2 * d.KV * d.D}, values_);
  if (part_.head || (part_.embedding && tp_.sequence_parallel())) d_final_ = make({N, C}, values_);
  if (part_.head) d_final_local_ = tp_.sequence_parallel() ? make({Nl, C}, values_) : d_final_;
}

Transformer::Slot& Transformer::slot(int chunk, int index) {
  TESSEL_CHECK(chunk >= 0 && chunk < num_chunks()) << "model chunk " << chunk << " outside [0, " << num_chunks() << ")";
  std::vector<Slot>& slots = chunks_[static_cast<size_t>(chunk)].slots;
  TESSEL_CHECK(index >= 0 && index < static_cast<int>(slots.size()))
      << "activation slot " << index << " outside [0, " << slots.size() << ")";
  return slots[static_cast<size_t>(index)];
}

BlockCache& Transformer::cache(Slot& s, size_t layer_in_chunk) {
  return recompute_full_ ? full_cache_ : s.caches[layer_in_chunk];
}

void Transformer::check_tokens(const Tensor& t) const {
  TESSEL_CHECK(t.dim() == 2 && t.size(0) == B_ && t.size(1) == T_)
      << "model built for micro-batches of (" << B_ << ", " << T_ << "), got " << t.str();
}

const Tensor& Transformer::here(const Tensor& t, const Tensor& staging) const {
  if (device_ == nullptr || !t.device().is_cpu()) return t;
  staging.copy_from(t);  // a few kilobytes per micro-batch, queued before the kernels that read them
  return staging;
}

bool Transformer::is_tied_copy(const std::string& name) const {
  return !part_.embedding && config_.tie_embeddings && name == model_names(config_).wte;
}

Tensor Transformer::chunk_input(int chunk, int index) { return slot(chunk, index).residual.front(); }
Tensor Transformer::chunk_output(int chunk, int index) { return slot(chunk, index).residual.back(); }

void Transformer::forward_chunk(int chunk, int index, const Tensor& tokens) {
  Slot& s = slot(chunk, index);
  const Chunk& c = chunks_[static_cast<size_t>(chunk)];
  TESSEL_CHECK(!s.live) << "activation slot " << index << " of model chunk " << chunk
                        << " still holds a micro-batch that has not run backward";
  s.live = true;
  peak_live_ = std::max(peak_live_, ++live_);
  if (c.embedding) {
    check_tokens(tokens);
    if (tp_.size() == 1) {
      ops::embedding_forward(s.residual[0], here(tokens, s.tokens), wte_, wpe_.defined() ? &wpe_ : nullptr);
    } else {
      // Each rank looks up the tokens of its vocabulary range (rank 0 adds the positions); the
      // sum over the group is the embedding.
      ops::embedding_forward(embed_full_, here(tokens, s.tokens), wte_,
                             wpe_.defined() && tp_.rank() == 0 ? &wpe_ : nullptr, vocab_start_, config_.vocab_size);
      tp_.reduce_to_local(embed_full_, s.residual[0]);
    }
  }
  for (size_t i = c.first_block; i < c.end_block; ++i) {
    const size_t k = i - c.first_block;
    blocks_[i].forward(s.residual[k], s.residual[k + 1], cache(s, k), scratch_, B_, T_, shared_kv(s, c, k));
  }
  if (!c.head) return;
  const float eps = static_cast<float>(config_.norm_eps);
  if (final_norm_.b.defined()) {
    ops::layernorm_forward(s.final_ln, s.final_mean, s.final_rstd, s.residual.back(), final_norm_.w, final_norm_.b,
                           eps);
  } else {
    ops::rmsnorm_forward(s.final_ln, s.final_rstd, s.residual.back(), final_norm_.w, eps);
  }
  tp_.gather_to_full(s.final_ln, s.final_full);
}

float Transformer::mean_loss() {
  // A device's losses are copied back first (the copy waits for the head's kernels).
  const Tensor& t = device_ != nullptr ? host_losses_ : losses_;
  if (device_ != nullptr) host_losses_.copy_from(losses_);
  // Summed in double in a fixed order: the reported loss is bitwise reproducible.
  const float* p = t.data<float>();
  double s = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) s += p[i];
  return static_cast<float>(s / static_cast<double>(t.numel()));
}

void Transformer::head_loss(const Slot& s, const Tensor& targets, float dloss, bool backward) {
  // A device model's targets are checked here, while still on the host (vocab_parallel_loss
  // checks CPU targets itself).
  if (tp_.size() > 1 && device_ != nullptr) check_vocab_targets(targets, config_.vocab_size);
  const Tensor targets_flat = here(targets, targets_here_).reshape({B_ * T_});
  const Tensor* dx = backward ? &d_final_ : nullptr;
  const Tensor* dw = backward ? &head_grad() : nullptr;
  if (tp_.size() == 1) {
    ops::classifier_forward_backward(losses_, dx, dw, s.final_full, head_weight(), targets_flat, dloss,
                                     head_workspace_);
  } else {
    vocab_parallel_loss(losses_, dx, dw, s.final_full, head_weight(), targets_flat, dloss, vocab_start_, vocab_loss_,
                        tp_);
  }
}

float Transformer::forward_backward(const Tensor& tokens, const Tensor& targets, float grad_scale) {
  forward(tokens, 0);
  return backward(tokens, targets, grad_scale, 0);
}

float Transformer::backward_chunk(int chunk, int index, const Tensor& tokens, const Tensor& targets, float grad_scale) {
  Slot& s = slot(chunk, index);
  const Chunk& c = chunks_[static_cast<size_t>(chunk)];
  TESSEL_CHECK(s.live) << "backward of model chunk " << chunk << " slot " << index << " without its forward";
  float loss = 0;
  if (c.head) {
    check_tokens(targets);
    // Head: loss and its gradient in one pass; dloss per position = grad_scale / N.
    head_loss(s, targets, grad_scale / static_cast<float>(B_ * T_), true);
    // The head's input gradient is a partial sum over the vocabulary shards.
    tp_.reduce_to_local(d_final_, d_final_local_);
    dx_.fill_zero();
    if (final_norm_.b.defined()) {
      ops::layernorm_backward(dx_, final_norm_.dw, final_norm_.db, d_final_local_, s.residual.back(), final_norm_.w,
                              s.final_mean, s.final_rstd);
    } else {
      ops::rmsnorm_backward(dx_, final_norm_.dw, d_final_local_, s.residual.back(), final_norm_.w, s.final_rstd);
    }
    if (tp_.sequence_parallel() && reduce_partial_grads_) {
      tp_.all_reduce(final_norm_.dw);
      if (final_norm_.db.defined()) tp_.all_reduce(final_norm_.db);
    }
    if (grad_ready_) grad_ready_(final_norm_offset_);  // the final norm and an untied head
  }
  for (size_t i = c.end_block; i-- > c.first_block;) {
    const size_t k = i - c.first_block;
    BlockCache& kc = cache(s, k);
    if (recompute_full_) {
      // Rebuild this block's activations from its saved input; x_out is scratch here (the
      // chunk's output is no longer read once the backward of what follows it is done).
      blocks_[i].forward(s.residual[k], s.residual.back(), kc, scratch_, B_, T_, shared_kv(s, c, k));
    }
    // A CLA group's backward starts at its last layer, with no key/value gradient yet.
    const int64_t layer = c.first_layer + static_cast<int64_t>(k);
    if (config_.cla_share > 1 && layer % config_.cla_share == config_.cla_share - 1) d_shared_kv_.fill_zero();
    blocks_[i].backward(dx_, s.residual[k], kc, scratch_, B_, T_, grad_scale,
                        config_.cla_share > 1 ? &d_shared_kv_ : nullptr);
    if (reduce_partial_grads_) blocks_[i].reduce_partial_grads();
    if (grad_ready_) grad_ready_(block_offsets_[i]);
  }
  if (c.embedding) {
    check_tokens(tokens);
    // The lookup's gradient needs every position's gradient (each rank owns some tokens').
    const Tensor& d_embed = tp_.sequence_parallel() ? d_final_ : dx_;
    tp_.gather_to_full(dx_, d_embed);
    // Backward reads the same tokens as its forward: a device model's slot still holds their copy.
    const Tensor& tok = device_ != nullptr && tokens.device().is_cpu() ? s.tokens : tokens;
    ops::embedding_backward(dwte_, dwpe_.defined() ? &dwpe_ : nullptr, d_embed, tok, vocab_start_);
  }
  // Everything from the chunk's first parameter on is final for this micro-batch: on chunk 0
  // that is offset 0, the embeddings (a tied head's gradient is among them).
  if (grad_ready_) grad_ready_(c.first_offset);
  // Read last: on a device the read waits for the queue, which by now holds the whole backward
  // (read right after the head, it would stall the queueing of every layer's backward).
  if (c.head) loss = mean_loss();
  release(s);
  return loss;
}

const Tensor* Transformer::shared_kv(Slot& s, const Chunk& c, size_t k) const {
  if (config_.cla_share == 1) return nullptr;
  return &s.shared_kv[k / static_cast<size_t>(config_.cla_share)];  // chunks start at a group's first layer
}

void Transformer::release(Slot& s) {
  s.live = false;
  --live_;
}

float Transformer::forward_loss_chunk(int chunk, int index, const Tensor& tokens, const Tensor& targets) {
  forward_chunk(chunk, index, tokens);
  Slot& s = slot(chunk, index);
  release(s);
  if (!chunks_[static_cast<size_t>(chunk)].head) return 0;
  check_tokens(targets);
  head_loss(s, targets, 0.0f, false);
  return mean_loss();
}

float Transformer::forward_loss(const Tensor& tokens, const Tensor& targets) {
  TESSEL_CHECK(part_.is_whole(config_.layers))
      << "forward_loss runs the whole model, not the pipeline part " << part_.describe();
  return forward_loss_chunk(0, 0, tokens, targets);
}

std::vector<float> Transformer::logits_at(const Tensor& tokens, int64_t position) {
  TESSEL_CHECK(tp_.size() == 1 && part_.is_whole(config_.layers))
      << "logits_at runs on a whole model, not a tensor- or pipeline-parallel part";
  TESSEL_CHECK(position >= 0 && position < T_) << "position " << position << " outside [0, " << T_ << ")";
  // MoE layers route without capacity here: the positions after `position` must not matter.
  for (const Block& b : blocks_) {
    if (b.is_moe()) b.moe()->set_dropless(true);
  }
  forward_chunk(0, 0, tokens);
  for (const Block& b : blocks_) {
    if (b.is_moe()) b.moe()->set_dropless(false);
  }
  release(chunks_[0].slots[0]);
  const int64_t C = config_.d_model, V = config_.vocab_size;
  const Tensor row = chunks_[0].slots[0].final_ln.view(position * C, {1, C});
  Tensor out = make({1, V}, values_);
  ops::matmul_forward(out, row, head_weight(), nullptr, ops::WeightLayout::kOutIn);
  if (out.device().is_cpu()) return std::vector<float>(out.data<float>(), out.data<float>() + V);
  // In F32 on the device first (the compute type may be narrower), then to the host.
  Tensor wide = out;
  if (values_ != DType::F32) {
    wide = make({1, V}, DType::F32);
    device_->cast(wide, out);
  }
  Tensor host = Tensor::empty({1, V}, DType::F32);
  host.copy_from(wide);
  return std::vector<float>(host.data<float>(), host.data<float>() + V);
}

int64_t Transformer::activation_bytes() const {
  int64_t n = 0;
  for (const Chunk& c : chunks_) {
    const Slot& s = c.slots[0];
    for (const BlockCache& k : s.caches) n += k.bytes();
    for (const Tensor& r : s.residual) n += static_cast<int64_t>(r.nbytes());
    for (const Tensor& kv : s.shared_kv) n += static_cast<int64_t>(kv.nbytes());
  }
  if (recompute_full_) n += full_cache_.bytes();
  return n;
}

int64_t Transformer::num_parameters() const {
  int64_t n = 0;
  for (const ParamSpec& s : transformer_param_specs(config_)) n += shape_numel(s.shape);
  return n;
}

double Transformer::flops_per_token() const {
  return 6.0 * static_cast<double>(active_parameters(config_)) +
         6.0 * static_cast<double>(config_.layers * T_ * config_.d_model);
}

std::vector<Tensor> Transformer::selection_biases() const {
  std::vector<Tensor> biases;
  for (const Block& b : blocks_) {
    if (b.is_moe() && b.moe()->selection_bias().defined()) biases.push_back(b.moe()->selection_bias());
  }
  return biases;
}

}  // namespace tessel
