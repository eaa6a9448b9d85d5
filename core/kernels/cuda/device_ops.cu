// DeviceContext as a DeviceBackend: ops.cc has checked shapes, dtypes and that every operand
// is this context's; each method picks the launcher for the values' storage type and queues
// it on the compute stream.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "core/error.h"
#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/cuda_kernels.h"
#include "core/kernels/cuda/device_context.h"

namespace tessel {
namespace cuda {
namespace {

// Calls fn with a value of the C++ type stored as `dtype` (its type is what fn reads).
template <typename Fn>
void with_storage_type(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32: fn(float{}); return;
    case DType::BF16: fn(__nv_bfloat16{}); return;
    case DType::F16: fn(__half{}); return;
    default: TESSEL_FAIL() << "CUDA ops store values as F32, BF16 or F16, not " << dtype_name(dtype);
  }
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw());
}
template <typename T>
T* ptr(const Tensor* t) {
  return t ? static_cast<T*>(t->raw()) : nullptr;
}

// Scratch for the column sums of a launcher (cuda_kernels.h): `sums` gradients summed over N rows
// of C columns. From the allocator, like attention's delta: free for the stream's later work once
// the caller returns. Null (nothing allocated) when the rows fit one chunk.
struct ColumnSumScratch {
  Tensor tensor;
  float* ptr = nullptr;
  int64_t floats = 0;
};

ColumnSumScratch column_sum_scratch(DeviceContext& ctx, int sums, int64_t N, int64_t C) {
  ColumnSumScratch s;
  s.floats = sums * column_sum_scratch_floats(N, C);
  if (s.floats > 0) {
    s.tensor = ctx.empty({s.floats}, DType::F32);
    s.ptr = ptr<float>(s.tensor);
  }
  return s;
}

// Whether attention with head dim D runs the tensor-core kernel: asked for and built for D.
// Callers ask only for 16-bit storage (the products take 16-bit inputs; fp32 has no instance).
bool runs_flash(AttentionKernel choice, int64_t D) {
  return choice == AttentionKernel::kFlash && flash_attention_supported(D);
}

}  // namespace

void DeviceContext::embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe,
                                      int64_t vocab_start, int64_t rows) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::embedding_forward(ptr<T>(out), ptr<int32_t>(tokens), ptr<T>(wte), ptr<T>(wpe), tokens.size(0), tokens.size(1),
                            wte.size(1), vocab_start, rows, compute());
  });
}

void DeviceContext::embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                                       int64_t vocab_start, int64_t rows) {
  const int64_t B = tokens.size(0), T_ = tokens.size(1), C = dwte.size(1);
  const ColumnSumScratch scratch = column_sum_scratch(*this, dwpe != nullptr ? 1 : 0, B, T_ * C);
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::embedding_backward(ptr<float>(dwte), ptr<float>(dwpe), ptr<T>(dout), ptr<int32_t>(tokens), B, T_, C,
                             vocab_start, rows, scratch.ptr, scratch.floats, compute());
  });
}

void DeviceContext::matmul_forward(const Tensor& out, int64_t first, int64_t width, const Tensor& inp,
                                   const Tensor& weight, const Tensor* bias, int64_t N, int64_t K, int64_t OC,
                                   cpu::WeightLayout layout) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::matmul_forward(gemm_, ptr<T>(out) + first, width, ptr<T>(inp), ptr<T>(weight), ptr<T>(bias), N, K, OC, layout,
                         compute());
  });
}

void DeviceContext::matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                                    int64_t first, int64_t width, const Tensor& inp, const Tensor& weight, int64_t N,
                                    int64_t K, int64_t OC, cpu::WeightLayout layout, bool accumulate_dinp) {
  const ColumnSumScratch scratch = column_sum_scratch(*this, dbias != nullptr ? 1 : 0, N, OC);
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::matmul_backward(gemm_, ptr<T>(dinp), ptr<float>(dweight), ptr<float>(dbias), ptr<T>(dout) + first, width,
                          ptr<T>(inp), ptr<T>(weight), N, K, OC, layout, accumulate_dinp, scratch.ptr, scratch.floats,
                          compute());
  });
}

void DeviceContext::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                                      const Tensor& weight, const Tensor& bias, int64_t N, int64_t C, float eps) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::layernorm_forward(ptr<T>(out), ptr<float>(mean), ptr<float>(rstd), ptr<T>(inp), ptr<T>(weight), ptr<T>(bias),
                            N, C, eps, compute());
  });
}

