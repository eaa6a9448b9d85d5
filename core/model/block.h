// One transformer block (pre-norm): x + attn(norm1(x)), then + ffn(norm2(·)), with explicit
// forward and backward.
//
// A Block holds views of its weights and gradients in the ParameterStore and nothing else;
// activations live in a BlockCache owned by the caller (one per layer per micro-batch, or one
// shared scratch cache when the layer is recomputed). forward() fills the cache; backward()
// reads it, accumulates parameter gradients and turns the gradient of the block's output into
// the gradient of its input, in place.
//
// Tensor parallelism (Megatron): the QKV and FFN-input projections are column-parallel (this
// rank's heads, its part of F), attention runs on the rank's heads, and the attention-output
// and FFN-output projections are row-parallel, their partial sums reduced over the group by
// the TpContext (whose row bias only rank 0 adds). With sequence parallelism the residual
// stream, norms and residual adds hold the rank's T/tp positions; norm outputs are gathered
// before the column-parallel projections (again in backward, not stored), and the
// row-parallel outputs are reduce-scattered. Selective recomputation keeps no attention output
// per layer: backward reruns the attention core from the stored q, k, v.
#pragma once

#include <memory>
#include <vector>

#include "core/config/config.h"
#include "core/model/moe_layer.h"
#include "core/model/param_specs.h"
#include "core/model/tp_context.h"
#include "core/ops.h"

namespace tessel {

// A linear layer's weight/bias views, their gradients and where its output lands.
struct LinearRef {
  Tensor w, dw;            // (OC, K) for kOutIn, (K, OC) for kInOut
  Tensor b, db;            // (OC) or undefined without bias
  ops::ColumnBlock block;  // column block of a wider output buffer, {} for a whole buffer
};

struct NormRef {
  Tensor w, dw;  // (C)
  Tensor b, db;  // (C), LayerNorm only
};

// The sizes one rank's block works with: H, KV and F are this rank's share (all of them
// without tensor parallelism); Nl = the residual rows it holds (N = B·T, or N/tp with sequence
// parallelism).
struct BlockDims {
  int64_t N = 0, Nl = 0, C = 0, D = 0, H = 0, KV = 0, F = 0, ffn_in = 0;
  MoeDims moe;  // the MoE layers' sizes (E = 0 for a dense model)
  static BlockDims of(const ModelConfig& c, int64_t B, int64_t T, const TpContext& tp);
};

// Activations of one block for one micro-batch.
struct BlockCache {
  Tensor ln1, ln1_mean, ln1_rstd;  // (Nl, C), (Nl), (Nl)
  Tensor qkv;                      // (N, (H + 2KV)·D), after RoPE
  Tensor att, lse;                 // (N, H·D), (B, H, T); undefined with selective recompute
  Tensor x_mid;                    // (Nl, C) residual stream after attention
  Tensor ln2, ln2_mean, ln2_rstd;  // (Nl, C), (Nl), (Nl)
  Tensor ffn_pre;                  // (N, F) or (N, 2F) for SwiGLU (gate | up); dense FFN only
  Tensor ffn_act;                  // (N, F); dense FFN only
  MoeCache moe;                    // MoE FFN only

  // device: where the buffers live (core/device_backend.h); null: CPU memory. values: the
  // activations' type (statistics — means, rstds, logsumexps — are always F32). dense, moe:
  // which FFN's activations to hold (both for a cache shared by both kinds of layer).
  static BlockCache allocate(const BlockDims& d, int64_t B, int64_t T, bool store_attention,
                             DeviceBackend* device = nullptr, DType values = DType::F32, bool dense = true,
                             bool moe = false, int ep = 1);
  int64_t bytes() const;  // activation memory held
};

// Scratch shared by all blocks (only one block runs at a time).
struct BlockScratch {
  Tensor d_ln;       // (Nl, C)
  Tensor d_qkv;      // (N, (H + 2KV)·D)
  Tensor d_att;      // (N, H·D)
  Tensor d_ffn_pre;  // (N, F) or (N, 2F)
  Tensor d_ffn_act;  // (N, F)
  Tensor full;       // (N, C): gathered norm output or output gradient (sequence parallel)
  Tensor partial;    // (N, C): a parallel layer's partial sums before their reduction
  Tensor att, lse;   // (N, H·D), (B, H, T): the recomputed attention core (selective)
  MoeScratch moe;    // MoE layers only
  Tensor moe_in;     // (N, C): the MoE layer's gathered input in backward (sequence parallel)

