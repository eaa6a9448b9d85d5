// Layout-equivalence runs for the tensor- and pipeline-parallel tests: a tiny config, training
// it on one rank of a tp × pp × dp grid built as `tessel train` builds it (RankModel), and
// comparing the result with the single-rank run.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "core/model/param_specs.h"
#include "parallel/comm/single_communicator.h"
#include "tests/parallel/synthetic_tokens.h"
#include "train/rank_model.h"

namespace tessel {

// A 20-step run of a tiny model: vocabulary 64, seq 16, d_model 32, F 64, lr 1e-2 with
// clipping at 0.5 (so the global norm matters), `heads` as "heads: H, kv_heads: K".
inline Config tiny_layout_config(const std::string& arch, const std::string& heads, int layers, int global, int micro) {
  return parse_config("model: {arch: " + arch + ", vocab_size: 64, seq_len: 16, layers: " + std::to_string(layers) +
                          ", d_model: 32, " + heads +
                          ", ffn_dim: 64}\n"
                          "optim: {lr: 1.0e-2, warmup_steps: 2, weight_decay: 0.1, grad_clip: 0.5}\n"
                          "batch: {global: " +
                          std::to_string(global) + ", micro: " + std::to_string(micro) +
                          "}\n"
                          "run: {steps: 20, seed: 11}\n",
                      "tiny.yaml");
}

struct LayoutRun {
  std::vector<double> losses;
  std::vector<double> grad_norms;
  std::vector<float> grads_after_step1;  // whole tensors, laid out as on one rank
  int64_t routed_expert_params = 0;      // the routed experts' parameters this rank holds
};

// Trains `c` as this rank of the config's grid over `world` (a group of one: the reference).
inline LayoutRun train_layout(const Config& c, Communicator& world) {
  const Topology topology = Topology::from_config(c.parallel, world.size(), world.rank());
  RankModel r = RankModel::build(c, world, topology);
  ParameterStore full(transformer_param_specs(c.model));
  const auto fill = [](uint64_t first, const Tensor& tokens, const Tensor& targets) {
    fill_synthetic_tokens(first, tokens, targets, 5, 13);
  };
  LayoutRun run;
  for (const ParamEntry& e : r.model->parameters().entries()) {
    if (e.spec.expert >= 0) ++run.routed_expert_params;
  }
  for (int64_t s = 0; s < c.run.steps; ++s) {
    const StepResult result = r.step->run(s, fill);
    run.losses.push_back(result.loss);
    run.grad_norms.push_back(result.grad_norm);
    if (s == 0) {
      const Tensor whole = Tensor::zeros({full.numel()}, DType::F32);
      r.gather_whole(r.model->parameters().grads(), full, whole);
      run.grads_after_step1.assign(whole.data<float>(), whole.data<float>() + whole.numel());
    }
  }
  return run;
}

// The same training on one rank.
inline LayoutRun train_single_rank(Config c) {
  c.parallel = ParallelConfig{};
  SingleCommunicator world;
  return train_layout(c, world);
}

// fp32 with the sums split over ranks in another order: relative 1e-5 on every loss, 1e-6 on
// the first step's gradient norm and 3e-4 on the later ones (the norm is the most sensitive
// to the weights' rounding differences, which grow over the steps; measured up to 2.5e-5 with
// OpenBLAS's AVX2 kernels and 1.01e-4 with its AVX-512 ones, on the 3D layout), and
// 1e-5 of the largest gradient on every gradient of the first step (skipped with
// gradients=false: ZeRO-2 leaves each rank only its shard of the reduced gradient).
inline void compare_layout_runs(const LayoutRun& got, const LayoutRun& want, bool gradients = true) {
  double worst_loss = 0, worst_norm = 0, worst_grad = 0, scale = 0;
  for (size_t i = 0; i < want.losses.size(); ++i) {
    worst_loss = std::max(worst_loss, std::abs(got.losses[i] - want.losses[i]) / want.losses[i]);
    worst_norm = std::max(worst_norm, std::abs(got.grad_norms[i] - want.grad_norms[i]) / want.grad_norms[i]);
  }
  for (size_t i = 0; i < want.grads_after_step1.size(); ++i) {
    worst_grad =
        std::max(worst_grad, static_cast<double>(std::abs(got.grads_after_step1[i] - want.grads_after_step1[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want.grads_after_step1[i])));
  }
  INFO("worst relative loss error " << worst_loss << ", grad norm " << worst_norm << ", worst gradient error "
                                    << worst_grad << " (largest gradient " << scale << ")");
  CHECK(worst_loss < 1e-5);
  CHECK(std::abs(got.grad_norms[0] - want.grad_norms[0]) < 1e-6 * want.grad_norms[0]);
  CHECK(worst_norm < 3e-4);
  if (gradients) CHECK(worst_grad < 1e-5 * scale);
}

}  // namespace tessel
