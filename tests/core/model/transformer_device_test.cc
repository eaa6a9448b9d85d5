// The Transformer on a device backend: its parameters, gradients and activations are made by
// the backend, its ops dispatch there, and only the losses come back to the host. Run here on
// the emulated device (tests/core/emulated_device.h), whose F32 ops are the CPU's, so the
// device model must reproduce the CPU model bitwise; any host read of device memory throws.
// The same model on the CUDA backend is checked against the CPU in the [gpu] cases.
#include <cstring>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/init_rng.h"
#include "core/model/transformer.h"
#include "tests/core/emulated_device.h"

using namespace tessel;
using testing::EmulatedDevice;

namespace {

// "moe": the LLaMA with 4 experts (top-2, a gated shared expert, aux-free balancing) in its
// last two layers.
ModelConfig tiny(const std::string& arch) {
  const std::string moe = arch == "moe" ? ", moe: {experts: 4, top_k: 2, shared_experts: 1, shared_gate: true, "
                                          "expert_ffn_dim: 8, balance: aux_free, first_dense: 1}"
                                        : "";
  const std::string yaml = "model: {arch: " + std::string(arch == "moe" ? "llama" : arch) +
                           ", vocab_size: 40, seq_len: 8, layers: 3, d_model: 16, heads: 4, kv_heads: 2" + moe + "}\n";
  return parse_config(yaml, "tiny").model;
}

Tensor random_tokens(uint64_t seed) {
  Tensor t = Tensor::empty({2, 8}, DType::I32);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<int32_t>()[i] = static_cast<int32_t>(uniform_at(seed, 1, static_cast<uint64_t>(i)) * 40);
  return t;
}

Tensor on(EmulatedDevice& device, const Tensor& host) {
  Tensor t = device.empty(host.shape(), host.dtype());
  t.copy_from(host);
  return t;
}

bool same_bits(const Tensor& host, const Tensor& device) {
  Tensor back = Tensor::empty(device.shape(), device.dtype());
  back.copy_from(device);
  return std::memcmp(host.raw(), back.raw(), host.nbytes()) == 0;
}

}  // namespace

TEST_CASE("a model on a device backend matches the CPU model bitwise and reads back only its losses",
          "[cpu][model][device]") {
  for (const std::string arch : {"gpt2", "llama"}) {
    for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
      INFO(arch << ", recompute " << recompute);
      EmulatedDevice device;
      TransformerOptions cpu_options(2, 8);
      cpu_options.recompute = recompute;
      Transformer cpu(tiny(arch), cpu_options);
      TransformerOptions dev_options(2, 8);
      dev_options.recompute = recompute;
      dev_options.device = &device;
      Transformer dev(tiny(arch), dev_options);
      CHECK(dev.parameters().params().device() == Device::cuda(0));
      CHECK(dev.parameters().grads().device() == Device::cuda(0));
      cpu.parameters().initialize(5);
      dev.parameters().initialize(5);
      CHECK(same_bits(cpu.parameters().params(), dev.parameters().params()));
      cpu.parameters().zero_grads();
      dev.parameters().zero_grads();
      const int64_t copies_before = device.host_copies;
      // Two micro-batches accumulate, as in a step.
      for (uint64_t mb = 0; mb < 2; ++mb) {
        const Tensor tokens = random_tokens(10 + mb), targets = random_tokens(20 + mb);
        const float a = cpu.forward_backward(tokens, targets, 0.5f);
        const float b = dev.forward_backward(on(device, tokens), on(device, targets), 0.5f);
        CHECK(a == b);
      }
      CHECK(device.host_copies - copies_before == 2);  // one copy of the losses per micro-batch
      CHECK(same_bits(cpu.parameters().grads(), dev.parameters().grads()));
      const Tensor tokens = random_tokens(30), targets = random_tokens(31);
      CHECK(cpu.forward_loss(tokens, targets) == dev.forward_loss(on(device, tokens), on(device, targets)));
      CHECK(cpu.logits_at(tokens, 5) == dev.logits_at(on(device, tokens), 5));
    }
  }
}

