// The `tessel` subcommands. Each takes the arguments after its name, prints its result, and
// returns the process exit status; errors are thrown as tessel::Error for main() to print.
#pragma once

#include <string>
#include <vector>

namespace tessel {

int run_train_command(const std::vector<std::string>& args);
int run_generate_command(const std::vector<std::string>& args);
int run_eval_command(const std::vector<std::string>& args);
int run_bench_command(const std::vector<std::string>& args);

}  // namespace tessel
