// DeviceContext: one process's handle on one GPU for the step: the compute stream, the
// caching allocator every device tensor comes from, and the cuBLASLt Gemm. It is also the
// DeviceBackend of the tensors it makes (core/device_backend.h): core/ops.cc sends their ops
// here, and device_ops.cu queues the CUDA launchers on compute() in the tensors' storage type.
//
// Created once per rank (it selects the device) and passed to whoever launches work there, as
// Topology and communicators are: there is no global device state. Tensors made here hold
// their block of the allocator until the last view of them is gone; the allocator outlives the
// context if such tensors do. Work is queued on compute() and nothing waits for it except the
// calls that say they block (to_host, synchronize). Communication runs on its own stream (the
// NCCL communicator's), ordered against compute() by events. Not thread-safe.
#pragma once

#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "core/caching_allocator.h"
#include "core/device_backend.h"
#include "core/kernels/cuda/gemm.h"
#include "core/kernels/cuda/stream.h"
#include "core/tensor.h"

namespace tessel {
namespace cuda {

// Which kernel runs attention in bf16 and fp16: the reference (attention.cu, one warp per row,
// CUDA cores) or the tensor-core one (flash_attention.cu, head dims where
// flash_attention_supported). fp32 and other head dims always run the reference.
enum class AttentionKernel { kReference, kFlash };
// run.attention: auto. The flash kernel since the GPU window of 2026-12-04 (docs/gpu.md, Runs):
// every [gpu] parity case passed on an H200, compute-sanitizer found no error or race in it, and
// it ran 140-230x faster than the reference at gpt2-124m's and llama-1b's shapes.
constexpr AttentionKernel kDefaultAttentionKernel = AttentionKernel::kFlash;

class DeviceContext final : public DeviceBackend {
 public:
  explicit DeviceContext(int device);
  ~DeviceContext() override;
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int index() const { return device_; }
  cudaStream_t compute() const { return compute_.get(); }
  Gemm& gemm() { return gemm_; }
  CachingAllocator& allocator();
  const CachingAllocator& memory_allocator() const;

  // Uninitialized / zero-filled device tensors for use on compute().
  Device device() const override { return Device::cuda(device_); }
  Tensor empty(const Shape& shape, DType dtype) override;
  Tensor zeros(const Shape& shape, DType dtype);
  void fill_zero(const Tensor& t) override;  // queued on compute()
  // A device copy of a CPU tensor (queued on compute(); the host buffer may be reused at once,
  // because pageable copies are staged before the call returns).
  Tensor to_device(const Tensor& host);
  // A CPU copy of a device tensor; blocks until compute() has produced it.
  Tensor to_host(const Tensor& device_tensor);
  // dst ← src, any pair of devices, same numel and dtype; queued on compute(), and waited for
  // when dst is CPU memory.
  void copy(const Tensor& dst, const Tensor& src) override;
  void synchronize() override { compute_.synchronize(); }
  AllocatorStats memory() const override { return memory_allocator().stats(); }

  // "NVIDIA H200, 139.8 GiB, sm_90" for the start-up log.
  std::string describe() const override;

  // The attention kernel of later attention_forward/backward calls. Both kernels define lse
  // alike, but change it between steps, not between a forward and its backward, so that a step's
  // gradients come from one kernel. Default: kDefaultAttentionKernel.
  void set_attention_kernel(AttentionKernel kernel) { attention_kernel_ = kernel; }
  AttentionKernel attention_kernel() const { return attention_kernel_; }

  // DeviceBackend (device_ops.cu).
  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                         int64_t vocab_start, int64_t rows) override;
  void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                          int64_t vocab_start, int64_t rows) override;
  void matmul_forward(const Tensor& out, int64_t first, int64_t width, const Tensor& inp, const Tensor& weight,
                      const Tensor* bias, int64_t N, int64_t K, int64_t OC, cpu::WeightLayout layout) override;
  void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                       int64_t first, int64_t width, const Tensor& inp, const Tensor& weight, int64_t N, int64_t K,
                       int64_t OC, cpu::WeightLayout layout, bool accumulate_dinp) override;
  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias, int64_t N, int64_t C, float eps) override;
  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd, int64_t N,
                          int64_t C) override;
  void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight, int64_t N,
                       int64_t C, float eps) override;
  void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                        const Tensor& weight, const Tensor& rstd, int64_t N, int64_t C) override;
  void gelu_forward(const Tensor& out, const Tensor& inp) override;
  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) override;
  void swiglu_forward(const Tensor& out, const Tensor& inp, int64_t N, int64_t F) override;
  void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, int64_t N, int64_t F) override;
  void rope(const Tensor& x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta,
            bool backward) override;
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T, int64_t H,
                         int64_t KV, int64_t D) override;
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& lse, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) override;
  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale, int64_t M,
                       int64_t C) override;
  void moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale, int64_t N,
                            int64_t M, int64_t C) override;
  void moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows, int64_t M,
                    int64_t C) override;
  int64_t classifier_workspace_bytes(int64_t N, int64_t V, int64_t element_bytes) const override;
  void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                                   const Tensor& weight, const Tensor& targets, int64_t N, int64_t C, int64_t V,
                                   float dloss, const Tensor& workspace) override;
  void vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, const Tensor& logits,
                        const Tensor& targets, int64_t vocab_start) override;
  void vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max) override;
  void vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max,
                         const Tensor& target_logit) override;
  void vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max, const Tensor& row_sum,
                          int64_t vocab_start, float dloss) override;
  double sum_of_squares(const Tensor& x) override;
  std::vector<double> sums_of_squares(const std::vector<Tensor>& pieces) override;
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWScalars& scalars,
             const Tensor& param_copy) override;
  void cast(const Tensor& dst, const Tensor& src) override;

 private:
  struct Memory;  // the CUDA MemoryBackend and the allocator over it, shared with tensors
  int device_;
  Stream compute_;
  Gemm gemm_;
  std::shared_ptr<Memory> memory_;
  AttentionKernel attention_kernel_ = kDefaultAttentionKernel;
};

}  // namespace cuda
}  // namespace tessel
