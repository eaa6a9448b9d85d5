// Rotary position embedding on CUDA, Hugging Face (rotate_half) convention, in place. One
// thread per rotated pair; the angle is computed in double, as the CPU reference's table is, so
// that long positions keep their precision (a float angle t·inv_freq loses ~1e-4 rad at t = 8k).
#include "core/kernels/cuda/cuda_common.cuh"
#include "core/kernels/cuda/cuda_kernels.h"

namespace tessel {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Pairs (i, i + D/2) of each head rotate by t·inv_freq_i; sign -1 rotates back.
template <typename T>
__global__ void rope_kernel(T* x, int64_t ld, int64_t BT, int64_t T_, int64_t heads, int64_t D, double theta,
                            float sign) {
  const int64_t half = D / 2;
  const int64_t n = BT * heads * half;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t h = (idx / half) % heads;
    const int64_t r = idx / (half * heads);
    const double inv_freq = pow(theta, -2.0 * double(i) / double(D));
    double s, c;
    sincos(double(r % T_) * inv_freq, &s, &c);
    const float cf = float(c), sf = sign * float(s);
    T* v = x + r * ld + h * D;
    const float a = to_float(v[i]), b = to_float(v[i + half]);
    v[i] = from_float<T>(a * cf - b * sf);
    v[i + half] = from_float<T>(b * cf + a * sf);
  }
}

template <typename T>
void rotate(T* x, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta, float sign,
            cudaStream_t stream) {
  TESSEL_CHECK(D % 2 == 0) << "rope: head dim " << D << " must be even";
  const int64_t n = B * T_ * heads * (D / 2);
  if (n == 0) return;
  rope_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(x, ld, B * T_, T_, heads, D, double(theta), sign);
  TESSEL_CUDA_LAUNCH_CHECK();
}

}  // namespace

template <typename T>
void rope_forward(T* x, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta, cudaStream_t stream) {
  rotate(x, ld, B, T_, heads, D, theta, 1.0f, stream);
}

template <typename T>
void rope_backward(T* dx, int64_t ld, int64_t B, int64_t T_, int64_t heads, int64_t D, float theta,
                   cudaStream_t stream) {
  rotate(dx, ld, B, T_, heads, D, theta, -1.0f, stream);  // orthogonal: backward rotates back
}

#define INSTANTIATE(T)                                                                                 \
  template void rope_forward<T>(T*, int64_t, int64_t, int64_t, int64_t, int64_t, float, cudaStream_t); \
  template void rope_backward<T>(T*, int64_t, int64_t, int64_t, int64_t, int64_t, float, cudaStream_t);
TESSEL_FOR_STORAGE_TYPES(INSTANTIATE)

}  // namespace cuda
}  // namespace tessel