  static BlockScratch allocate(const BlockDims& d, int64_t B, int64_t T, DeviceBackend* device = nullptr,
                               DType values = DType::F32, bool moe = false, int ep = 1);
};

class Block {
 public:
  // tp: the tensor-parallel context, shared with the model and outliving the block.
  // moe_stats: where an MoE layer records its routing (model.moe; null for a dense layer).
  // ep_group: its expert-parallel group (null: none).
  Block(const ModelConfig& config, const ParameterStore& store, int64_t layer, TpContext& tp,
        MoeLayerStats* moe_stats = nullptr, Communicator* ep_group = nullptr);

  // x_in, x_out: (Nl, C). Fills cache. shared_kv (N, 2·KV·D), with model.cla_share > 1: the
  // keys and values (after RoPE) of the layer's group, which its first layer writes and the
  // others attend with.
  void forward(const Tensor& x_in, const Tensor& x_out, BlockCache& cache, BlockScratch& scratch, int64_t B, int64_t T,
               const Tensor* shared_kv = nullptr) const;
  // dx: on entry the gradient w.r.t. x_out, on return the gradient w.r.t. x_in. grad_scale:
  // the micro-batch's loss scale, for the gradients of losses the block adds itself (MoE aux).
  // d_shared_kv (N, 2·KV·D), with model.cla_share > 1: the gradient of the group's shared keys
  // and values, which the other layers add to (backward runs them first) and the group's
  // first layer takes in.
  void backward(const Tensor& dx, const Tensor& x_in, const BlockCache& cache, BlockScratch& scratch, int64_t B,
                int64_t T, float grad_scale = 1.0f, const Tensor* d_shared_kv = nullptr) const;
  bool kv_source() const { return kv_source_; }
  bool is_moe() const { return moe_ != nullptr; }
  const MoeFfn* moe() const { return moe_.get(); }
  // Gradients that are per-rank partial sums until reduced, summed once per optimizer step
  // (after the last micro-batch's backward): with sequence parallelism the norms' (each rank
  // saw its positions only); with key/value heads shared by several ranks, those projections'
  // (each rank saw its own query heads only).
  void reduce_partial_grads() const;

 private:
  void norm_forward(const NormRef& n, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                    const Tensor& inp) const;
  void norm_backward(const NormRef& n, const Tensor& dinp, const Tensor& dout, const Tensor& inp, const Tensor& mean,
                     const Tensor& rstd) const;
  // add_bias false: a row-parallel layer on a rank other than 0 (the bias is added once).
  void linear_forward(const LinearRef& l, const Tensor& out, const Tensor& inp, bool add_bias = true) const;
  void linear_backward(const LinearRef& l, const Tensor* dinp, const Tensor& dout, const Tensor& inp,
                       bool accumulate_dinp) const;

  // The norm output (Nl rows) as all N rows: itself, or gathered into `scratch`.
  const Tensor& full_rows(const Tensor& local, const Tensor& scratch) const;

  ModelConfig config_;
  TpContext& tp_;
  int64_t H_, KV_;  // this rank's query and key/value heads
  bool kv_source_;  // computes its keys and values (false: attends with its CLA group's first layer's)
  ops::WeightLayout layout_;
  NormRef ln1_, ln2_;
  std::vector<LinearRef> qkv_;  // c_attn, or q, k, v
  LinearRef attn_out_;
  std::vector<LinearRef> ffn_in_;  // c_fc, or gate, up (or up alone); dense FFN
  LinearRef ffn_out_;
  std::unique_ptr<MoeFfn> moe_;  // the MoE FFN in place of the dense one
};

// Shared helpers for the norms outside blocks (the final norm).
NormRef norm_ref(const ParameterStore& store, const std::string& weight_name, const std::string& bias_name,
                 bool layernorm);

}  // namespace tessel
