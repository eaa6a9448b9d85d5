// `tessel bench kernels CONFIG [--set ...] [--dtype bf16|fp32] [--iters N]`: each CUDA op of
// one transformer layer (and the classifier and the optimizer) alone on the GPU, at the
// config's shapes (batch.micro × model.seq_len rows): milliseconds per call from CUDA events,
// with TFLOP/s for the matrix work and GB/s for the memory-bound ops. One JSON line per op;
// bench/cuda_kernels.sh runs PyTorch's kernels for the same shapes beside it. Needs a build with
// the CUDA backend and a GPU; elsewhere it says so and fails.
#pragma once

#include <string>
#include <vector>

namespace tessel {

int run_bench_kernels(const std::vector<std::string>& args);

}  // namespace tessel
