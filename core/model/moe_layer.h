// MoeFfn: a Mixture-of-Experts FFN in place of a block's dense one (Mixtral, Qwen2-MoE,
// Hunyuan, DeepSeek style), forward and backward.
//
// For the normed input h (N, C): the router (mlp.gate, (E, C)) scores each token, routing
// (core/model/moe_router.h) picks its top-k experts and weights, the tokens' rows are gathered
// expert by expert (the permutation), each routed expert (mlp.experts.E.{gate,up,down}_proj, a
// SwiGLU FFN of width expert_ffn_dim; up/down with GELU) runs as one GEMM per projection over
// its rows, and the weighted outputs are scattered back and added to the shared expert's
// (mlp.shared_expert.*, every token, width shared_ffn_dim; with shared_gate, Qwen2-MoE's, times
// sigmoid(h · mlp.shared_expert_gate) per token). Experts have no biases.
//
// Tensor parallelism splits every expert's F like a dense FFN (gate/up column-parallel, down
// row-parallel), so the layer's output is a partial sum over the group that the block reduces
// with its other row-parallel outputs; the router is replicated and every rank routes alike.
// The combine weights' gradient is a dot with the expert's output, a partial sum too: it is
// summed over the group before the router's backward, whose input gradient rank 0 adds.
//
// Expert parallelism (parallel.ep): the ranks of an expert-parallel group (taken from the
// data-parallel ranks) each compute E / ep of the experts, for the tokens of every rank of the
// group. A rank's expert-major rows go to the experts' owners in one all-to-all (dispatch, which
// the shared expert's forward overlaps), come back in another (combine), and the gradients take
// the same way back. Every rank still holds every expert's weights (the store is laid out alike
// on all data-parallel ranks, so gradient reduction, ZeRO and checkpoints work unchanged): a
// rank's gradient of another rank's expert is zero, and the data-parallel mean of the owners'
// gradients is the single-rank gradient.
//
// The step's routing counts (per expert, dropped, rerouted, the aux loss) are recorded into a
// MoeLayerStats during backward, once per micro-batch however often forward runs
// (recomputation, evaluation).
#pragma once

#include <vector>

#include "core/config/config.h"
#include "core/device_backend.h"
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
  double exchange_s = 0;  // expert parallelism: this rank's time in dispatch and combine (not reduced)

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
  bool gate = false;             // the shared expert has a sigmoid gate (model.moe.shared_gate)
  static MoeDims of(const ModelConfig& c, int tp_size);
};

// A small tensor that both the host (routing) and the layer's ops work on: `dev` where the model
// computes, `host` in CPU memory; on the CPU both are one tensor and nothing is copied. On a
// device, read() brings dev to the host (through `wide`, an F32 device tensor, when dev holds a
// narrower float type) and write() takes the host's values back.
struct Staged {
  Tensor dev, host, wide;
  static Staged make(DeviceBackend* device, const Shape& shape, DType dtype);
  void read() const;
  void write() const;
  bool defined() const { return dev.defined(); }
  int64_t bytes() const;  // of the device tensor (what the layer keeps where it computes)
};

// Activations of one MoE layer for one micro-batch. Without expert parallelism the local rows
// are the rows themselves (lx is x, and so on); with it, they are the rows this rank's experts
// compute, received from the group.
struct MoeCache {
  Staged logits;  // (N, E), values
  MoeRouting routing;
  Staged rows;                         // I32 (N·k): the token of each expert-major row (routing.rows() used)
  Staged weights;                      // F32 (N·k): the combine weight of each expert-major row
  Tensor x;                            // (N·k, C): the gathered inputs
  Tensor out;                          // (N·k, C): the experts' outputs
  Tensor shared_pre, shared_act;       // (N, fs_in), (N, Fs); undefined without shared experts
  Tensor shared_out;                   // shared_gate: (N, C) the shared FFN's output
  Staged gate_logit, gate, tokens;     // shared_gate: (N, 1) values and F32, I32 (N) 0..N-1
  std::vector<int64_t> local_offsets;  // (local experts + 1): each local expert's local rows
  Tensor lx, lpre, lact, lout;         // (rows, ...): the local experts' inputs, activations, outputs
  // Expert parallelism only: rows sent to and received from each rank of the group, the rows as
  // received (rank-major; also the outputs sent back), and the permutations between them:
  // local row i is received row perm[i], received row j is local row inv_perm[j].
  std::vector<int64_t> send_rows, recv_rows;
  Tensor recv;
  Staged perm, inv_perm, counts, all_counts;  // counts: F64 (E) and (ep · E), the group's rows per expert
  double exchange_s = 0;                      // forward's time in the exchanges, recorded with backward's