TEST_CASE("an MoE model with CLA on a device backend matches the CPU model bitwise", "[cpu][model][device][moe]") {
  // The routing reads the router's logits (and the gate's, and the selection bias) on the host
  // and hands the routing back: the device model still reproduces the CPU's bits.
  const ModelConfig c =
      parse_config(
          "model: {arch: llama, vocab_size: 40, seq_len: 8, layers: 4, d_model: 16, heads: 4, kv_heads: 2, "
          "cla_share: 2, moe: {experts: 4, top_k: 2, shared_experts: 1, shared_gate: true, expert_ffn_dim: 8, "
          "capacity_factor: 1.0, overflow: reroute, balance: aux_free, first_dense: 1}}\n",
          "tiny-moe")
          .model;
  for (Recompute recompute : {Recompute::kNone, Recompute::kFull}) {
    INFO("recompute " << recompute);
    EmulatedDevice device;
    TransformerOptions cpu_options(2, 8);
    cpu_options.recompute = recompute;
    Transformer cpu(c, cpu_options);
    TransformerOptions dev_options(2, 8);
    dev_options.recompute = recompute;
    dev_options.device = &device;
    Transformer dev(c, dev_options);
    cpu.parameters().initialize(5);
    dev.parameters().initialize(5);
    cpu.parameters().zero_grads();
    dev.parameters().zero_grads();
    for (uint64_t mb = 0; mb < 2; ++mb) {
      const Tensor tokens = random_tokens(10 + mb), targets = random_tokens(20 + mb);
      CHECK(cpu.forward_backward(tokens, targets, 0.5f) ==
            dev.forward_backward(on(device, tokens), on(device, targets), 0.5f));
    }
    CHECK(same_bits(cpu.parameters().grads(), dev.parameters().grads()));
    REQUIRE(cpu.moe_stats().size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(cpu.moe_stats()[i].pack() == dev.moe_stats()[i].pack());
    REQUIRE(dev.selection_biases().size() == 3);
    CHECK(dev.selection_biases()[0].device() == Device::cuda(0));
  }
}

TEST_CASE("a model on a device backend keeps several activation slots in flight like the CPU model",
          "[cpu][model][device]") {
  EmulatedDevice device;
  const ModelPart part = ModelPart::whole(3, 2);
  TransformerOptions cpu_options(2, 8);
  cpu_options.part = part;
  Transformer cpu(tiny("llama"), cpu_options);
  TransformerOptions dev_options(2, 8);
  dev_options.part = part;
  dev_options.device = &device;
  Transformer dev(tiny("llama"), dev_options);
  cpu.parameters().initialize(7);
  dev.parameters().initialize(7);
  cpu.parameters().zero_grads();
  dev.parameters().zero_grads();
  // Other tokens in each slot, passed from the host: each slot keeps its own device copy from
  // forward for its backward.
  const Tensor tokens[2] = {random_tokens(1), random_tokens(3)}, targets[2] = {random_tokens(2), random_tokens(4)};
  for (int slot = 0; slot < 2; ++slot) {
    cpu.forward(tokens[slot], slot);
    dev.forward(tokens[slot], slot);
  }
  for (int slot = 0; slot < 2; ++slot) {
    CHECK(cpu.backward(tokens[slot], targets[slot], 0.5f, slot) ==
          dev.backward(tokens[slot], targets[slot], 0.5f, slot));
  }
  CHECK(same_bits(cpu.parameters().grads(), dev.parameters().grads()));
}

TEST_CASE("a bf16 or fp16 model on a device keeps fp32 masters, gradients and statistics apart from its values",
          "[cpu][model][device]") {
  // The emulated device computes only F32 values (the others are recorded, not computed), so
  // this checks the plumbing: ops.cc refuses any op whose operands mix the compute type with
  // F32 where they should not, so running every path without an error is the assertion.
  for (const DType compute : {DType::BF16, DType::F16}) {
    for (const std::string arch : {"gpt2", "llama", "moe"}) {
      for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
        INFO(dtype_name(compute) << " " << arch << ", recompute " << recompute);
        EmulatedDevice device;
        TransformerOptions dev_options(2, 8);
        dev_options.recompute = recompute;
        dev_options.device = &device;
        dev_options.compute = compute;
        Transformer dev(tiny(arch), dev_options);
        const ParameterStore& store = dev.parameters();
        CHECK(store.params().dtype() == DType::F32);
        CHECK(store.grads().dtype() == DType::F32);
        CHECK(store.compute_params().dtype() == compute);
        CHECK(store.compute_param(store.entries()[0].spec.name).dtype() == compute);
        device.calls.clear();
        dev.parameters().initialize(5);
        CHECK(device.calls == std::vector<std::string>{std::string("cast F32 ") + dtype_name(compute)});
        dev.parameters().zero_grads();
        const Tensor tokens = random_tokens(1), targets = random_tokens(2);
        CHECK_NOTHROW(dev.forward_backward(tokens, targets, 1.0f));  // host tokens: the model copies them
        CHECK_NOTHROW(dev.forward_loss(tokens, targets));
        CHECK_NOTHROW(dev.logits_at(tokens, 3));
      }
    }
  }
}