void DeviceContext::layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                                       const Tensor& dout, const Tensor& inp, const Tensor& weight, const Tensor& mean,
                                       const Tensor& rstd, int64_t N, int64_t C) {
  const ColumnSumScratch scratch = column_sum_scratch(*this, 2, N, C);  // dweight and dbias
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::layernorm_backward(ptr<T>(dinp), ptr<float>(dweight), ptr<float>(dbias), ptr<T>(dout), ptr<T>(inp),
                             ptr<T>(weight), ptr<float>(mean), ptr<float>(rstd), N, C, scratch.ptr, scratch.floats,
                             compute());
  });
}

void DeviceContext::rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight,
                                    int64_t N, int64_t C, float eps) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::rmsnorm_forward(ptr<T>(out), ptr<float>(rstd), ptr<T>(inp), ptr<T>(weight), N, C, eps, compute());
  });
}

void DeviceContext::rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                                     const Tensor& weight, const Tensor& rstd, int64_t N, int64_t C) {
  const ColumnSumScratch scratch = column_sum_scratch(*this, 1, N, C);
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::rmsnorm_backward(ptr<T>(dinp), ptr<float>(dweight), ptr<T>(dout), ptr<T>(inp), ptr<T>(weight),
                           ptr<float>(rstd), N, C, scratch.ptr, scratch.floats, compute());
  });
}

void DeviceContext::gelu_forward(const Tensor& out, const Tensor& inp) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::gelu_forward(ptr<T>(out), ptr<T>(inp), inp.numel(), compute());
  });
}

void DeviceContext::gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) {
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::gelu_backward(ptr<T>(dinp), ptr<T>(inp), ptr<T>(dout), inp.numel(), compute());
  });
}

void DeviceContext::swiglu_forward(const Tensor& out, const Tensor& inp, int64_t N, int64_t F) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::swiglu_forward(ptr<T>(out), ptr<T>(inp), N, F, compute());
  });
}

void DeviceContext::swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, int64_t N, int64_t F) {
  with_storage_type(dout.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::swiglu_backward(ptr<T>(dinp), ptr<T>(inp), ptr<T>(dout), N, F, compute());
  });
}

void DeviceContext::rope(const Tensor& x, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta,
                         bool backward) {
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (backward)
      cuda::rope_backward(ptr<T>(x), ld, B, T_, heads, D, theta, compute());
    else
      cuda::rope_forward(ptr<T>(x), ld, B, T_, heads, D, theta, compute());
  });
}

void DeviceContext::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T_,
                                      int64_t H, int64_t KV, int64_t D) {
  with_storage_type(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, float>::value) {
      if (runs_flash(attention_kernel_, D)) {
        cuda::flash_attention_forward(ptr<T>(out), ptr<float>(lse), ptr<T>(qkv), B, T_, H, KV, D, compute());
        return;
      }
    }
    cuda::attention_forward(ptr<T>(out), ptr<float>(lse), ptr<T>(qkv), B, T_, H, KV, D, compute());
  });
}

void DeviceContext::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                       const Tensor& lse, int64_t B, int64_t T_, int64_t H, int64_t KV, int64_t D) {
  // The softmax's row term, one float per query row: scratch from the allocator, freed (for
  // reuse by the stream's later work) when this call returns.
  Tensor delta = empty({B * H * T_}, DType::F32);
  with_storage_type(qkv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, float>::value) {
      if (runs_flash(attention_kernel_, D)) {
        cuda::flash_attention_backward(ptr<T>(dqkv), ptr<float>(delta), ptr<T>(dout), ptr<T>(qkv), ptr<T>(out),
                                       ptr<float>(lse), B, T_, H, KV, D, compute());
        return;
      }
    }
    cuda::attention_backward(ptr<T>(dqkv), ptr<float>(delta), ptr<T>(dout), ptr<T>(qkv), ptr<T>(out), ptr<float>(lse),
                             B, T_, H, KV, D, compute());
  });
}

void DeviceContext::residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::residual_forward(ptr<T>(out), ptr<T>(a), ptr<T>(b), out.numel(), compute());
  });
}

void DeviceContext::moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale,
                                    int64_t M, int64_t C) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::moe_gather_rows(ptr<T>(out), ptr<T>(inp), ptr<int32_t>(rows), scale ? ptr<float>(*scale) : nullptr, M, C,
                          compute());
  });
}

void DeviceContext::moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale,
                                         int64_t N, int64_t M, int64_t C) {
  with_storage_type(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::moe_scatter_add_rows(ptr<T>(out), ptr<T>(inp), ptr<int32_t>(rows), scale ? ptr<float>(*scale) : nullptr, N, M,
                               C, compute());
  });
}

