// The `tessel bench` subcommands: each times one part of the system and prints one JSON line
// per result (rank 0 under several ranks), for bench/ to compare with peers. `args` is what
// follows the subcommand's name.
#pragma once

#include <string>
#include <vector>

namespace tessel {

// `tessel bench step CONFIG [--set ...] [--steps N] [--warmup W]`: the median time of a
// training step of the config's layout (under mpirun or tessel launch, any tp × pp × dp) on
// synthetic tokens: tokens/s, TFLOP/s (6N + 6LTC), communication wait, the pipeline bubble, and
// on a device its name and the allocator's peaks.
int run_bench_step(const std::vector<std::string>& args);

// `tessel bench comm [--max-mb M] [--iters N]`: the world's all-reduce (f32 sum) time and
// bandwidth for message sizes from 4 KiB up (run it under mpirun).
int run_bench_comm(const std::vector<std::string>& args);

// `tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR] [--repeat N]
// [--workers W]`: encoding throughput.
int run_bench_tokenizer(const std::vector<std::string>& args);

// `tessel bench checkpoint CONFIG [--set ...] [--saves N] [--dir DIR]`: checkpoint throughput of
// the config's layout (under mpirun or tessel launch, any tp × pp × dp): synchronous save and
// load in GB/s, and what an asynchronous save costs the step loop (the copy it waits for, and
// the slowdown of the steps that run while the background thread writes). One JSON line from
// rank 0. Trains on synthetic tokens; the checkpoints go to DIR (default a temporary directory,
// removed afterwards).
int run_bench_checkpoint(const std::vector<std::string>& args);

// `tessel bench kernels CONFIG [--set ...] [--dtype bf16|fp32] [--iters N]`: each CUDA op of
// one transformer layer (and the classifier and the optimizer) alone on the GPU, at the
// config's shapes (batch.micro × model.seq_len rows): milliseconds per call from CUDA events,
// with TFLOP/s for the matrix work and GB/s for the memory-bound ops. One JSON line per op;
// bench/cuda_kernels.sh runs PyTorch's kernels for the same shapes beside it. Needs a build with
// the CUDA backend and a GPU; elsewhere it says so and fails.
int run_bench_kernels(const std::vector<std::string>& args);

}  // namespace tessel
