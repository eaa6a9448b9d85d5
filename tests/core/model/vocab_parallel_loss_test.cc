// The vocab-parallel loss in a group of one (the whole vocabulary on this rank) against the
// fused classifier, which computes the same cross-entropy in one kernel; and its bad input.
// Several ranks are covered by the tensor-parallel layout tests (tests/train).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/model/vocab_parallel_loss.h"
#include "core/ops.h"

using namespace tessel;

namespace {

Tensor filled(int64_t rows, int64_t cols, float scale, int seed) {
  Tensor t = Tensor::empty({rows, cols}, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * std::sin(0.37f * static_cast<float>(i + seed));
  return t;
}

}  // namespace

TEST_CASE("vocab-parallel loss of one rank equals the fused classifier, across row chunks", "[cpu][model]") {
  // 300 rows: two full chunks of kLossChunkRows and a partial one.
  const int64_t N = 300, C = 16, V = 37;
  const Tensor x = filled(N, C, 1.0f, 1), w = filled(V, C, 0.5f, 2);
  Tensor targets = Tensor::empty({N}, DType::I32);
  for (int64_t i = 0; i < N; ++i) targets.data<int32_t>()[i] = static_cast<int32_t>((i * 7) % V);
  const float dloss = 1.0f / N;

  Tensor want_losses = Tensor::empty({N}, DType::F32), want_dx = Tensor::empty({N, C}, DType::F32);
  Tensor want_dw = Tensor::zeros({V, C}, DType::F32);
  const Tensor workspace = Tensor::empty({ops::classifier_workspace_numel(N, V)}, DType::F32);
  ops::classifier_forward_backward(want_losses, &want_dx, &want_dw, x, w, targets, dloss, workspace);

  Tensor losses = Tensor::empty({N}, DType::F32), dx = Tensor::empty({N, C}, DType::F32);
  Tensor dw = Tensor::zeros({V, C}, DType::F32);
  VocabParallelLossBuffers buffers = VocabParallelLossBuffers::allocate(N, V, nullptr, DType::F32);
  const TpContext alone;
  vocab_parallel_loss(losses, &dx, &dw, x, w, targets, dloss, 0, buffers, alone);
  auto worst = [](const Tensor& a, const Tensor& b) {
    double e = 0;
    for (int64_t i = 0; i < a.numel(); ++i) e = std::max(e, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]));
    return e;
  };
  CHECK(worst(losses, want_losses) < 1e-5);
  CHECK(worst(dx, want_dx) < 1e-6);
  CHECK(worst(dw, want_dw) < 1e-6);
}

TEST_CASE("a target outside the vocabulary is an error naming its position", "[cpu][model][errors]") {
  const int64_t N = 4, C = 8, V = 10;
  const Tensor x = filled(N, C, 1.0f, 3), w = filled(V, C, 0.5f, 4);
  Tensor targets = Tensor::empty({N}, DType::I32);
  for (int64_t i = 0; i < N; ++i) targets.data<int32_t>()[i] = static_cast<int32_t>(i);
  targets.data<int32_t>()[2] = 10;
  Tensor losses = Tensor::empty({N}, DType::F32);
  VocabParallelLossBuffers buffers = VocabParallelLossBuffers::allocate(N, V, nullptr, DType::F32);
  const TpContext alone;
  CHECK_THROWS_WITH(vocab_parallel_loss(losses, nullptr, nullptr, x, w, targets, 0.0f, 0, buffers, alone),
                    Catch::Contains("target id 10 at position 2 is outside the vocabulary [0, 10)"));
  targets.data<int32_t>()[2] = -1;
  CHECK_THROWS_WITH(check_vocab_targets(targets, V), Catch::Contains("target id -1 at position 2"));
}
