// `tessel`: the one command. Dispatches to the subcommands and is the only place that turns a
// tessel::Error into an exit status.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/logging.h"
#include "launch/commands.h"
#include "train/environment.h"

namespace {

constexpr const char* kUsage = R"(usage: tessel COMMAND [ARGS]

Commands:
  train CONFIG [--set key=value ...]          train a model from a YAML config (one rank, or each rank of a job)
  launch [--nproc-per-node N] [--hosts h1,h2 | --hostfile F] [--max-restarts K] [--dry-run] CONFIG [--set ...]
                                              start a multi-rank training job through mpirun
  data prepare --input FILE... --out PREFIX   turn text into a token dataset (.bin/.idx)
  data inspect PATH                           describe a dataset or llm.c shard
  generate CHECKPOINT --prompt TEXT           sample text (--tokens N --temperature T --seed S --top-k K)
  eval CHECKPOINT [--data PREFIX]             validation loss as one JSON line (--batches N)
  bench step CONFIG [--set ...]               time training steps, one JSON line (--steps N --warmup W)
  bench comm [--max-mb M]                     all-reduce time and bandwidth by message size (under mpirun)
  bench checkpoint CONFIG [--set ...]         checkpoint save/load GB/s, sync and async (--saves N --dir DIR)
  plan CONFIG --gpus N --hardware NAME        predicted memory and speed of every layout, best first
  tune CONFIG [--top K] [--steps S]           run the top planned layouts here, predicted against measured
  ckpt verify|inspect CHECKPOINT              check every checksum of a checkpoint / describe it
  ckpt export CHECKPOINT --format hf --out DIR  Hugging Face config.json + model.safetensors
  ckpt import HF_DIR --out DIR                a weights-only checkpoint from a Hugging Face directory

Configs: see configs/ and docs/configuration.md. Run `tessel COMMAND` without arguments for its usage.
)";

}  // namespace

int main(int argc, char** argv) {
  tessel::select_blas_kernels(argv);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {  // `tessel train --help`: the usage, not an error
      std::fputs(kUsage, stdout);
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
    std::fprintf(stderr, "tessel: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const tessel::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
