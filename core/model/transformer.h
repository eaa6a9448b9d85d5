// Transformer: the decoder-only language model (GPT-2 or LLaMA style), forward and backward.
//
// Owns the ParameterStore (weights + gradients, one flat buffer each) and the activation buffers
// for one micro-batch of shape (B, T) fixed at construction. forward_backward() runs one
// micro-batch end to end and ADDS its gradients into the store, scaled by `grad_scale` (the
// trainer passes 1/accumulation_steps), so a step is: zero_grads, forward_backward per
// micro-batch, optimizer. Recomputation `full` keeps only each block's input and recomputes the
// block in backward; `none` keeps every block's cache. Not thread-safe: one step at a time.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/config.h"
#include "core/model/block.h"

namespace tessel {

class Transformer {
 public:
  // recompute: "none" | "full" ("selective" is accepted and treated as none until the
  // tensor-parallel work adds it).
  // param_multiple: the flat parameter buffers' length is a multiple of it (see ParameterStore).
  Transformer(const ModelConfig& config, int64_t micro_batch, int64_t seq_len,
              const std::string& recompute = "none", int64_t param_multiple = 1);

  const ModelConfig& config() const { return config_; }
  ParameterStore& parameters() { return store_; }
  const ParameterStore& parameters() const { return store_; }
  int64_t micro_batch() const { return B_; }
  int64_t seq_len() const { return T_; }

  // tokens, targets: I32 (B, T). Returns the mean cross-entropy over the B·T positions; adds
  // grad_scale · d(mean loss)/dθ into the gradients.
  float forward_backward(const Tensor& tokens, const Tensor& targets, float grad_scale);
  // Called during forward_backward each time every gradient at flat offsets >= `offset` is
  // final for this micro-batch (parameters are laid out in forward order and backward runs in
  // reverse, so the offset only falls, ending at 0): data parallelism starts reducing those
  // gradient buckets while backward goes on. Empty: no calls.
  using GradReadyHook = std::function<void(int64_t offset)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }

  // The same loss without touching gradients.
  float forward_loss(const Tensor& tokens, const Tensor& targets);
  // Logits (V) of position `position` of sequence 0 (tokens past `position` do not matter:
  // attention is causal). For generation.
  std::vector<float> logits_at(const Tensor& tokens, int64_t position);

  // Model FLOPs per token for training, 6·N + 6·L·T·C (llm.c's count; N = all parameters).
  double flops_per_token() const;
  int64_t num_parameters() const;  // without the flat-buffer padding

 private:
  void forward_blocks(const Tensor& tokens);
  const Tensor& head_weight() const { return config_.tie_embeddings ? wte_ : lm_head_; }
  const Tensor& head_grad() const { return config_.tie_embeddings ? dwte_ : dlm_head_; }

  ModelConfig config_;
  int64_t B_, T_;
  bool recompute_full_;
  ParameterStore store_;
  std::vector<Block> blocks_;
  Tensor wte_, dwte_;          // (V, C)
  Tensor wpe_, dwpe_;          // (T, C), learned positions only
  Tensor lm_head_, dlm_head_;  // (V, C), untied only
  NormRef final_norm_;
  GradReadyHook grad_ready_;
  std::vector<int64_t> block_offsets_;  // first flat offset of each block's parameters
  int64_t final_norm_offset_ = 0;

  std::vector<Tensor> residual_;   // L + 1 tensors (B·T, C): input of each block, then output
  std::vector<BlockCache> caches_; // L caches, or 1 shared cache with full recomputation
  BlockScratch scratch_;
  Tensor final_ln_, final_mean_, final_rstd_;  // (B·T, C), (B·T), (B·T)
  Tensor losses_;                              // (B·T)
  Tensor head_workspace_;                      // a chunk of logits for the fused classifier
  Tensor dx_;                                  // (B·T, C) gradient of the residual stream
  Tensor d_final_;                             // (B·T, C)
};

}  // namespace tessel