  // ep: the expert-parallel degree (a rank may receive up to ep · N · k rows). device, values:
  // where the activations live and their type (core/model/block.h).
  static MoeCache allocate(const MoeDims& d, int64_t N, int64_t C, int ep = 1, DeviceBackend* device = nullptr,
                           DType values = DType::F32);
  int64_t bytes() const;
};

struct MoeScratch {
  Staged d_logits;    // (N, E), values
  Staged d_weights;   // F32 (N·k): per expert-major row
  Tensor d_x, d_out;  // (N·k, C)
  Tensor d_shared_pre, d_shared_act;
  Tensor d_shared;                              // shared_gate: (N, C) the shared FFN's output gradient
  Staged d_gate, d_gate_logit;                  // shared_gate: F32 (N) the gate's gradient, (N, 1) values its logit's
  Tensor d_lout, d_lx, d_lpre, d_lact, d_recv;  // the local rows' (aliases of the above without ep)

  static MoeScratch allocate(const MoeDims& d, int64_t N, int64_t C, int ep = 1, DeviceBackend* device = nullptr,
                             DType values = DType::F32);
};

class MoeFfn {
 public:
  // stats: where backward records the routing (owned by the model, outliving the layer). ep:
  // the expert-parallel group (null: none), outliving the layer.
  MoeFfn(const ModelConfig& config, const ParameterStore& store, int64_t layer, const TpContext& tp,
         MoeLayerStats* stats, Communicator* ep = nullptr);

  // h (N, C): the normed input, all rows. out (N, C): overwritten with this rank's partial sum.
  void forward(const Tensor& h, const Tensor& out, MoeCache& cache) const;
  // dout (N, C): the gradient of the output (all rows). dh (N, C): overwritten with this rank's
  // partial sum of the input gradient. grad_scale: the micro-batch's loss scale (the aux loss's
  // gradient is added with it).
  void backward(const Tensor& dh, const Tensor& dout, const Tensor& h, const MoeCache& cache, MoeScratch& scratch,
                float grad_scale) const;

  // Generation: route without capacity (every token its top-k), as Hugging Face models run;
  // otherwise the padding after a prompt would take capacity from it.
  void set_dropless(bool on) const { dropless_ = on; }

  // aux_free's per-expert selection bias (E, F32, where the parameters live), a parameter the
  // optimizer leaves alone (its gradient is zero); undefined for other balancing.
  const Tensor& selection_bias() const { return bias_; }

 private:
  struct Expert {
    std::vector<Tensor> in, d_in;  // gate, up (or up alone): (F, C) each
    Tensor down, d_down;           // (C, F)
  };
  void expert_forward(const Expert& e, const Tensor& x, const Tensor& pre, const Tensor& act, const Tensor& y) const;
  void expert_backward(const Expert& e, const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& pre,
                       const Tensor& act, const Tensor& d_pre, const Tensor& d_act) const;
  // Expert parallelism: the group's counts, the rows each rank sends and receives, and the
  // permutations between received and local rows, into k.
  void plan_exchange(MoeCache& k) const;

  MoeConfig config_;
  bool swiglu_;
  const TpContext& tp_;
  MoeLayerStats* stats_;
  MoeDims dims_;
  Communicator* ep_;               // null: every expert computes here
  mutable bool dropless_ = false;  // set_dropless
  int64_t first_expert_ = 0;       // this rank's experts: [first_expert_, + local_experts_)
  int64_t local_experts_ = 0;
  Tensor router_, d_router_;     // (E, C)
  Tensor bias_;                  // (E), aux_free only
  Tensor bias_host_;             // its copy on the host, read before each routing (a device's)
  Tensor gate_, d_gate_;         // (1, C): the shared expert's gate, shared_gate only
  std::vector<Expert> experts_;  // this rank's routed experts, from first_expert_ on
  Expert shared_;
  bool has_shared_ = false;
};

}  // namespace tessel
