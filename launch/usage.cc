#include "launch/usage.h"

#include <map>

namespace tessel {
namespace {

const std::map<std::string, std::string>& usages() {
  static const std::map<std::string, std::string> kUsages = {
      {"train", R"(usage: tessel train CONFIG [--set key=value ...] [--dry-run [--hardware NAME]]
  Trains the model CONFIG describes: one rank, or each rank of a job that mpirun, srun or
  `tessel launch` started. A rerun resumes from the run's own newest checkpoint.
  --set key=value   override a config key (dotted, e.g. --set run.steps=100 model.layers=4)
  --dry-run         print the resolved config, a per-layer parameter table and the planner's
                    memory estimate for this layout on NAME (configs/hardware; default
                    cpu-local, h200 for run.device: cuda), then exit without training)"},
      {"launch",
       R"(usage: tessel launch [--nproc-per-node N] [--hosts h1,h2 | --hostfile F] [--max-restarts K]
                     [--min-hosts K] [--dry-run] CONFIG [--set key=value ...]
  Starts a multi-rank training job through mpirun and supervises it.
  --nproc-per-node N   ranks per host (default: the config's grid split over the hosts, or
                       Slurm's tasks per node inside an allocation)
  --hosts h1,h2        hosts to run on; --hostfile F: one host per line (mpirun's format)
  --max-restarts K     restart a failed job up to K times, resuming from its newest checkpoint
  --min-hosts K        a restart may leave out hosts that no longer answer while K or more
                       remain (fewer data-parallel replicas, the same global batch)
  --dry-run            print the mpirun command line and exit)"},
      {"data", R"(usage:
  tessel data prepare --input FILE... --tokenizer bytes|gpt2 --out PREFIX
                      [--tokenizer-dir DIR] [--val-fraction F] [--val-split documents|tokens]
                      [--split-lines] [--seed S] [--format megatron|llmc] [--shard-tokens N] [--workers N]
      .txt inputs: one document per file (per non-empty line with --split-lines);
      .jsonl inputs: one document per line, its "text" field.
      Writes PREFIX_train.{bin,idx} (and PREFIX_val.{bin,idx} when F > 0), and PREFIX_train.tessel.json
      recording the tokenizer. --val-split documents (default) sends whole documents to validation;
      tokens cuts the last F of every document's tokens instead (for a few large documents).
  tessel data inspect PATH [--tokens N] [--tokenizer gpt2 [--tokenizer-dir DIR]]
      PATH: a Megatron prefix (PATH.idx + PATH.bin) or an llm.c shard .bin.)"},
      {"generate",
       R"(usage: tessel generate CHECKPOINT --prompt TEXT [--tokens N] [--temperature T] [--seed S] [--top-k K]
  Samples text from a checkpoint with the tokenizer it was trained with.
  CHECKPOINT: a step directory, a checkpoint root or a run's out_dir.
  --tokens N (default 200)  --temperature T (default 0.8; 0 = greedy)  --seed S  --top-k K (0 = all))"},
      {"eval", R"(usage: tessel eval CHECKPOINT [--data PREFIX] [--batches N]
  The validation loss of a checkpoint as one JSON line.
  CHECKPOINT: a step directory, a checkpoint root or a run's out_dir.
  --data PREFIX   a dataset other than the config's data.val;  --batches N   batches of batch.global)"},
      {"bench", R"(usage: tessel bench step CONFIG [--set key=value ...] [--steps N] [--warmup W]
       tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR]
       tessel bench comm [--max-mb M] [--iters N]   (under mpirun)
       tessel bench checkpoint CONFIG [--set key=value ...] [--saves N] [--dir DIR]
       tessel bench kernels CONFIG [--set key=value ...] [--dtype bf16|fp32] [--iters N]   (CUDA)
  Each prints JSON lines (docs/performance.md).)"},
      {"plan",
       R"(usage: tessel plan CONFIG --gpus N --hardware NAME [--set key=value ...] [--top K] [--format table|json]
                   [--margin F] [--framework NAME]
       tessel plan CONFIG --cluster FILE [--set key=value ...] [--format table|json] [--margin F]
  Predicted memory and speed of every layout of the config's model on N GPUs of a hardware
  profile (configs/hardware), best first, with the --set line of the best (docs/planner.md).
  --cluster plans for node groups of different GPUs (a YAML file of groups: hardware and nodes):
  the best plan using every group, against each group alone and all GPUs as the slowest kind.
  --framework plans another framework's runs (configs/frameworks; default tessel).)"},
      {"tune", R"(usage: tessel tune CONFIG [--gpus N] [--hardware NAME] [--top K] [--steps S] [--set key=value ...]
                   [--out FILE]
  Runs the top K planned layouts on this machine for S steps each, prints predicted against
  measured, writes the fastest as a config (default <run.out_dir>/tuned.yaml) and records the
  ratios as a calibration for plans of similar models on this hardware.)"},
      {"ckpt", R"(usage: tessel ckpt verify CHECKPOINT
       tessel ckpt inspect CHECKPOINT
       tessel ckpt export CHECKPOINT --format hf --out DIR [--shard-mb M]
       tessel ckpt import HF_DIR --out DIR [--set key=value ...]
  CHECKPOINT: a step_NNNNNNNN directory, a checkpoint root (its newest complete checkpoint) or a
  run's out_dir. export writes config.json, model.safetensors and, for a GPT-2 tokenizer, the
  Hugging Face tokenizer files; import reads them back.)"},
  };
  return kUsages;
}

}  // namespace

const char* tessel_usage() {
  return R"(usage: tessel COMMAND [ARGS]

Commands:
  train CONFIG [--set key=value ...]          train a model from a YAML config (one rank, or each rank of a job)
  launch [--nproc-per-node N] [--hosts h1,h2 | --hostfile F] [--max-restarts K] [--min-hosts K] [--dry-run]
         CONFIG [--set ...]
                                              start a multi-rank training job through mpirun
  data prepare --input FILE... --tokenizer T --out PREFIX
                                              turn text into a token dataset (.bin/.idx)
  data inspect PATH                           describe a dataset or llm.c shard
  generate CHECKPOINT --prompt TEXT           sample text (--tokens N --temperature T --seed S --top-k K)
  eval CHECKPOINT [--data PREFIX]             validation loss as one JSON line (--batches N)
  bench step CONFIG [--set ...]               time training steps, one JSON line (--steps N --warmup W)
  bench comm [--max-mb M]                     all-reduce time and bandwidth by message size (under mpirun)
  bench checkpoint CONFIG [--set ...]         checkpoint save/load GB/s, sync and async (--saves N --dir DIR)
  plan CONFIG --gpus N --hardware NAME        predicted memory and speed of every layout, best first
                                              (--cluster FILE: a cluster of mixed GPUs)
  tune CONFIG [--top K] [--steps S]           run the top planned layouts here, predicted against measured
  ckpt verify|inspect CHECKPOINT              check every checksum of a checkpoint / describe it
  ckpt export CHECKPOINT --format hf --out DIR  Hugging Face config.json + model.safetensors (+ tokenizer)
  ckpt import HF_DIR --out DIR                a weights-only checkpoint from a Hugging Face directory
  --version                                   the version and the git commit this tessel was built from

Configs: see configs/ and docs/configuration.md. `tessel help COMMAND` or `tessel COMMAND --help`
prints a command's options.
)";
}

std::string command_usage(const std::string& command) {
  const auto it = usages().find(command);
  return it == usages().end() ? std::string() : it->second;
}

}  // namespace tessel
