// `tessel ckpt ...`: checkpoint tools of the CLI.
//
//   tessel ckpt verify CHECKPOINT     every file, piece and checksum, and that the tensors are
//                                     the model's its stored config describes; exit 0 when sound
//   tessel ckpt inspect CHECKPOINT    step, layout, files, config and tensors
//   tessel ckpt export CHECKPOINT --format hf --out DIR
//   tessel ckpt import HF_DIR --out DIR
//
// CHECKPOINT is a step directory or a checkpoint root (its newest complete step). `args` is
// what follows `tessel ckpt`; reports go to `out`. Errors throw tessel::Error naming the file
// and tensor; main() prints them and sets the exit status.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace tessel {

int run_ckpt_command(const std::vector<std::string>& args);
int run_ckpt_command(const std::vector<std::string>& args, std::ostream& out);

}  // namespace tessel
