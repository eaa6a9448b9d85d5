#include "launch/ckpt_command.h"

#include <chrono>
#include <iomanip>
#include <iostream>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/error.h"
#include "core/model/param_specs.h"
#include "launch/cli_args.h"

namespace tessel {
namespace {

constexpr const char* kUsage =
    "usage: tessel ckpt verify CHECKPOINT\n"
    "       tessel ckpt inspect CHECKPOINT\n"
    "       tessel ckpt export CHECKPOINT --format hf --out DIR\n"
    "       tessel ckpt import HF_DIR --out DIR\n"
    "CHECKPOINT: a step_NNNNNNNN directory, or a checkpoint root (its newest complete checkpoint)";

std::string one_checkpoint(const ParsedArgs& a, const std::string& command) {
  TESSEL_CHECK(a.positional.size() == 1) << "tessel ckpt " << command << " takes one checkpoint\n" << kUsage;
  return resolve_checkpoint(a.positional[0]);
}

int verify(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt verify", {}, {}, false);
  const std::string dir = one_checkpoint(a, "verify");
  const auto t0 = std::chrono::steady_clock::now();
  const CheckpointReader reader(dir);
  reader.check_model(transformer_param_specs(parse_config(reader.info().config_yaml, dir + "/manifest.pb[config]").model));
  const uint64_t bytes = reader.verify_all();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t pieces = 0;
  const std::vector<CheckpointTensorInfo> tensors = reader.tensors();
  for (const CheckpointTensorInfo& t : tensors) pieces += t.pieces;
  out << "ok: " << dir << ": step " << reader.info().state.step << ", " << tensors.size() << " tensors in " << pieces
      << " pieces over " << reader.files().size() << " files, " << std::fixed << std::setprecision(1)
      << static_cast<double>(bytes) / (1 << 20) << " MiB checked in " << std::setprecision(2) << s << " s\n";
  return 0;
}

int inspect(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt inspect", {}, {}, false);
  const std::string dir = one_checkpoint(a, "inspect");
  const CheckpointReader reader(dir);
  const CheckpointInfo& info = reader.info();
  out << "checkpoint " << dir << "\n"
      << "  step " << info.state.step << ", " << info.state.consumed_samples << " samples consumed, "
      << info.state.optimizer_steps << " optimizer steps, " << info.state.skipped_total << " skipped\n"
      << "  saved by " << info.layout.describe() << " (" << info.layout.world_size << " ranks, schedule "
      << info.layout.schedule << "), seed " << info.seed << (info.has_optimizer ? "" : ", weights only") << "\n";
  uint64_t total = 0;
  for (const auto& [name, bytes] : reader.files()) total += bytes;
  out << "  " << reader.files().size() << " files, " << std::fixed << std::setprecision(1)
      << static_cast<double>(total) / (1 << 20) << " MiB\n\ntensors:\n";
  for (const CheckpointTensorInfo& t : reader.tensors()) {
    out << "  " << std::left << std::setw(52) << t.name << " " << t.dtype << std::setw(16) << shape_str(t.shape) << " "
        << std::right << std::setw(3) << t.pieces << " pieces " << std::setw(9) << std::setprecision(2)
        << static_cast<double>(t.bytes) / (1 << 20) << " MiB\n";
  }
  out << "\nconfig:\n" << info.config_yaml;
  return 0;
}

}  // namespace

int run_ckpt_command(const std::vector<std::string>& args) { return run_ckpt_command(args, std::cout); }

int run_ckpt_command(const std::vector<std::string>& args, std::ostream& out) {
  TESSEL_CHECK(!args.empty()) << kUsage;
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return verify(rest, out);
  if (args[0] == "inspect") return inspect(rest, out);
  TESSEL_FAIL() << "unknown ckpt command '" << args[0] << "'\n" << kUsage;
}

}  // namespace tessel
