// `tessel data ...`: the dataset subcommands of the CLI.
//
//   tessel data prepare --input FILE... --tokenizer bytes --out PREFIX [--val-fraction F]
//                       [--split-lines] [--seed S]
//   tessel data inspect PATH [--tokens N]
//
// `args` is what follows `tessel data`. Reports go to `out` (std::cout by default). Bad
// arguments and data errors throw tessel::Error with a usage hint; main() prints them and sets
// the exit status. Returns 0 on success. Not thread-safe only in that `out` is shared.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace tessel {

int run_data_command(const std::vector<std::string>& args);
int run_data_command(const std::vector<std::string>& args, std::ostream& out);

// The usage text printed by `tessel data --help`.
const char* data_command_usage();

}  // namespace tessel
