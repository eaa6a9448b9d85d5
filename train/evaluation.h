// The data a step or an evaluation reads, and the validation loss: shared by the training loop
// (train/trainer.h), `tessel eval` and the benchmarks.
//
// A micro-batch is a run of global samples [first, first + B) of a Sampler (data/sampler.h):
// each sample's T + 1 tokens give the inputs and the targets shifted by one. The validation loss
// is the mean over the first `samples` sequences of data.val, the same ones every time,
// whatever the layout. Stateless functions over caller-owned objects.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/comm/communicator.h"
#include "core/config/config.h"
#include "core/model/transformer.h"
#include "data/sampler.h"

namespace tessel {

// A sampler over `sources` (globs expanded, weights blended; a source without a weight weighs
// its tokens) for sequences of seq_len; throws with a hint when a dataset is missing.
std::unique_ptr<Sampler> make_sampler(const std::vector<DataSource>& sources, int64_t seq_len, uint64_t seed,
                                      int64_t vocab_size);

// Fills tokens and targets I32 (B, T) with samples [first, first + B): each sample's T + 1
// tokens give the inputs and the targets shifted by one.
void fill_micro_batch(const Sampler& sampler, uint64_t first, const Tensor& tokens, const Tensor& targets);

// Mean loss of `model` over the first `samples` sequences of `sampler` (the same ones every
// time, whatever the layout): the validation loss of training and of `tessel eval`. With a
// group, rank d evaluates the d-th contiguous 1/size of them and all get the mean
// (collective). samples must be a multiple of size x the model's micro-batch.
double mean_eval_loss(Transformer& model, const Sampler& sampler, int64_t samples, Communicator* group = nullptr);
// The same split over `group` with micro-batches of B, for any way of computing them:
// sum_losses(n, fill) returns the summed losses of this rank's n micro-batches, filling
// micro-batch k with fill(k, tokens, targets) (a pipeline gives them to its stages).
using EvalFill = std::function<void(int micro_batch, const Tensor& tokens, const Tensor& targets)>;
double mean_eval_loss(const Sampler& sampler, int64_t samples, int64_t B, Communicator* group,
                      const std::function<double(int micro_batches, const EvalFill& fill)>& sum_losses);

}  // namespace tessel