void DeviceContext::moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows, int64_t M,
                                 int64_t C) {
  with_storage_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::moe_row_dots(ptr<float>(out), ptr<T>(a), ptr<T>(b), ptr<int32_t>(rows), M, C, compute());
  });
}

int64_t DeviceContext::classifier_workspace_bytes(int64_t N, int64_t V, int64_t element_bytes) const {
  return static_cast<int64_t>(cuda::classifier_workspace_bytes(N, V, static_cast<size_t>(element_bytes)));
}

void DeviceContext::classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight,
                                                const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t N,
                                                int64_t C, int64_t V, float dloss, const Tensor& workspace) {
  with_storage_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::classifier_forward_backward(gemm_, ptr<float>(losses), ptr<T>(dx), ptr<float>(dweight), ptr<T>(x),
                                      ptr<T>(weight), ptr<int32_t>(targets), N, C, V, dloss, workspace.raw(),
                                      compute());
  });
}

void DeviceContext::vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit,
                                     const Tensor& logits, const Tensor& targets, int64_t vocab_start) {
  with_storage_type(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::vocab_loss_stats(ptr<float>(row_max), ptr<float>(row_sum), ptr<float>(target_logit), ptr<T>(logits),
                           ptr<int32_t>(targets), logits.size(0), logits.size(1), vocab_start, compute());
  });
}

void DeviceContext::vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max) {
  cuda::vocab_loss_rescale(ptr<float>(row_sum), ptr<float>(local_max), ptr<float>(row_max), row_sum.numel(), compute());
}

void DeviceContext::vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max,
                                      const Tensor& target_logit) {
  cuda::vocab_loss_finish(ptr<float>(losses), ptr<float>(row_sum), ptr<float>(row_max), ptr<float>(target_logit),
                          losses.numel(), compute());
}

void DeviceContext::vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max,
                                       const Tensor& row_sum, int64_t vocab_start, float dloss) {
  with_storage_type(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cuda::vocab_loss_dlogits(ptr<T>(logits), ptr<int32_t>(targets), ptr<float>(row_max), ptr<float>(row_sum),
                             logits.size(0), logits.size(1), vocab_start, dloss, compute());
  });
}

double DeviceContext::sum_of_squares(const Tensor& x) { return sums_of_squares({x}).front(); }

std::vector<double> DeviceContext::sums_of_squares(const std::vector<Tensor>& pieces) {
  // One fixed-order reduction per piece into its own slot, queued back to back; one copy back.
  const int64_t n = static_cast<int64_t>(pieces.size());
  std::vector<float> host(static_cast<size_t>(n));
  if (n == 0) return {};
  Tensor partials = empty({global_norm_partials()}, DType::F32);
  Tensor sums = empty({n}, DType::F32);
  for (int64_t i = 0; i < n; ++i) {
    cuda::sum_squares(ptr<float>(sums) + i, ptr<float>(partials), ptr<float>(pieces[static_cast<size_t>(i)]),
                      pieces[static_cast<size_t>(i)].numel(), compute());
  }
  TESSEL_CUDA_CHECK(cudaMemcpyAsync(host.data(), sums.raw(), static_cast<size_t>(n) * sizeof(float),
                                    cudaMemcpyDeviceToHost, compute()));
  synchronize();
  return std::vector<double>(host.begin(), host.end());
}

void DeviceContext::adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                          const AdamWScalars& scalars, const Tensor& param_copy) {
  const DType copy = param_copy.defined() ? param_copy.dtype() : DType::F32;
  with_storage_type(copy, [&](auto tag) {
    using T = decltype(tag);
    T* out = param_copy.defined() ? ptr<T>(param_copy) : nullptr;
    cuda::adamw_update(ptr<float>(param), out, ptr<float>(grad), ptr<float>(m), ptr<float>(v), param.numel(), scalars,
                       compute());
  });
}

void DeviceContext::cast(const Tensor& dst, const Tensor& src) {
  TESSEL_CHECK(dst.numel() == src.numel()) << "cast: " << src.str() << " into " << dst.str();
  if (dst.dtype() == src.dtype()) {
    copy(dst, src);
    return;
  }
  const bool from_f32 = src.dtype() == DType::F32, to_f32 = dst.dtype() == DType::F32;
  TESSEL_CHECK(from_f32 || to_f32) << "cast (CUDA): " << src.str() << " into " << dst.str() << ": one side must be F32";
  with_storage_type(from_f32 ? dst.dtype() : src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, float>::value) {
      if (from_f32)
        cuda::cast(ptr<T>(dst), ptr<float>(src), src.numel(), compute());
      else
        cuda::cast(ptr<float>(dst), ptr<T>(src), src.numel(), compute());
    }
  });
}

}  // namespace cuda
}  // namespace tessel
