// Transformer: the decoder-only language model (GPT-2 or LLaMA style), forward and backward.
//
// Owns the ParameterStore (weights + gradients, one flat buffer each) and the activation buffers
// for micro-batches of shape (B, T) fixed at construction. forward_backward() runs one
// micro-batch end to end and ADDS its gradients into the store, scaled by `grad_scale` (the
// trainer passes 1/accumulation_steps), so a step is: zero_grads, forward_backward per
// micro-batch, optimizer. Recomputation `full` keeps only each block's input and recomputes the
// block in backward; `selective` keeps every block's cache but the attention core, which
// backward reruns; `none` keeps everything.
//
// Under pipeline parallelism the model is one rank's ModelPart (core/model/model_part.h): its
// chunks of layers, each run on its own by forward_chunk()/backward_chunk() on an activation
// slot, with the activations between stages passed in through chunk_input() and out through
// chunk_output(), and their gradients through grad_io(). The part's slots are the
// micro-batches in flight; the model counts them (live_activations(), and the peak since
// reset), which is how a schedule's memory is measured.
//
// Under tensor parallelism (a TpContext of size tp) the model is one rank's shard: the store
// holds its shards, blocks work on its heads and its part of F, the embedding and output layer
// on its range of the vocabulary (vocab-parallel lookup, vocab-parallel cross-entropy), and
// the loss is the same on every rank of the group. Not thread-safe: one step at a time.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/config/config.h"
#include "core/device_backend.h"
#include "core/model/block.h"
#include "core/model/model_part.h"
#include "core/model/tp_context.h"
#include "core/model/vocab_parallel_loss.h"

namespace tessel {

// How to build a Transformer beyond its ModelConfig: the micro-batch shape, this rank's share of
// the model, and where it computes.
struct TransformerOptions {
  TransformerOptions(int64_t B, int64_t T) : micro_batch(B), seq_len(T) {}

  int64_t micro_batch;  // B
  int64_t seq_len;      // T (at most model.seq_len with learned positions)
  Recompute recompute = Recompute::kNone;
  int64_t param_multiple = 1;  // the flat parameter buffers' length is a multiple of it (ParameterStore)
  // The tensor-parallel group (null: none); sequence_parallel splits the residual stream along
  // T over it.
  Communicator* tp_group = nullptr;
  bool sequence_parallel = false;
  // The expert-parallel group of MoE layers (null: none; core/model/moe_layer.h). With more than
  // one rank the store holds this rank's routed experts only, in an expert region whose length
  // is a multiple of expert_param_multiple (ParameterStore).
  Communicator* ep_group = nullptr;
  int64_t expert_param_multiple = 1;
  ModelPart part;  // the layers this rank holds; empty chunks: all of them, one activation slot
  // The backend whose memory holds the parameters, gradients and activations, and whose kernels
  // run the ops (core/device_backend.h); null: the CPU. Tokens and targets may be passed in from
  // the host: a device model copies them over. A device model holds no tensor-parallel shard
  // (tp_group must be null or of size 1) for now.
  DeviceBackend* device = nullptr;
  // The type of activations and of the weights' compute copy (F32 on the CPU; F32, BF16 or F16 on
  // a device); gradients, master weights and statistics stay F32.
  DType compute = DType::F32;
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, const TransformerOptions& options);

  const ModelConfig& config() const { return config_; }
  ParameterStore& parameters() { return store_; }
  const ParameterStore& parameters() const { return store_; }
  int64_t micro_batch() const { return B_; }
  int64_t seq_len() const { return T_; }

  // tokens, targets: I32 (B, T). Returns the mean cross-entropy over the B·T positions; adds
  // grad_scale · d(mean loss)/dθ into the gradients.
  float forward_backward(const Tensor& tokens, const Tensor& targets, float grad_scale);
  // The two halves of forward_backward for the whole model, on activation slot `slot`.
  void forward(const Tensor& tokens, int slot) { forward_chunk(0, slot, tokens); }
  float backward(const Tensor& tokens, const Tensor& targets, float grad_scale, int slot) {
    return backward_chunk(0, slot, tokens, targets, grad_scale);
  }

