// `tessel bench`: dispatches to the subcommands of launch/bench/ (launch/commands.h).
#include "core/error.h"
#include "launch/bench/bench.h"
#include "launch/commands.h"

namespace tessel {

int run_bench_command(const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "step") return run_bench_step(rest);
  if (sub == "comm") return run_bench_comm(rest);
  if (sub == "checkpoint") return run_bench_checkpoint(rest);
  if (sub == "kernels") return run_bench_kernels(rest);
  if (sub == "tokenizer") return run_bench_tokenizer(rest);
  TESSEL_FAIL() << "usage: tessel bench step CONFIG [--set key=value ...] [--steps N] [--warmup W]\n"
                << "       tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR]\n"
                << "       tessel bench comm [--max-mb M] [--iters N]   (under mpirun)\n"
                << "       tessel bench checkpoint CONFIG [--set key=value ...] [--saves N] [--dir DIR]\n"
                << "       tessel bench kernels CONFIG [--set key=value ...] [--dtype bf16|fp32] [--iters N]   (CUDA)";
}

}  // namespace tessel
