// Deterministic sampler; see sampler.h.
#include "data/sampler.h"

#include "core/error.h"
#include "data/hash.h"
#include "data/window_permutation.h"

namespace tessel {
namespace {

std::vector<double> checked_weights(size_t num_sources, std::vector<double> weights) {
  TESSEL_CHECK(weights.size() == num_sources && num_sources > 0)
      << "sampler: got " << num_sources << " datasets and " << weights.size()
      << " weights; expected one weight per dataset and at least one dataset";
  return weights;
}

}  // namespace

Sampler::Sampler(std::vector<std::shared_ptr<const TokenSource>> sources, std::vector<double> weights, int64_t seq_len,
                 uint64_t seed, int64_t vocab_size)
    : sources_(std::move(sources)),
      seq_len_(seq_len),
      seed_(seed),
      vocab_size_(vocab_size),
      blend_(checked_weights(sources_.size(), std::move(weights))) {
  TESSEL_CHECK(seq_len_ >= 1) << "sampler: seq_len must be >= 1, got " << seq_len_;
  TESSEL_CHECK(vocab_size_ >= 1) << "sampler: vocab_size must be >= 1, got " << vocab_size_;
  for (size_t d = 0; d < sources_.size(); ++d) {
    TESSEL_CHECK(sources_[d] != nullptr) << "sampler: dataset " << d << " is null";
    const int64_t n = sources_[d]->num_tokens();
    windows_.push_back(n >= 1 ? (n - 1) / seq_len_ : 0);
    TESSEL_CHECK(windows_[d] >= 1 || blend_.weights()[d] == 0)
        << "dataset '" << sources_[d]->path() << "' has " << n << " tokens; a sample of seq_len " << seq_len_
        << " needs at least " << seq_len_ + 1
        << "; hint: use more data, a shorter model.seq_len, or weight 0 for this dataset";
  }
}

Sampler::Location Sampler::locate(uint64_t global_index) const {
  const BlendSchedule::Assignment a = blend_.locate(global_index);
  Location loc;
  loc.dataset = a.dataset;
  loc.index_in_dataset = a.index;
  const int64_t n = windows_[static_cast<size_t>(a.dataset)];
  loc.epoch = a.index / n;
  const uint64_t key =
      hash_combine(hash_combine(seed_, static_cast<uint64_t>(a.dataset)), static_cast<uint64_t>(loc.epoch));
  loc.window =
      static_cast<int64_t>(WindowPermutation(static_cast<uint64_t>(n), key)(static_cast<uint64_t>(a.index % n)));
  loc.token_begin = loc.window * seq_len_;
  return loc;
}

void Sampler::sample(uint64_t global_index, int32_t* out) const {
  const Location loc = locate(global_index);
  const TokenSource& src = *sources_[static_cast<size_t>(loc.dataset)];
  src.read(loc.token_begin, seq_len_ + 1, out);
  for (int64_t t = 0; t <= seq_len_; ++t) {
    TESSEL_CHECK(out[t] >= 0 && out[t] < vocab_size_)
        << "dataset '" << src.path() << "': token " << loc.token_begin + t << " has value " << out[t]
        << ", outside the model's vocabulary [0, " << vocab_size_ << ") (vocab_size " << vocab_size_
        << "); hint: the data was tokenized with a different tokenizer or "
        << "vocabulary than model.vocab_size (byte tokenizer: 257, GPT-2: 50257)";
  }
}

uint64_t Sampler::samples_per_epoch() const {
  uint64_t total = 0;
  for (size_t d = 0; d < windows_.size(); ++d) {
    if (blend_.weights()[d] > 0) total += static_cast<uint64_t>(windows_[d]);
  }
  return total;
}

}  // namespace tessel