  // One chunk's forward on activation slot `slot` (in [0, its slots)), which must be free: it
  // keeps what backward needs there until backward_chunk frees it. Chunk 0 of a part with the
  // embedding reads `tokens`; any other chunk reads its input from chunk_input(chunk, slot).
  void forward_chunk(int chunk, int slot, const Tensor& tokens);
  // Its backward (same tokens; targets are read by the chunk with the head): the head's chunk
  // computes the loss and returns it; any other starts from the gradient of its output, put in
  // grad_io() before the call. Adds the gradients, leaves the gradient of the chunk's input in
  // grad_io() (not for the embedding's chunk) and frees the slot.
  float backward_chunk(int chunk, int slot, const Tensor& tokens, const Tensor& targets, float grad_scale);
  // Forward only, for evaluation: returns the loss on the head's chunk (0 elsewhere) and frees
  // the slot at once (chunk_output stays readable until the slot's next use).
  float forward_loss_chunk(int chunk, int slot, const Tensor& tokens, const Tensor& targets);
  Tensor chunk_input(int chunk, int slot);       // (rows, C): the residual stream entering the chunk
  Tensor chunk_output(int chunk, int slot);      // (rows, C): and leaving it
  const Tensor& grad_io() const { return dx_; }  // (rows, C); rows = B·T/tp with sequence parallelism
  int num_chunks() const { return static_cast<int>(chunks_.size()); }
  const ModelPart& part() const { return part_; }
  // Whether parameter `name` is this part's copy of an embedding held by another stage: the
  // last stage's output layer tied to the first stage's embedding. Such a copy is counted,
  // saved and gathered once, from the first stage.
  bool is_tied_copy(const std::string& name) const;
  // Slots between forward and backward now, and the most since the last reset.
  int live_activations() const { return live_; }
  int peak_live_activations() const { return peak_live_; }
  void reset_peak_live_activations() { peak_live_ = live_; }
  // Called during forward_backward each time every gradient at flat offsets >= `offset` is
  // final for this micro-batch (parameters are laid out in forward order and backward runs in
  // reverse, so the offset only falls, ending at 0): data parallelism starts reducing those
  // gradient buckets while backward goes on. Empty: no calls.
  using GradReadyHook = std::function<void(int64_t offset)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }

  // With sequence parallelism, norm-weight gradients are per-rank partial sums until reduced
  // over the group: set true for the step's last micro-batch (the reduction covers the
  // accumulated gradients once).
  void set_reduce_partial_grads(bool reduce) { reduce_partial_grads_ = reduce; }
  // Activation memory per micro-batch held between forward and backward, in bytes (for all of
  // the part's chunks).
  int64_t activation_bytes() const;

  // The same loss without touching gradients (whole model).
  float forward_loss(const Tensor& tokens, const Tensor& targets);
  // Logits (V) of position `position` of sequence 0 (tokens past `position` do not matter:
  // attention is causal). For generation; whole model only.
  std::vector<float> logits_at(const Tensor& tokens, int64_t position);

  // Model FLOPs per token for training, 6·N + 6·L·T·C (llm.c's count; N = the parameters of
  // the whole model a token passes through, not of this shard: an MoE layer's top_k routed
  // experts, not all of them).
  double flops_per_token() const;

  // MoE layers of this part: their routing over the step so far (core/model/moe_layer.h), in
  // layer order, and aux_free's selection biases (E each), in the same order. Empty for a dense
  // model.
  std::vector<MoeLayerStats>& moe_stats() { return moe_stats_; }
  std::vector<Tensor> selection_biases() const;
  int64_t num_parameters() const;  // of the whole model, without the flat-buffer padding

 private:
  // The activations of one micro-batch on one chunk between its forward and its backward.
  struct Slot {
    std::vector<Tensor> residual;             // layers + 1 tensors (Nl, C): input of each block, then output
    std::vector<BlockCache> caches;           // one per layer; none with full recomputation
    Tensor final_ln, final_mean, final_rstd;  // (Nl, C), (Nl), (Nl): the head's chunk only
    Tensor final_full;                        // (N, C): final_ln gathered (sequence parallel)
    Tensor tokens;                            // (B, T) I32: a device model's copy of forward's host tokens
    std::vector<Tensor> shared_kv;            // model.cla_share > 1: (N, 2·KV·D) per group of layers
    bool live = false;                        // between forward and backward
  };
  struct Chunk {
    size_t first_block = 0, end_block = 0;  // indexes into blocks_
    int64_t first_layer = 0;                // the model layer of blocks_[first_block]
    int64_t first_offset = 0;               // where its parameters start in the flat buffers
    bool embedding = false, head = false;
    std::vector<Slot> slots;
  };
  Slot& slot(int chunk, int index);
  BlockCache& cache(Slot& s, size_t layer_in_chunk);
  void release(Slot& s);  // the slot's micro-batch is done with
  // Cross-layer attention: the shared keys and values of layer `layer` (chunk-relative block
  // `k`) in slot s, or null without CLA.
  const Tensor* shared_kv(Slot& s, const Chunk& c, size_t k) const;
  void check_tokens(const Tensor& t) const;
  // Per-row losses into losses_ from slot s's final norm output; with `backward`, d_final_ gets
  // the gradient of its final_full and the head weight's gradient accumulates.
  void head_loss(const Slot& s, const Tensor& targets, float dloss, bool backward);
  // The mean of losses_ (the head's per-position losses), read on the host.
  float mean_loss();
  // `t` where this model computes: itself, or (a host tensor for a device model) its copy in
  // `staging`.
  const Tensor& here(const Tensor& t, const Tensor& staging) const;
  const Tensor& head_weight() const { return config_.tie_embeddings ? wte_ : lm_head_; }
  const Tensor& head_grad() const { return config_.tie_embeddings ? dwte_ : dlm_head_; }

  // A tensor where this model's buffers live (its device, or CPU memory).
  Tensor make(const Shape& shape, DType dtype) const { return empty_on(device_, shape, dtype); }

  ModelConfig config_;
  DeviceBackend* device_;
  DType values_;  // activations' type (the compute type)
  ModelPart part_;
  int64_t B_, T_;
  bool recompute_full_;
  TpContext tp_;
  int64_t vocab_start_ = 0;  // first vocabulary row this rank holds
  bool reduce_partial_grads_ = true;
  ParameterStore store_;
  std::vector<MoeLayerStats> moe_stats_;  // before blocks_: MoE blocks point into it
  std::vector<Block> blocks_;
  Tensor wte_, dwte_;          // (V, C)
  Tensor wpe_, dwpe_;          // (T, C), learned positions only
  Tensor lm_head_, dlm_head_;  // (V, C), untied only
  NormRef final_norm_;
  GradReadyHook grad_ready_;
  std::vector<int64_t> block_offsets_;  // first flat offset of each block's parameters
  int64_t final_norm_offset_ = 0;

  // Rows: N = B·T; Nl = the rows of the residual stream this rank holds (N/tp with sequence
  // parallelism).
  std::vector<Chunk> chunks_;
  int live_ = 0, peak_live_ = 0;
  BlockCache full_cache_;  // full recomputation: the one block cache backward rebuilds
  BlockScratch scratch_;
  Tensor embed_full_;                    // (N, C): vocab-parallel lookup before its reduction
  Tensor losses_;                        // (N)
  Tensor host_losses_;                   // (N) losses_ copied to the CPU (device models)
  Tensor targets_here_;                  // (B, T) I32: host targets copied to the device
  Tensor head_workspace_;                // a chunk of logits for the fused classifier
  VocabParallelLossBuffers vocab_loss_;  // the same for the vocab-parallel loss
  Tensor dx_;                            // (Nl, C) gradient of the residual stream
  Tensor d_final_;                       // (N, C) gradient of the head's input
  Tensor d_final_local_;                 // (Nl, C): its reduction over the group
  Tensor d_shared_kv_;                   // (N, 2·KV·D): a CLA group's key/value gradient in backward
};

}  // namespace tessel
