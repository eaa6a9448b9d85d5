#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/error.h"
#include "train/memory_check.h"

using namespace tessel;
using Catch::Contains;

namespace {

std::string error_of(const Config& config, int dp, MemoryUse use, double bytes) {
  try {
    check_memory_fits(config, dp, use, MemoryAvailable{bytes, "a test's 1.0 GiB"});
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

}  // namespace

TEST_CASE("a run whose estimate exceeds the memory it has is refused, naming the settings that size it",
          "[cpu][memory]") {
  Config c = parse_config("model: {arch: gpt2, layers: 24, d_model: 1024, heads: 16}\nbatch: {global: 8, micro: 1}\n",
                          "big.yaml");
  const double gib = 1u << 30;
  // About 350M parameters: 16 bytes each for training is far more than 1 GiB.
  const std::string training = error_of(c, 1, MemoryUse::kTraining, gib);
  CHECK_THAT(training, Contains("big.yaml: by the planner's estimate one rank needs") &&
                           Contains("more than a test's 1.0 GiB") && Contains("gradients and optimizer state") &&
                           Contains("model.layers (24), model.d_model (1024)") && Contains("parallel.zero"));
  // Inference holds the weights only (1.4 GB here), which fit in 2 GiB where training does not.
  CHECK(error_of(c, 1, MemoryUse::kInference, 2 * gib).empty());
  CHECK_FALSE(error_of(c, 1, MemoryUse::kTraining, 2 * gib).empty());
  // ZeRO over 8 replicas shards the optimizer state: the estimate drops.
  c.parallel.zero = ZeroStage::k1;
  const std::string sharded = error_of(c, 8, MemoryUse::kTraining, gib);
  CHECK(sharded.size() > 0);
  CHECK(sharded != training);

  // Activations dominate: the hint names the batch.
  Config wide = parse_config(
      "model: {arch: gpt2, layers: 2, d_model: 64, heads: 4, seq_len: 8192}\n"
      "batch: {global: 64, micro: 64}\n",
      "wide.yaml");
  CHECK_THAT(
      error_of(wide, 1, MemoryUse::kTraining, gib),
      Contains("the largest part is set by batch.micro (64), model.seq_len (8192)") && Contains("parallel.recompute"));
  // The node's own memory is known and positive.
  CHECK(host_memory(1).bytes > 0);
  CHECK(host_memory(2).bytes == Approx(host_memory(1).bytes / 2));
  CHECK_THAT(host_memory(2).what, Contains("shared by 2 ranks"));
}

TEST_CASE("a device layout is checked against its GPU's memory, shared by the ranks on that GPU", "[cpu][memory]") {
  const double gib = 1u << 30;
  // 8 ranks on one 140 GiB GPU: a sixteenth each would be wrong, an eighth is right.
  const MemoryAvailable shared = device_memory(140 * gib, "NVIDIA H200", 1, 8, 3);
  CHECK(shared.bytes == Approx(140 * gib / 8));
  CHECK_THAT(shared.what, Contains("GPU 0's 140.0 GiB (NVIDIA H200) shared by 8 ranks"));
  // 5 ranks on 2 GPUs: GPU 0 has local ranks 0, 2, 4; GPU 1 has 1 and 3.
  CHECK(device_memory(80 * gib, "x", 2, 5, 4).bytes == Approx(80 * gib / 3));
  CHECK(device_memory(80 * gib, "x", 2, 5, 1).bytes == Approx(80 * gib / 2));
  CHECK(device_memory(80 * gib, "x", 8, 8, 7).what.find("shared") == std::string::npos);
  // A 1.3B-parameter tp 2 x pp 2 layout: fits a GPU of its own, not an eighth of one.
  Config c = parse_config(
      "model: {arch: gpt2, vocab_size: 50304, layers: 24, d_model: 2048, heads: 16}\n"
      "batch: {global: 16, micro: 1}\n"
      "parallel: {tp: 2, pp: 2}\nrun: {device: cuda}\nprecision: {compute: bf16}\n",
      "gpu.yaml");
  CHECK_NOTHROW(check_memory_fits(c, 2, MemoryUse::kTraining, device_memory(140 * gib, "NVIDIA H200", 8, 8, 0)));
  CHECK_THROWS_WITH(check_memory_fits(c, 2, MemoryUse::kTraining, device_memory(16 * gib, "small", 1, 8, 0)),
                    Contains("gpu.yaml: by the planner's estimate one rank needs") &&
                        Contains("GPU 0's 16.0 GiB (small) shared by 8 ranks"));
}
