// MoeFfn: a Mixture-of-Experts FFN in place of a block's dense one (Mixtral, Qwen2-MoE,
// Hunyuan, DeepSeek style), forward and backward.
//
// For the normed input h (N, C): the router (mlp.gate, (E, C)) scores each token, routing
// (core/model/moe_router.h) picks its top-k experts and weights, the tokens' rows are gathered
// expert by expert (the permutation), each routed expert (mlp.experts.E.{gate,up,down}_proj, a
// SwiGLU FFN of width expert_ffn_dim; up/down with GELU) runs as one GEMM per projection over
// its rows, and the weighted outputs are scattered back and added to the shared expert's
// (mlp.shared_expert.*, every token, width shared_ffn_dim). Experts have no biases.
//
// Tensor parallelism splits every expert's F like a dense FFN (gate/up column-parallel, down
// row-parallel), so the layer's output is a partial sum over the group that the block reduces
// with its other row-parallel outputs; the router is replicated and every rank routes alike.
// The combine weights' gradient is a dot with the expert's output, a partial sum too: it is
// summed over the group before the router's backward, whose input gradient rank 0 adds.
//
// The step's routing counts (per expert, dropped, rerouted, the aux loss) are recorded into a
// MoeLayerStats during backward, once per micro-batch however often forward runs
// (recomputation, evaluation).
#pragma once

#include <vector>

#include "core/config/config.h"
#include "core/model/moe_router.h"
#include "core/model/parameters.h"
#include "core/model/tp_context.h"
#include "core/tensor.h"

namespace tessel {

// One MoE layer's routing over an optimizer step, summed over micro-batches (and, once the step
// is done, over data-parallel ranks: TrainStep).
struct MoeLayerStats {
  int64_t layer = 0;
  std::vector<double> chosen;    // (E): top-k choices per expert, before capacity
  std::vector<double> computed;  // (E): assignments each expert computed
  double dropped = 0, rerouted = 0;
  double aux_loss = 0;  // summed over micro-batches (with the coefficient)
  double micro_batches = 0;

  void clear();
  // Everything above as one flat list of numbers, and back (to reduce over ranks).
  std::vector<double> pack() const;
  void unpack(const std::vector<double>& values);
};

// The sizes of a MoE layer on this rank (F: its tensor-parallel share).
struct MoeDims {
  int64_t E = 0, K = 0;
  int64_t Fe = 0, Fs = 0;        // a routed expert's and the shared FFN's width (local)
  int64_t fe_in = 0, fs_in = 0;  // their input projections' width: 2F with SwiGLU, else F
  static MoeDims of(const ModelConfig& c, int tp_size);
};

// Activations of one MoE layer for one micro-batch.
struct MoeCache {
  Tensor logits;  // (N, E)
  MoeRouting routing;
  Tensor rows;                    // I32 (N·k): the token of each expert-major row (routing.rows() used)
  Tensor weights;                 // (N·k): the combine weight of each expert-major row
  Tensor x;                       // (N·k, C): the gathered inputs
  Tensor pre, act;                // (N·k, fe_in), (N·k, Fe)
  Tensor out;                     // (N·k, C): the experts' outputs
  Tensor shared_pre, shared_act;  // (N, fs_in), (N, Fs); undefined without shared experts

  static MoeCache allocate(const MoeDims& d, int64_t N, int64_t C);
  int64_t bytes() const;
};

struct MoeScratch {
  Tensor d_logits;      // (N, E)
  Tensor d_weights;     // (N·k): per expert-major row
  Tensor d_x, d_out;    // (N·k, C)
  Tensor d_pre, d_act;  // (N·k, fe_in), (N·k, Fe)
  Tensor d_shared_pre, d_shared_act;

  static MoeScratch allocate(const MoeDims& d, int64_t N, int64_t C);
};

class MoeFfn {
 public:
  // stats: where backward records the routing (owned by the model, outliving the layer).
  MoeFfn(const ModelConfig& config, const ParameterStore& store, int64_t layer, const TpContext& tp,
         MoeLayerStats* stats);

  // h (N, C): the normed input, all rows. out (N, C): overwritten with this rank's partial sum.
  void forward(const Tensor& h, const Tensor& out, MoeCache& cache) const;
  // dout (N, C): the gradient of the output (all rows). dh (N, C): overwritten with this rank's
  // partial sum of the input gradient. grad_scale: the micro-batch's loss scale (the aux loss's
  // gradient is added with it).
  void backward(const Tensor& dh, const Tensor& dout, const Tensor& h, const MoeCache& cache, MoeScratch& scratch,
                float grad_scale) const;

  // aux_free's per-expert selection bias (E), a parameter the optimizer leaves alone (its
  // gradient is zero); undefined for other balancing.
  const Tensor& selection_bias() const { return bias_; }

 private:
  struct Expert {
    std::vector<Tensor> in, d_in;  // gate, up (or up alone): (F, C) each
    Tensor down, d_down;           // (C, F)
  };
  void expert_forward(const Expert& e, const Tensor& x, const Tensor& pre, const Tensor& act, const Tensor& y) const;
  void expert_backward(const Expert& e, const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& pre,
                       const Tensor& act, const Tensor& d_pre, const Tensor& d_act) const;

  MoeConfig config_;
  bool swiglu_;
  const TpContext& tp_;
  MoeLayerStats* stats_;
  MoeDims dims_;
  Tensor router_, d_router_;  // (E, C)
  Tensor bias_;               // (E), aux_free only
  std::vector<Expert> experts_;
  Expert shared_;
  bool has_shared_ = false;
};

}  // namespace tessel
