// Tessel as a library: build a small LLaMA-style model from a config string, take a few
// optimizer steps on a fixed batch, and print the loss falling. The same objects the `tessel`
// command uses: Config, Transformer (weights + activations), TrainStep (AdamW + clipping).
//
//   build/examples/train_step
#include <cstdio>

#include "core/config/config.h"
#include "core/model/transformer.h"
#include "parallel/comm/single_communicator.h"
#include "train/train_step.h"

int main() {
  using namespace tessel;
  const Config config = parse_config(R"(
model: {arch: llama, vocab_size: 257, seq_len: 32, layers: 2, d_model: 64, heads: 4, kv_heads: 2}
batch: {global: 4, micro: 4}
optim: {lr: 3.0e-3, schedule: constant}
run: {steps: 20}
)",
                                     "example");
  Transformer model(config.model, TransformerOptions(config.batch.micro, config.model.seq_len));
  model.parameters().initialize(config.run.seed);
  SingleCommunicator one_rank;  // data parallelism over a group of one
  TrainStep step(config, model, one_rank);

  // One fixed batch of "text": the model should learn to continue it.
  const char* text = "the quick brown fox jumps over the lazy dog, again and again and again. ";
  auto fill = [&](uint64_t, const Tensor& tokens, const Tensor& targets) {
    for (int64_t i = 0; i < tokens.numel(); ++i) {
      tokens.data<int32_t>()[i] = static_cast<unsigned char>(text[i % 72]);
      targets.data<int32_t>()[i] = static_cast<unsigned char>(text[(i + 1) % 72]);
    }
  };
  try {
    for (int64_t s = 0; s < config.run.steps; ++s) {
      const StepResult r = step.run(s, fill);
      if (s % 5 == 0 || s + 1 == config.run.steps) {
        std::printf("step %2lld  loss %.4f  grad norm %.3f\n", static_cast<long long>(s) + 1, r.loss, r.grad_norm);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  }
  return 0;
}
