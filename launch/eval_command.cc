// `tessel eval`: a checkpoint's validation loss as one JSON line (launch/commands.h).
#include <cmath>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/reader.h"
#include "core/error.h"
#include "core/io/json.h"
#include "core/model/transformer.h"
#include "launch/cli_args.h"
#include "launch/commands.h"
#include "launch/usage.h"
#include "train/environment.h"
#include "train/evaluation.h"
#include "train/memory_check.h"

namespace tessel {

int run_eval_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel eval", {"--data", "--batches", "--threads"}, {}, false);
  TESSEL_CHECK(a.positional.size() == 1) << command_usage("eval");
  const std::string dir = resolve_checkpoint(a.positional[0]);
  Config config = checkpoint_config(read_checkpoint_meta(dir));
  if (a.has("--data")) config.data.val = a.get("--data", "");
  TESSEL_CHECK(!config.data.val.empty()) << "the checkpoint's config has no data.val; hint: pass --data PREFIX";
  configure_threads(static_cast<int>(a.get_int("--threads", config.run.threads, 0, kMaxThreads)));
  const int64_t batches = a.get_int("--batches", config.run.eval_batches);
  TESSEL_CHECK(batches > 0) << "--batches must be positive, got " << batches;
  const int64_t B = config.batch.micro, T = config.model.seq_len;
  check_memory_fits(config, 1, MemoryUse::kInference, host_memory(1));
  Transformer model(config.model, TransformerOptions(B, T));
  const CheckpointMeta info = load_checkpoint(dir, model.parameters(), nullptr, nullptr);
  std::unique_ptr<Sampler> sampler;
  try {
    sampler = make_sampler({{config.data.val, 1.0}}, T, config.run.seed, config.model.vocab_size);
  } catch (const Error& e) {
    TESSEL_FAIL() << e.message()
                  << (a.has("--data")
                          ? ""
                          : " (data.val from the checkpoint's config; "
                            "relative paths are relative to the working directory; hint: pass --data PREFIX)");
  }
  const int64_t G = config.batch.global;  // batches of batch.global sequences, as in training
  if (static_cast<uint64_t>(batches * G) > sampler->samples_per_epoch()) {
    spdlog::warn("--batches {} x {} sequences is more than the {} sequences of {}: some are read more than once",
                 batches, G, sampler->samples_per_epoch(), config.data.val);
  }
  const double loss = mean_eval_loss(model, *sampler, batches * G);
  std::printf("%s\n", JsonLine()
                          .add("loss", loss, 6)
                          .add("perplexity", std::exp(loss), 4)
                          .add("batches", batches)
                          .add("tokens", batches * G * T)
                          .add("step", info.state.step)
                          .add("data", config.data.val)
                          .str()
                          .c_str());
  return 0;
}

}  // namespace tessel
