// EmulatedDevice: a DeviceBackend on the CPU, for testing on machines without a GPU what the
// device paths do around the kernels: which tensors are made where, what is copied back, which
// op gets which sizes. Its tensors live in host memory but say they are on cuda:N and carry
// this backend, so ops dispatch to it and Tensor::data<T>() refuses them, exactly as for a
// real device; a stray host read of "device" memory fails the test. Ops run the CPU launchers
// on F32 values (bitwise the CPU path); values of other dtypes are only recorded. Every op
// call is logged with the sizes ops.cc derived.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "core/device_backend.h"
#include "core/kernels/cpu/cpu_kernels.h"

namespace tessel {
namespace testing {

class EmulatedDevice final : public DeviceBackend {
 public:
  explicit EmulatedDevice(int index = 0) : index_(index) {}

  std::vector<std::string> calls;  // "matmul_forward first8 width24 N6 K8 OC8 bias", ...
  int64_t host_copies = 0;         // copies from this device into CPU memory

  Device device() const override { return Device::cuda(index_); }
  std::string describe() const override { return "emulated device (host memory, CPU kernels)"; }
  void synchronize() override {}
  AllocatorStats memory() const override { return {}; }
  Tensor empty(const Shape& shape, DType dtype) override {
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    std::shared_ptr<Storage> host = Storage::allocate(bytes, Device::cpu());
    // Poisoned (all bits set: NaN in every float type), as device memory is never zeroed for
    // free: a read before the first write shows up as NaN instead of passing by luck.
    if (bytes > 0) std::memset(host->data(), 0xFF, bytes);
    return Tensor::from_storage(Storage::wrap(
                                    host->data(), bytes, device(), [host] {}, this),
                                shape, dtype);
  }
  void fill_zero(const Tensor& t) override { std::memset(t.raw(), 0, t.nbytes()); }
  void copy(const Tensor& dst, const Tensor& src) override {
    if (dst.device().is_cpu()) ++host_copies;
    std::memmove(dst.raw(), src.raw(), dst.nbytes());
  }

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte, const Tensor* wpe, int64_t start,
                         int64_t rows) override {
    note("embedding_forward B" + n(tokens.size(0)) + " T" + n(tokens.size(1)) + " start" + n(start) + " rows" +
         n(rows) + (wpe ? " wpe" : ""));
    if (f32(out))
      cpu::embedding_forward(f(out), i(tokens), f(wte), wpe ? f(*wpe) : nullptr, tokens.size(0), tokens.size(1),
                             wte.size(1), start, rows);
  }
  void embedding_backward(const Tensor& dwte, const Tensor* dwpe, const Tensor& dout, const Tensor& tokens,
                          int64_t start, int64_t rows) override {
    note("embedding_backward rows" + n(rows));
    if (f32(dout))
      cpu::embedding_backward(f(dwte), dwpe ? f(*dwpe) : nullptr, f(dout), i(tokens), tokens.size(0), tokens.size(1),
                              dwte.size(1), start, rows);
  }
  void matmul_forward(const Tensor& out, int64_t first, int64_t width, const Tensor& inp, const Tensor& weight,
                      const Tensor* bias, int64_t N, int64_t K, int64_t OC, cpu::WeightLayout layout) override {
    note("matmul_forward first" + n(first) + " width" + n(width) + " N" + n(N) + " K" + n(K) + " OC" + n(OC) +
         (bias ? " bias" : ""));
    if (f32(out))
      cpu::matmul_forward(f(out) + first, width, f(inp), f(weight), bias ? f(*bias) : nullptr, N, K, OC, layout);
  }
  void matmul_backward(const Tensor* dinp, const Tensor& dweight, const Tensor* dbias, const Tensor& dout,
                       int64_t first, int64_t width, const Tensor& inp, const Tensor& weight, int64_t N, int64_t K,
                       int64_t OC, cpu::WeightLayout layout, bool accumulate) override {
    note("matmul_backward first" + n(first) + " width" + n(width) + " N" + n(N) + " K" + n(K) + " OC" + n(OC) +
         (accumulate ? " accumulate" : ""));
    if (f32(dout))
      cpu::matmul_backward(dinp ? f(*dinp) : nullptr, f(dweight), dbias ? f(*dbias) : nullptr, f(dout) + first, width,
                           f(inp), f(weight), N, K, OC, layout, accumulate);
  }
  void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias, int64_t N, int64_t C, float eps) override {
    note("layernorm_forward N" + n(N) + " C" + n(C));
    if (f32(out)) cpu::layernorm_forward(f(out), f(mean), f(rstd), f(inp), f(weight), f(bias), N, C, eps);
  }
  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const Tensor& mean, const Tensor& rstd, int64_t N,
                          int64_t C) override {
    note("layernorm_backward N" + n(N) + " C" + n(C));
    if (f32(dout))
      cpu::layernorm_backward(f(dinp), f(dweight), f(dbias), f(dout), f(inp), f(weight), f(mean), f(rstd), N, C);
  }
  void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight, int64_t N,
                       int64_t C, float eps) override {
    note("rmsnorm_forward N" + n(N) + " C" + n(C));
    if (f32(out)) cpu::rmsnorm_forward(f(out), f(rstd), f(inp), f(weight), N, C, eps);
  }
  void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                        const Tensor& weight, const Tensor& rstd, int64_t N, int64_t C) override {
    note("rmsnorm_backward N" + n(N) + " C" + n(C));
    if (f32(dout)) cpu::rmsnorm_backward(f(dinp), f(dweight), f(dout), f(inp), f(weight), f(rstd), N, C);
  }
  void gelu_forward(const Tensor& out, const Tensor& inp) override {
    note("gelu_forward n" + n(inp.numel()));
    if (f32(out)) cpu::gelu_forward(f(out), f(inp), inp.numel());
  }
  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) override {
    note("gelu_backward n" + n(inp.numel()));
    if (f32(dout)) cpu::gelu_backward(f(dinp), f(inp), f(dout), inp.numel());
  }
  void swiglu_forward(const Tensor& out, const Tensor& inp, int64_t N, int64_t F) override {
    note("swiglu_forward N" + n(N) + " F" + n(F));
    if (f32(out)) cpu::swiglu_forward(f(out), f(inp), N, F);
  }
  void swiglu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout, int64_t N, int64_t F) override {
    note("swiglu_backward N" + n(N) + " F" + n(F));
    if (f32(dout)) cpu::swiglu_backward(f(dinp), f(inp), f(dout), N, F);
  }
  void rope(const Tensor& x, int64_t ld, int64_t B, int64_t T, int64_t heads, int64_t D, float theta,
            bool backward) override {
    note(std::string(backward ? "rope_backward" : "rope_forward") + " ld" + n(ld) + " heads" + n(heads) + " D" + n(D));
    if (!f32(x)) return;
    if (backward)
      cpu::rope_backward(f(x), ld, B, T, heads, D, theta);
    else
      cpu::rope_forward(f(x), ld, B, T, heads, D, theta);
  }
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B, int64_t T, int64_t H,
                         int64_t KV, int64_t D) override {
    note("attention_forward B" + n(B) + " T" + n(T) + " H" + n(H) + " KV" + n(KV) + " D" + n(D));
    if (f32(qkv)) cpu::attention_forward(f(out), f(lse), f(qkv), B, T, H, KV, D);
  }
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                          const Tensor& lse, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) override {
    note("attention_backward H" + n(H) + " KV" + n(KV) + " D" + n(D));
    if (f32(qkv)) cpu::attention_backward(f(dqkv), f(dout), f(qkv), f(out), f(lse), B, T, H, KV, D);
  }
  void residual_forward(const Tensor& out, const Tensor& a, const Tensor& b) override {
    note("residual_forward n" + n(out.numel()));
    if (f32(out)) cpu::residual_forward(f(out), f(a), f(b), out.numel());
  }
  void moe_gather_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale, int64_t M,
                       int64_t C) override {
    note("moe_gather_rows M" + n(M) + " C" + n(C) + (scale ? " scale" : ""));
    if (f32(out)) cpu::moe_gather_rows(f(out), f(inp), i(rows), scale ? f(*scale) : nullptr, M, C);
  }
  void moe_scatter_add_rows(const Tensor& out, const Tensor& inp, const Tensor& rows, const Tensor* scale, int64_t N,
                            int64_t M, int64_t C) override {
    note("moe_scatter_add_rows N" + n(N) + " M" + n(M) + " C" + n(C) + (scale ? " scale" : ""));
    if (f32(out)) cpu::moe_scatter_add_rows(f(out), f(inp), i(rows), scale ? f(*scale) : nullptr, M, C);
  }
  void moe_row_dots(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& rows, int64_t M,
                    int64_t C) override {
    note("moe_row_dots M" + n(M) + " C" + n(C));
    if (f32(a)) cpu::moe_row_dots(f(out), f(a), f(b), i(rows), M, C);
  }
  int64_t classifier_workspace_bytes(int64_t N, int64_t V, int64_t) const override {
    return cpu::classifier_workspace_floats(N, V) * static_cast<int64_t>(sizeof(float));
  }
  void classifier_forward_backward(const Tensor& losses, const Tensor* dx, const Tensor* dweight, const Tensor& x,
                                   const Tensor& weight, const Tensor& targets, int64_t N, int64_t C, int64_t V,
                                   float dloss, const Tensor& workspace) override {
    note("classifier N" + n(N) + " C" + n(C) + " V" + n(V) + (dx ? " backward" : ""));
    if (f32(x))
      cpu::classifier_forward_backward(f(losses), dx ? f(*dx) : nullptr, dweight ? f(*dweight) : nullptr, f(x),
                                       f(weight), i(targets), N, C, V, dloss, static_cast<float*>(workspace.raw()));
  }

  void vocab_loss_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, const Tensor& logits,
                        const Tensor& targets, int64_t vocab_start) override {
    note("vocab_loss_stats rows" + n(logits.size(0)) + " Vl" + n(logits.size(1)) + " start" + n(vocab_start));
    if (f32(logits))
      cpu::vocab_loss_stats(f(row_max), f(row_sum), f(target_logit), f(logits), i(targets), logits.size(0),
                            logits.size(1), vocab_start);
  }
  void vocab_loss_rescale(const Tensor& row_sum, const Tensor& local_max, const Tensor& row_max) override {
    note("vocab_loss_rescale n" + n(row_sum.numel()));
    cpu::vocab_loss_rescale(f(row_sum), f(local_max), f(row_max), row_sum.numel());
  }
  void vocab_loss_finish(const Tensor& losses, const Tensor& row_sum, const Tensor& row_max,
                         const Tensor& target_logit) override {
    note("vocab_loss_finish n" + n(losses.numel()));
    cpu::vocab_loss_finish(f(losses), f(row_sum), f(row_max), f(target_logit), losses.numel());
  }
  void vocab_loss_dlogits(const Tensor& logits, const Tensor& targets, const Tensor& row_max, const Tensor& row_sum,
                          int64_t vocab_start, float dloss) override {
    note("vocab_loss_dlogits rows" + n(logits.size(0)));
    if (f32(logits))
      cpu::vocab_loss_dlogits(f(logits), i(targets), f(row_max), f(row_sum), logits.size(0), logits.size(1),
                              vocab_start, dloss);
  }

  // The optimizer's pieces: the CPU's own launchers (F32 only: the emulator keeps no compute
  // copies).
  double sum_of_squares(const Tensor& x) override {
    note("sum_of_squares n" + n(x.numel()));
    return cpu::sum_of_squares(f(x), x.numel());
  }
  std::vector<double> sums_of_squares(const std::vector<Tensor>& pieces) override {
    note("sums_of_squares pieces" + n(static_cast<int64_t>(pieces.size())));
    std::vector<double> sums;
    for (const Tensor& x : pieces) sums.push_back(cpu::sum_of_squares(f(x), x.numel()));
    return sums;
  }
  void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWScalars& k,
             const Tensor& param_copy) override {
    note("adamw n" + n(param.numel()) + (param_copy.defined() ? " copy" : ""));
    const cpu::AdamWRange range{f(param), f(grad), f(m), f(v), param.numel(), k};
    cpu::adamw_update(&range, 1);
    if (param_copy.defined() && f32(param_copy)) std::memcpy(param_copy.raw(), param.raw(), param.nbytes());
  }
  void cast(const Tensor& dst, const Tensor& src) override {
    note(std::string("cast ") + dtype_name(src.dtype()) + " " + dtype_name(dst.dtype()));
    if (f32(dst) && f32(src)) std::memmove(dst.raw(), src.raw(), dst.nbytes());
  }

 private:
  void note(const std::string& s) { calls.push_back(s); }
  static std::string n(int64_t v) { return std::to_string(v); }
  static bool f32(const Tensor& t) { return t.dtype() == DType::F32; }
  static float* f(const Tensor& t) { return static_cast<float*>(t.raw()); }
  static int32_t* i(const Tensor& t) { return static_cast<int32_t*>(t.raw()); }

  int index_;
};

}  // namespace testing
}  // namespace tessel
