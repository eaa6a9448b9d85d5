// `tessel generate`: text sampled from a checkpoint (launch/commands.h).
#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>

#include <spdlog/spdlog.h>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/reader.h"
#include "core/error.h"
#include "core/model/init_rng.h"
#include "core/model/transformer.h"
#include "data/tokenizer.h"
#include "launch/cli_args.h"
#include "launch/commands.h"
#include "launch/usage.h"
#include "train/environment.h"
#include "train/memory_check.h"

namespace tessel {
namespace {

// The tokenizer the checkpoint was trained with, checked against the model's vocabulary.
std::unique_ptr<Tokenizer> checkpoint_tokenizer(const Config& c) {
  std::unique_ptr<Tokenizer> t = make_tokenizer(c.data.tokenizer, c.data.tokenizer_dir);
  TESSEL_CHECK(c.model.vocab_size >= t->vocab_size())
      << "model.vocab_size=" << c.model.vocab_size << " cannot hold the " << t->name() << " tokenizer's "
      << t->vocab_size() << " ids; hint: the checkpoint's data.tokenizer does not "
      << "match its model";
  return t;
}

}  // namespace

int run_generate_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(
      args, "tessel generate", {"--prompt", "--tokens", "--temperature", "--seed", "--top-k", "--threads"}, {}, false);
  TESSEL_CHECK(a.positional.size() == 1) << command_usage("generate");
  const std::string dir = resolve_checkpoint(a.positional[0]);
  const Config config = checkpoint_config(read_checkpoint_meta(dir));
  std::unique_ptr<Tokenizer> tokenizer = checkpoint_tokenizer(config);
  configure_threads(static_cast<int>(a.get_int("--threads", config.run.threads, 0, kMaxThreads)));
  const int64_t n_new = a.get_int("--tokens", 200);
  const double temperature = a.get_double("--temperature", 0.8);
  const uint64_t seed = static_cast<uint64_t>(a.get_int("--seed", 0));
  const int64_t top_k = a.get_int("--top-k", 0);
  TESSEL_CHECK(n_new >= 0 && temperature >= 0) << "--tokens and --temperature must be non-negative";

  std::vector<int32_t> ids = tokenizer->encode(a.get("--prompt", ""));
  if (ids.empty()) ids.push_back(tokenizer->end_of_text());  // an empty prompt starts a document
  // The model only needs as many positions as the text will have (each new token costs a
  // forward pass over the context), up to the model's seq_len, past which the context slides.
  // Ids past the tokenizer's vocabulary (a padded model.vocab_size) are never sampled.
  const int64_t V = std::min<int64_t>(config.model.vocab_size, tokenizer->vocab_size());
  const int64_t T = std::min<int64_t>(config.model.seq_len, static_cast<int64_t>(ids.size()) + n_new);
  check_memory_fits(config, 1, MemoryUse::kInference, host_memory(1));
  Transformer model(config.model, TransformerOptions(1, T));
  load_checkpoint(dir, model.parameters(), nullptr, nullptr);
  const uint64_t stream = fnv1a64("generate");
  Tensor tokens = Tensor::zeros({1, T}, DType::I32);
  std::vector<int32_t> generated;
  for (int64_t i = 0; i < n_new; ++i) {
    // The last T tokens are the context; positions after it are zeros that causal attention
    // never lets the context see.
    const size_t ctx = std::min<size_t>(ids.size(), static_cast<size_t>(T));
    std::copy(ids.end() - static_cast<int64_t>(ctx), ids.end(), tokens.data<int32_t>());
    std::vector<float> logits = model.logits_at(tokens, static_cast<int64_t>(ctx) - 1);
    logits.resize(static_cast<size_t>(V));
    int32_t next = 0;
    if (temperature == 0) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    } else {
      float cutoff = -INFINITY;
      if (top_k > 0 && top_k < V) {
        std::vector<float> sorted = logits;
        std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<float>());
        cutoff = sorted[static_cast<size_t>(top_k - 1)];
      }
      const float m = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      std::vector<double> p(static_cast<size_t>(V));
      for (int64_t v = 0; v < V; ++v) {
        p[static_cast<size_t>(v)] = logits[static_cast<size_t>(v)] < cutoff
                                        ? 0.0
                                        : std::exp((logits[static_cast<size_t>(v)] - m) / temperature);
        sum += p[static_cast<size_t>(v)];
      }
      double u = uniform_at(seed, stream, static_cast<uint64_t>(i)) * sum;
      for (next = 0; next < V - 1; ++next) {
        u -= p[static_cast<size_t>(next)];
        if (u < 0) break;
      }
    }
    if (next == tokenizer->end_of_text()) {
      spdlog::info("generation stopped at end-of-text after {} of {} tokens", i, n_new);
      break;
    }
    ids.push_back(next);
    generated.push_back(next);
  }
  std::cout << a.get("--prompt", "") << tokenizer->decode(generated) << std::endl;
  return 0;
}

}  // namespace tessel
