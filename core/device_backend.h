// DeviceBackend: the ops of a device other than the CPU, as ops.cc hands them over.
//
// A device's tensors carry the backend that made them (Storage::backend(): the CUDA
// backend's DeviceContext, core/kernels/cuda/device_context.h), so an op finds where to queue
// its work from its operands, with no global "current device". core/ops.cc checks every call
// (shapes, dtypes, that all operands share one backend) and then calls the backend of its
// output; CPU tensors carry none and go to core/kernels/cpu. The semantics of each method are
// those of the op of the same name in core/ops.h. Storage types: activations and weights
// F32, BF16 or F16, all of one op's in the same type; parameter gradients, norm statistics,
// attention's logsumexp and losses F32.
// Work is queued, not waited for: a backend's methods return before the device has run them,
// except a copy into CPU memory, which returns once the data is there.
// A tensor must not be used in an op after its backend is gone.
#pragma once

#include <cstdint>

#include <string>
#include <vector>

#include "core/adamw_scalars.h"
#include "core/caching_allocator.h"
#include "core/kernels/cpu/cpu_kernels.h"
#include "core/tensor.h"

namespace tessel {

class DeviceBackend;

// A tensor in CPU memory when `device` is null, else made by that backend.
Tensor empty_on(DeviceBackend* device, const Shape& shape, DType dtype);
// The same, zero-filled: on the CPU straight from the kernel's zero pages (Tensor::zeros, no
// pass over the memory), on a device by the backend's fill.
Tensor zeros_on(DeviceBackend* device, const Shape& shape, DType dtype);

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // Memory: uninitialized tensors on the device, zeroing, and copies between any two tensors of
  // the same numel and dtype (device or CPU, either way).
  virtual Device device() const = 0;
  virtual std::string describe() const = 0;  // the device's name and size, for logs
  // Blocks the host until every queued operation has finished (benchmarks; never in a step).
  virtual void synchronize() = 0;
  // The device allocator's statistics (bytes allocated, reserved, their peaks).
  virtual AllocatorStats memory() const = 0;
  virtual Tensor empty(const Shape& shape, DType dtype) = 0;
  virtual void fill_zero(const Tensor& t) = 0;
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;

  virtual void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                                 int64_t vocab_start, int64_t rows) = 0;
  virtual void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                                  int64_t vocab_start, int64_t rows) = 0;
  // out / dout: a column block [first, first + OC) of rows of `width` elements.
  virtual void matmul_forward(const Tensor& out, int64_t first, int64_t width, const Tensor& inp, const Tensor& weight,
                              const Tensor* bias, int64_t N, int64_t K, int64_t OC, cpu::WeightLayout layout) = 0;
  virtual void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                               int64_t first, int64_t width, const Tensor& inp, const Tensor& weight, int64_t N,
                               int64_t K, int64_t OC, cpu::WeightLayout layout, bool accumulate_dinp) = 0;
  virtual void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                                 const Tensor& weight, const Tensor& bias, int64_t N, int64_t C, float eps) = 0;
  virtual void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                                  const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                                  int64_t N, int64_t C) = 0;
  virtual void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight,
                               int64_t N, int64_t C, float eps) = 0;
  virtual void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                                const Tensor& weight, const Tensor& rstd, int64_t N, int64_t C) = 0;
  virtual void gelu_forward(const Tensor& out, const Tensor& inp) = 0;
  virtual void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) = 0;
  virtual void swiglu_forward(const Tensor& out, const Tensor& inp, int64_t N, int64_t F) = 0;
  virtual void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, int64_t N, int64_t F) = 0;
  // Rotates `heads` heads of width D at the start of each row (stride ld); sign -1: backward.
  virtual void rope(const Tensor& x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta,
                    bool backward) = 0;
  virtual void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T,
                                 int64_t H, int64_t KV, int64_t D) = 0;
  virtual void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                  const Tensor& lse, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) = 0;
  virtual void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // Mixture-of-Experts permutation (core/ops.h): rows I32 (M) and scale F32 (M) or null on the
  // device; the scatter's out has N rows.
  virtual void moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale, int64_t M,
                               int64_t C) = 0;
  virtual void moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale,
                                    int64_t N, int64_t M, int64_t C) = 0;
  virtual void moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows, int64_t M,
                            int64_t C) = 0;
  // Bytes of workspace classifier_forward_backward needs for N rows of a V-word vocabulary
  // whose activations are stored in `element_bytes`-byte elements.
  virtual int64_t classifier_workspace_bytes(int64_t N, int64_t V, int64_t element_bytes) const = 0;
  virtual void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight,
                                           const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t N,
                                           int64_t C, int64_t V, float dloss, const Tensor& workspace) = 0;

  // Vocab-parallel cross-entropy's pieces (core/kernels/cpu/cpu_kernels.h): logits in the
  // values' type, the statistics F32; the kernels of a row see only this rank's vocabulary.
  virtual void vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit,
                                const Tensor& logits, const Tensor& targets, int64_t vocab_start) = 0;
  virtual void vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max) = 0;
  virtual void vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max,
                                 const Tensor& target_logit) = 0;
  virtual void vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max,
                                  const Tensor& row_sum, int64_t vocab_start, float dloss) = 0;

  // The optimizer's pieces. Σ x² over an F32 tensor, read back on the host (waits).
  virtual double sum_of_squares(const Tensor& x) = 0;
  // Σ x² of each F32 piece (views of this device's memory), each reduced as sum_of_squares
  // reduces a tensor, all read back together: one wait for any number of pieces.
  virtual std::vector<double> sums_of_squares(const std::vector<Tensor>& pieces) = 0;
  // One fused AdamW update over F32 views of one length (core/adamw_scalars.h's expression).
  // `param_copy`, when defined, also receives the updated weights in its own storage type: the
  // compute copy (bf16, fp16) of fp32 master weights.
  virtual void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                     const AdamWScalars& scalars, const Tensor& param_copy) = 0;
  // dst ← src converted to dst's dtype (F32, BF16, F16; round to nearest even).
  virtual void cast(const Tensor& dst, const Tensor& src) = 0;
};

}  // namespace tessel
