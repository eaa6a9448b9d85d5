// The `tessel` subcommands, one file each (launch/<name>_command.cc). Each takes the arguments
// after its name, prints its result, and returns the process exit status; errors are thrown as
// tessel::Error for main() to print. Those that take an `out` stream print their reports there
// (std::cout by default), so tests can read them.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace tessel {

// `tessel train CONFIG [--set key=value ...]`: one rank's training run (alone, or each rank of
// a job started by mpirun, srun or `tessel launch`).
int run_train_command(const std::vector<std::string>& args);

// `tessel launch [--nproc-per-node N] [--hosts a,b | --hostfile F] [--max-restarts K]
// [--dry-run] CONFIG [--set ...]`: starts and supervises a multi-rank job (launch/launcher.h).
int run_launch_command(const std::vector<std::string>& args);

// `tessel generate CHECKPOINT --prompt TEXT [--tokens N] [--temperature T] [--seed S]
// [--top-k K]`: samples text from a checkpoint with the tokenizer it was trained with.
int run_generate_command(const std::vector<std::string>& args);

// `tessel eval CHECKPOINT [--data PREFIX] [--batches N]`: the validation loss of a checkpoint
// as one JSON line.
int run_eval_command(const std::vector<std::string>& args);

// `tessel data prepare --input FILE... --tokenizer bytes --out PREFIX [--val-fraction F]
// [--split-lines] [--seed S]` and `tessel data inspect PATH [--tokens N]`.
int run_data_command(const std::vector<std::string>& args);
int run_data_command(const std::vector<std::string>& args, std::ostream& out);

// `tessel ckpt verify|inspect CHECKPOINT`, `tessel ckpt export CHECKPOINT --format hf --out DIR`,
// `tessel ckpt import HF_DIR --out DIR`. CHECKPOINT is a step directory or a checkpoint root
// (its newest complete step). verify checks every file, piece and checksum, and that the
// tensors are the model's its stored config describes; exit 0 when sound.
int run_ckpt_command(const std::vector<std::string>& args);
int run_ckpt_command(const std::vector<std::string>& args, std::ostream& out);

// `tessel plan CONFIG --gpus N --hardware NAME [--set key=value ...] [--top K]
// [--format table|json] [--margin F]`: every valid layout of the config's model on N GPUs of a
// hardware profile (configs/hardware), ranked by predicted throughput, with the reasons
// (parallel/planner). A layout knob given with --set is held fixed and the rest is searched.
int run_plan_command(const std::vector<std::string>& args);
int run_plan_command(const std::vector<std::string>& args, std::ostream& out);

// `tessel tune CONFIG [--gpus N] [--hardware NAME] [--top K] [--steps S] [--set ...]
// [--out FILE]`: runs the top K planned layouts for N ranks of this machine, each for S steps
// of `tessel bench step` under mpirun, prints predicted against measured, writes the fastest
// measured layout as a config file (default <run.out_dir>/tuned.yaml), and records the
// measured / predicted ratios under the model's shape, which later plans on the same hardware
// apply to close models (parallel/planner/calibration.h).
int run_tune_command(const std::vector<std::string>& args);
int run_tune_command(const std::vector<std::string>& args, std::ostream& out);

// `tessel bench step|comm|checkpoint|kernels|tokenizer ...`: benchmarks that print JSON lines
// (launch/bench/bench.h).
int run_bench_command(const std::vector<std::string>& args);

}  // namespace tessel
