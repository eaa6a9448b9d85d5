// One transformer block (pre-norm): x + attn(norm1(x)), then + ffn(norm2(·)), with explicit
// forward and backward.
//
// A Block holds views of its weights and gradients in the ParameterStore and nothing else;
// activations live in a BlockCache owned by the caller (one per layer per micro-batch, or one
// shared scratch cache when the layer is recomputed). forward() fills the cache; backward()
// reads it, accumulates parameter gradients and turns the gradient of the block's output into
// the gradient of its input, in place.
#pragma once

#include <vector>

#include "core/config.h"
#include "core/model/param_specs.h"
#include "core/ops.h"

namespace tessel {

// A linear layer's weight/bias views, their gradients and where its output lands.
struct LinearRef {
  Tensor w, dw;  // (OC, K) for kOutIn, (K, OC) for kInOut
  Tensor b, db;  // (OC) or undefined without bias
  ops::ColumnBlock block;  // column block of a wider output buffer, {} for a whole buffer
};

struct NormRef {
  Tensor w, dw;  // (C)
  Tensor b, db;  // (C), LayerNorm only
};

// Activations of one block for one micro-batch; N = B*T.
struct BlockCache {
  Tensor ln1, ln1_mean, ln1_rstd;  // (N, C), (N), (N)
  Tensor qkv;                      // (N, (H + 2KV)·D), after RoPE
  Tensor att, lse;                 // (N, H·D), (B, H, T)
  Tensor x_mid;                    // (N, C) residual stream after attention
  Tensor ln2, ln2_mean, ln2_rstd;  // (N, C), (N), (N)
  Tensor ffn_pre;                  // (N, F) or (N, 2F) for SwiGLU (gate | up)
  Tensor ffn_act;                  // (N, F)

  static BlockCache allocate(const ModelConfig& c, int64_t B, int64_t T);
};

// Backward scratch shared by all blocks (only one block runs backward at a time).
struct BlockScratch {
  Tensor d_ln;       // (N, C)
  Tensor d_qkv;      // (N, (H + 2KV)·D)
  Tensor d_att;      // (N, H·D)
  Tensor d_ffn_pre;  // (N, F) or (N, 2F)
  Tensor d_ffn_act;  // (N, F)

  static BlockScratch allocate(const ModelConfig& c, int64_t B, int64_t T);
};

class Block {
 public:
  Block(const ModelConfig& config, const ParameterStore& store, int64_t layer);

  // x_in, x_out: (B*T, C). Fills cache.
  void forward(const Tensor& x_in, const Tensor& x_out, BlockCache& cache, int64_t B,
               int64_t T) const;
  // dx: on entry the gradient w.r.t. x_out, on return the gradient w.r.t. x_in.
  void backward(const Tensor& dx, const Tensor& x_in, const BlockCache& cache,
                BlockScratch& scratch, int64_t B, int64_t T) const;

 private:
  void norm_forward(const NormRef& n, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                    const Tensor& inp) const;
  void norm_backward(const NormRef& n, const Tensor& dinp, const Tensor& dout, const Tensor& inp,
                     const Tensor& mean, const Tensor& rstd) const;
  void linear_forward(const LinearRef& l, const Tensor& out, const Tensor& inp) const;
  void linear_backward(const LinearRef& l, const Tensor* dinp, const Tensor& dout,
                       const Tensor& inp, bool accumulate_dinp) const;

  ModelConfig config_;
  ops::WeightLayout layout_;
  NormRef ln1_, ln2_;
  std::vector<LinearRef> qkv_;     // c_attn, or q, k, v
  LinearRef attn_out_;
  std::vector<LinearRef> ffn_in_;  // c_fc, or gate, up (or up alone)
  LinearRef ffn_out_;
};

// Shared helpers for the norms outside blocks (the final norm).
NormRef norm_ref(const ParameterStore& store, const std::string& weight_name,
                 const std::string& bias_name, bool layernorm);

}  // namespace tessel
