// ParameterStore: every parameter of a rank in one flat fp32 buffer, gradients in a twin.
//
// Each parameter has a global name (its Hugging Face name), a global shape, and a shard spec:
// the dimension tensor parallelism splits, or none. With tp = 1 the local shape is the global
// shape. Because parameters are plain ranges of the flat buffers, gradient buckets, ZeRO
// partitions and the fused optimizer all work on ranges, never on per-tensor lists.
// Initialization is a pure function of (seed, name, global element index): see init_rng.h.
// The store owns its buffers, in CPU memory or on a device; tensors it hands out are views that
// share them.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace tessel {

enum class InitKind { kNormal, kOnes, kZeros };

struct ParamSpec {
  std::string name;    // global Hugging Face name, e.g. "transformer.h.0.attn.c_attn.weight"
  Shape shape;         // global shape
  int shard_dim = -1;  // dimension split by tensor parallelism; -1: replicated
  InitKind init = InitKind::kNormal;
  float init_std = 0.02f;  // for kNormal
  bool weight_decay = false;
  // Sizes of the groups along shard_dim that are split one by one (core/model/shard.h);
  // empty: the whole dimension is one group.
  std::vector<int64_t> shard_groups = {};
  // Heads along shard_dim when it must split at head boundaries and may hold fewer heads than
  // there are tensor-parallel ranks (grouped-query key/value projections): then each head is
  // held whole by tp / shard_heads ranks. 0: no such limit.
  int64_t shard_heads = 0;
  // Routed expert `expert` of an MoE layer (mlp.experts.E.*), -1: not one. Expert parallelism
  // holds each routed expert on one rank of its group, in a region of the buffers of its own.
  int64_t expert = -1;
};

struct ParamEntry {
  ParamSpec spec;      // global name, shape and shard spec
  Shape shape;         // this rank's shard of spec.shape (spec.shape without tensor parallelism)
  int64_t offset = 0;  // first element in the flat buffers
  int64_t numel = 0;   // of `shape`
};

// The initial value of element `index` (row-major in the global shape) of a parameter.
float initial_value(uint64_t seed, const ParamSpec& spec, int64_t index);

class ParameterStore {
 public:
  // Lays the parameters out in the given order; names must be unique. The buffers' length is
  // rounded up to a multiple of `total_multiple` (data parallelism splits them evenly). With
  // tp_size > 1 the store holds rank tp_rank's shard of every split parameter.
  // `device`: the backend whose memory holds the buffers (core/device_backend.h); null: CPU.
  // `compute`: the type the model computes in. F32: the weights are used as they are; BF16 or
  // F16 (device only): the F32 weights are master weights, and a copy in that type, laid out
  // alike, is what the forward and backward read (compute_param).
  // `expert_multiple` > 0 (expert parallelism): the routed experts (ParamSpec::expert) are laid
  // out after every other parameter, in a region of their own whose length is a multiple of it
  // (they reduce over another data-parallel group); the rest is then padded to total_multiple.
  // 0: every parameter in the given order, one region.
  explicit ParameterStore(std::vector<ParamSpec> specs, int64_t total_multiple = 1, int tp_rank = 0, int tp_size = 1,
                          DeviceBackend* device = nullptr, DType compute = DType::F32, int64_t expert_multiple = 0);

  const std::vector<ParamEntry>& entries() const { return entries_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const ParamEntry& entry(const std::string& name) const;
  Tensor param(const std::string& name) const;  // view with the parameter's shape (F32 master)
  Tensor grad(const std::string& name) const;
  // The weights as the model computes with them: param() itself in F32, else a view of the
  // compute copy (refreshed by sync_compute_params and by AdamW, which writes both).
  Tensor compute_param(const std::string& name) const;
  DType compute_dtype() const { return compute_dtype_; }
  const Tensor& compute_params() const { return compute_params_; }  // (numel); undefined in F32
  // compute copy := master weights, rounded (after initialization or loading a checkpoint).
  void sync_compute_params();
  const Tensor& params() const { return params_; }  // (numel)
  const Tensor& grads() const { return grads_; }    // (numel)
  int64_t numel() const { return numel_; }
  // The routed experts' region [expert_begin(), numel()) when the store has one (see the
  // constructor); otherwise empty, expert_begin() == numel(). Every other parameter lies below.
  int64_t expert_begin() const { return expert_begin_; }
  bool has_expert_region() const { return expert_begin_ < numel_; }
  int tp_rank() const { return tp_rank_; }
  int tp_size() const { return tp_size_; }

  // Every element gets initial_value of its global index: the same global weights for every
  // tensor-parallel degree (computed on the host, then copied to the device).
  void initialize(uint64_t seed);
  void zero_grads();

 private:
  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  int64_t numel_ = 0;
  int64_t expert_begin_ = 0;
  int tp_rank_ = 0;
  int tp_size_ = 1;
  Tensor params_;
  Tensor grads_;
  DType compute_dtype_ = DType::F32;
  Tensor compute_params_;  // (numel) in compute_dtype_, when it is not F32
};

}  // namespace tessel
