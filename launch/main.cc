// `tessel`: the one command. Dispatches to the subcommands and is the only place that turns a
// tessel::Error into an exit status.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/logging.h"
#include "core/version.h"
#include "launch/commands.h"
#include "launch/usage.h"
#include "train/environment.h"

int main(int argc, char** argv) {
  tessel::select_blas_kernels(argv);
  const std::string first = argc >= 2 ? argv[1] : "";
  if (first == "--version" || first == "version") {
    std::printf("%s\n", tessel::tessel_version_line().c_str());
    return 0;
  }
  // `tessel help train` and `tessel help` print like `tessel train --help` and `tessel --help`.
  if (first == "help" && argc >= 3) {
    const std::string usage = tessel::command_usage(argv[2]);
    if (usage.empty()) {
      std::fprintf(stderr, "tessel: unknown command '%s'\n\n%s", argv[2], tessel::tessel_usage());
      return 2;
    }
    std::fputs((usage + "\n").c_str(), stdout);
    return 0;
  }
  if (argc < 2 || first == "--help" || first == "-h" || first == "help") {
    std::fputs(tessel::tessel_usage(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {  // `tessel train --help`: the command's usage, not an error
      const std::string usage = tessel::command_usage(command);
      std::fputs(usage.empty() ? tessel::tessel_usage() : (usage + "\n").c_str(), stdout);
      return 0;
    }
  }
  try {
    tessel::init_logging(0);
    if (command == "train") return tessel::run_train_command(args);
    if (command == "launch") return tessel::run_launch_command(args);
    if (command == "data") return tessel::run_data_command(args);
    if (command == "generate") return tessel::run_generate_command(args);
    if (command == "eval") return tessel::run_eval_command(args);
    if (command == "bench") return tessel::run_bench_command(args);
    if (command == "ckpt") return tessel::run_ckpt_command(args);
    if (command == "plan") return tessel::run_plan_command(args);
    if (command == "tune") return tessel::run_tune_command(args);
    std::fprintf(stderr, "tessel: unknown command '%s'\n\n%s", command.c_str(), tessel::tessel_usage());
    return 2;
  } catch (const tessel::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
