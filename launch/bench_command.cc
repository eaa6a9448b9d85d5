// `tessel bench`: dispatches to the subcommands of launch/bench/ (launch/commands.h).
#include "core/error.h"
#include "launch/bench/bench.h"
#include "launch/commands.h"
#include "launch/usage.h"

namespace tessel {

int run_bench_command(const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "step") return run_bench_step(rest);
  if (sub == "comm") return run_bench_comm(rest);
  if (sub == "checkpoint") return run_bench_checkpoint(rest);
  if (sub == "kernels") return run_bench_kernels(rest);
  if (sub == "tokenizer") return run_bench_tokenizer(rest);
  TESSEL_FAIL() << command_usage("bench");
}

}  // namespace tessel
