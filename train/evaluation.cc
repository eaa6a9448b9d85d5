#include "train/evaluation.h"

#include <algorithm>

#include "core/error.h"
#include "data/dataset_glob.h"

namespace tessel {

std::unique_ptr<Sampler> make_sampler(const std::vector<DataSource>& sources, int64_t seq_len, uint64_t seed,
                                      int64_t vocab_size) {
  std::vector<std::shared_ptr<const TokenSource>> opened;
  std::vector<double> weights;
  for (const DataSource& s : sources) {
    // A glob's datasets share its weight by their tokens; without weights every dataset weighs
    // its tokens.
    const size_t first = opened.size();
    double tokens = 0;
    for (const std::string& path : expand_dataset_glob(s.path)) {
      opened.push_back(open_token_source(path));
      tokens += static_cast<double>(opened.back()->num_tokens());
    }
    for (size_t i = first; i < opened.size(); ++i) {
      const double own = static_cast<double>(opened[i]->num_tokens());
      weights.push_back(s.weight ? *s.weight * (tokens > 0 ? own / tokens : 0.0) : own);
    }
  }
  return std::make_unique<Sampler>(std::move(opened), std::move(weights), seq_len, seed, vocab_size);
}

void fill_micro_batch(const Sampler& sampler, uint64_t first, const Tensor& tokens, const Tensor& targets) {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  TESSEL_CHECK(T == sampler.seq_len()) << "micro-batch of length " << T << " from a sampler of " << sampler.seq_len();
  std::vector<int32_t> window(static_cast<size_t>(T + 1));
  for (int64_t b = 0; b < B; ++b) {
    sampler.sample(first + static_cast<uint64_t>(b), window.data());
    std::copy(window.begin(), window.end() - 1, tokens.data<int32_t>() + b * T);
    std::copy(window.begin() + 1, window.end(), targets.data<int32_t>() + b * T);
  }
}

double mean_eval_loss(const Sampler& sampler, int64_t samples, int64_t B, Communicator* group,
                      const std::function<double(int micro_batches, const EvalFill& fill)>& sum_losses) {
  const int64_t rank = group ? group->rank() : 0, size = group ? group->size() : 1;
  TESSEL_CHECK(samples > 0 && samples % (size * B) == 0)
      << "evaluation of " << samples << " sequences does not split into " << size << " ranks x micro-batches of " << B;
  const int64_t per_rank = samples / size;
  // Micro-batches are equal in size: the mean of their means is the mean.
  double total = sum_losses(static_cast<int>(per_rank / B), [&](int k, const Tensor& tokens, const Tensor& targets) {
    fill_micro_batch(sampler, static_cast<uint64_t>(rank * per_rank + k * B), tokens, targets);
  });
  if (size > 1) group->all_reduce_doubles(&total, 1, ReduceOp::kSum);
  return total / (static_cast<double>(samples) / static_cast<double>(B));  // an exact quotient: samples % B == 0
}

double mean_eval_loss(Transformer& model, const Sampler& sampler, int64_t samples, Communicator* group) {
  const int64_t B = model.micro_batch(), T = model.seq_len();
  return mean_eval_loss(sampler, samples, B, group, [&](int micro_batches, const EvalFill& fill) {
    Tensor tokens = Tensor::empty({B, T}, DType::I32);
    Tensor targets = Tensor::empty({B, T}, DType::I32);
    double total = 0;
    for (int k = 0; k < micro_batches; ++k) {
      fill(k, tokens, targets);
      total += model.forward_loss(tokens, targets);
    }
    return total;
  });
}

}  // namespace tessel
