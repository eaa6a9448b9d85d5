// TrainStep with the model on a device backend: the moments live on the device, tokens are
// copied there per micro-batch, the norm and AdamW run through the backend, and only the loss
// and the norm come back. On the emulated device (tests/core/emulated_device.h), whose ops
// are the CPU's own, the run must equal the CPU run bitwise.
#include <cstring>

#include <catch2/catch.hpp>

#include "core/config.h"
#include "core/model/transformer.h"
#include "launch/train_step.h"
#include "parallel/comm/single_communicator.h"
#include "tests/core/emulated_device.h"

using namespace tessel;
using testing::EmulatedDevice;

namespace {

Config tiny(const std::string& arch) {
  return parse_config("model: {arch: " + arch + ", vocab_size: 40, seq_len: 8, layers: 2, d_model: 16, heads: 4, "
                      "kv_heads: 2}\n"
                      "batch: {global: 4, micro: 2}\n"
                      "optim: {lr: 1.0e-2, warmup_steps: 1, grad_clip: 0.5, weight_decay: 0.1}\n"
                      "run: {steps: 4, seed: 3}\n",
                      "tiny");
}

}  // namespace

TEST_CASE("a train step on a device backend equals the CPU step bitwise, reading back only loss and norm",
          "[cpu][train][device]") {
  for (const std::string arch : {"gpt2", "llama"}) {
    INFO(arch);
    const Config c = tiny(arch);
    EmulatedDevice device;
    Transformer cpu(c.model, c.batch.micro, c.model.seq_len);
    Transformer dev(c.model, c.batch.micro, c.model.seq_len, "none", 1, nullptr, false, {}, &device);
    cpu.parameters().initialize(c.run.seed);
    dev.parameters().initialize(c.run.seed);
    SingleCommunicator a, b;
    TrainStep cpu_step(c, cpu, a), dev_step(c, dev, b);
    const TrainStep::BatchFn batches = synthetic_batches(c);
    for (int64_t s = 0; s < c.run.steps; ++s) {
      device.calls.clear();
      const StepResult x = cpu_step.run(s, batches), y = dev_step.run(s, batches);
      INFO("step " << s);
      CHECK(x.loss == y.loss);
      CHECK(x.grad_norm == y.grad_norm);
      CHECK(x.grad_norm > 0.5);  // clipping is active: grad_scale takes part
      // One norm over the flat gradients and one fused update per parameter, on the device.
      CHECK(std::count(device.calls.begin(), device.calls.end(), "sum_of_squares n" +
                                                                     std::to_string(dev.parameters().numel())) == 1);
      CHECK(static_cast<size_t>(std::count_if(device.calls.begin(), device.calls.end(), [](const std::string& call) {
              return call.rfind("adamw ", 0) == 0;
            })) == dev.parameters().entries().size());
    }
    Tensor back = Tensor::empty({dev.parameters().numel()}, DType::F32);
    back.copy_from(dev.parameters().params());
    CHECK(std::memcmp(back.raw(), cpu.parameters().params().raw(), back.nbytes()) == 0);
  }
}
