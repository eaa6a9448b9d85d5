#include "launch/commands.h"
#include "launch/usage.h"

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/hf_format.h"
#include "core/checkpoint/reader.h"
#include "core/checkpoint/writer.h"
#include "core/config/config.h"
#include "core/error.h"
#include "core/model/param_specs.h"
#include "data/hf_tokenizer.h"
#include "launch/cli_args.h"
#include "train/memory_check.h"

namespace tessel {
namespace {

std::string one_checkpoint(const ParsedArgs& a, const std::string& command) {
  TESSEL_CHECK(a.positional.size() == 1) << "tessel ckpt " << command << " takes one checkpoint\n"
                                         << command_usage("ckpt");
  return resolve_checkpoint(a.positional[0]);
}

int verify(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt verify", {}, {}, false);
  const std::string dir = one_checkpoint(a, "verify");
  const auto t0 = std::chrono::steady_clock::now();
  const CheckpointReader reader(dir);
  reader.check_model(transformer_param_specs(checkpoint_config(reader.meta()).model));
  const uint64_t bytes = reader.verify_all();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t pieces = 0;
  const std::vector<CheckpointTensorInfo> tensors = reader.tensors();
  for (const CheckpointTensorInfo& t : tensors) pieces += t.pieces;
  out << "ok: " << dir << ": step " << reader.meta().state.step << ", " << tensors.size() << " tensors in " << pieces
      << " pieces over " << reader.files().size() << " files, " << std::fixed << std::setprecision(1)
      << static_cast<double>(bytes) / (1 << 20) << " MiB checked in " << std::setprecision(2) << s << " s\n";
  return 0;
}

int inspect(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt inspect", {}, {}, false);
  const std::string dir = one_checkpoint(a, "inspect");
  const CheckpointReader reader(dir);
  const CheckpointMeta& info = reader.meta();
  out << "checkpoint " << dir << "\n"
      << "  step " << info.state.step << ", " << info.state.consumed_samples << " samples consumed, "
      << info.state.optimizer_steps << " optimizer steps, " << info.state.skipped_total << " skipped\n"
      << "  saved by " << info.layout.describe() << " (" << info.layout.world_size << " ranks, schedule "
      << info.layout.schedule << "), seed " << info.seed << (info.has_optimizer ? "" : ", weights only") << "\n"
      << "  written by "
      << (info.tessel_version.empty() ? "a Tessel that did not record its version" : info.tessel_version) << "\n";
  for (const DatasetFingerprint& d : info.data) {
    out << "  " << d.role << " data " << d.path << ": " << d.bytes << " bytes, fingerprint " << d.hash
        << (d.tokenizer.empty() ? "" : ", tokenizer " + d.tokenizer) << "\n";
  }
  uint64_t total = 0;
  for (const auto& [name, bytes] : reader.files()) total += bytes;
  out << "  " << reader.files().size() << " files, " << std::fixed << std::setprecision(1)
      << static_cast<double>(total) / (1 << 20) << " MiB\n\ntensors:\n";
  for (const CheckpointTensorInfo& t : reader.tensors()) {
    out << "  " << std::left << std::setw(52) << t.name << " " << t.dtype << std::setw(16) << shape_str(t.shape) << " "
        << std::right << std::setw(3) << t.pieces << (t.pieces == 1 ? " piece  " : " pieces ") << std::setw(9)
        << std::setprecision(2) << static_cast<double>(t.bytes) / (1 << 20) << " MiB\n";
  }
  out << "\nconfig:\n" << info.config_yaml;
  return 0;
}

// Hugging Face directory of the checkpoint's weights.
int export_command(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt export", {"--format", "--out", "--shard-mb"}, {}, false);
  const std::string dir = one_checkpoint(a, "export");
  TESSEL_CHECK(a.get("--format", "") == "hf") << "tessel ckpt export needs --format hf (the one format it writes)\n"
                                              << command_usage("ckpt");
  TESSEL_CHECK(a.has("--out")) << "tessel ckpt export needs --out DIR\n" << command_usage("ckpt");
  const double shard_mb = a.get_double("--shard-mb", 5 * 1024);
  TESSEL_CHECK(shard_mb > 0) << "--shard-mb must be positive, got " << shard_mb;
  const CheckpointReader reader(dir);
  const Config config = checkpoint_config(reader.meta());
  ParameterStore whole(transformer_param_specs(config.model));
  reader.check_model(transformer_param_specs(config.model));
  reader.read(whole, "", whole.params());
  const std::string to = a.get("--out", "");
  for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json"}) {
    TESSEL_CHECK(!std::filesystem::exists(std::filesystem::path(to) / f))
        << "--out " << to << " already holds " << f << " from an earlier export; files of two exports would mix "
        << "there; hint: export into an empty or new directory";
  }
  std::vector<std::string> files = export_hf(config.model, whole, to, static_cast<uint64_t>(shard_mb * (1 << 20)));
  // The tokenizer the model was trained with, under the names transformers reads.
  if (config.data.tokenizer == TokenizerKind::kGpt2) {
    for (const std::string& f : export_hf_tokenizer(config.data.tokenizer_dir, config.model.seq_len, to)) {
      files.push_back(f);
    }
  }
  out << "exported " << dir << " (step " << reader.meta().state.step << ", " << config.model.arch << ") to " << to
      << ":";
  for (const std::string& f : files) out << " " << f;
  out << "\n";
  if (config.data.tokenizer == TokenizerKind::kBytes) {
    out << "no tokenizer files: the model was trained with data.tokenizer: bytes (one id per byte), which "
           "transformers has no tokenizer class for\n";
  }
  return 0;
}

// A weights-only Tessel checkpoint at step 0 from a Hugging Face directory.
int import_command(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel ckpt import", {"--out"});
  TESSEL_CHECK(a.positional.size() == 1 && a.has("--out")) << "tessel ckpt import takes HF_DIR and --out DIR\n"
                                                           << command_usage("ckpt");
  const std::string from = a.positional[0], to = a.get("--out", "");
  const std::vector<std::string> existing = complete_checkpoints(to);
  TESSEL_CHECK(existing.empty()) << "--out " << to << " already holds checkpoints (newest " << existing.back()
                                 << "): an imported step 0 would become `latest` there and a run resuming with "
                                 << "checkpoint.resume: auto would start over; hint: import into an empty directory";
  Config config;
  config.model = read_hf_config(from);
  // The tokenizer from the files there (copied beside the checkpoint) or the vocabulary; --set
  // data.tokenizer=... below still wins.
  const HfTokenizerChoice tokenizer = import_hf_tokenizer(
      from, config.model.vocab_size, (std::filesystem::absolute(to) / "tokenizer").lexically_normal().string());
  config.data.tokenizer = tokenizer.kind;
  config.data.tokenizer_dir = tokenizer.dir;
  // The rest of the config is the defaults with the imported model, plus --set overrides (a
  // training seq_len shorter than the model's context, data, optimizer...), validated.
  config = parse_config(to_yaml(config), from + "/config.json", a.overrides);
  check_memory_fits(config, 1, MemoryUse::kInference, host_memory(1));
  ParameterStore whole(transformer_param_specs(config.model));
  read_hf_weights(from, whole);
  CheckpointData data;
  data.params = &whole;
  data.config_yaml = to_yaml(config);
  const std::string dir = save_checkpoint(to, data, 0);
  out << "imported " << from << " (" << config.model.arch << ", " << whole.entries().size() << " tensors) as " << dir
      << ": weights only, step 0; train from it with checkpoint.resume: " << dir << "\n"
      << tokenizer.reason << "\n";
  return 0;
}

}  // namespace

int run_ckpt_command(const std::vector<std::string>& args) { return run_ckpt_command(args, std::cout); }

int run_ckpt_command(const std::vector<std::string>& args, std::ostream& out) {
  TESSEL_CHECK(!args.empty()) << command_usage("ckpt");
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return verify(rest, out);
  if (args[0] == "inspect") return inspect(rest, out);
  if (args[0] == "export") return export_command(rest, out);
  if (args[0] == "import") return import_command(rest, out);
  TESSEL_FAIL() << "unknown ckpt command '" << args[0] << "'\n" << command_usage("ckpt");
}

}  // namespace tessel
