// Trainer: the `tessel train` loop for one rank.
//
// Built from a validated Config, the world communicator and the rank grid: the model, the
// sampler over data.train (and data.val), the optimizer step with its data-parallel group,
// metrics (progress line, metrics.jsonl, TensorBoard) and checkpoints. The data position is
// one global sample counter: step s reads samples [s·G, (s+1)·G), data-parallel rank d the d-th
// 1/dp of them, so a resumed run, on any number of ranks, reads exactly what the uninterrupted
// run would have. Rank 0 writes metrics and checkpoints; every rank reads them. Not
// thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/checkpoint/checkpoint.h"
#include "core/config/config.h"
#include "core/model/transformer.h"
#include "data/sampler.h"
#include "train/checkpointer.h"
#include "train/rank_model.h"
#include "train/train_step.h"
#include "core/comm/communicator.h"
#include "parallel/topology.h"

namespace tessel {

class MetricsLog;
class TensorBoardWriter;

// Sets OpenMP and OpenBLAS threads: `threads` when > 0, else OMP_NUM_THREADS when set, else
// the cores shared among the `local_ranks` ranks of this node. Returns the number chosen.
int configure_threads(int threads, int local_ranks = 1);

// A sampler over `sources` (weights blended) for sequences of seq_len; throws with a hint when
// a dataset is missing.
std::unique_ptr<Sampler> make_sampler(const std::vector<DataSource>& sources, int64_t seq_len,
                                      uint64_t seed, int64_t vocab_size);

// Fills tokens and targets I32 (B, T) with samples [first, first + B): each sample's T + 1
// tokens give the inputs and the targets shifted by one.
void fill_micro_batch(const Sampler& sampler, uint64_t first, const Tensor& tokens,
                      const Tensor& targets);

// Mean loss of `model` over the first `samples` sequences of `sampler` (the same ones every
// time, whatever the layout): the validation loss of training and of `tessel eval`. With a
// group, rank d evaluates the d-th contiguous 1/size of them and all get the mean
// (collective). samples must be a multiple of size x the model's micro-batch.
double mean_eval_loss(Transformer& model, const Sampler& sampler, int64_t samples,
                      Communicator* group = nullptr);
// The same split over `group` with micro-batches of B, for any way of computing them:
// sum_losses(n, fill) returns the summed losses of this rank's n micro-batches, filling
// micro-batch k with fill(k, tokens, targets) (a pipeline gives them to its stages).
using EvalFill = std::function<void(int micro_batch, const Tensor& tokens, const Tensor& targets)>;
double mean_eval_loss(const Sampler& sampler, int64_t samples, int64_t B, Communicator* group,
                      const std::function<double(int micro_batches, const EvalFill& fill)>& sum_losses);

struct TrainSummary {
  int64_t first_step = 0;  // where this run started (0, or the resumed step)
  int64_t last_step = 0;   // steps completed at the end
  double first_loss = 0;
  double last_loss = 0;
  double last_eval_loss = -1;
  std::vector<double> losses;  // one per step run here
  std::string checkpoint;  // the last checkpoint written, if any
  bool stopped = false;    // a stop request ended the run before run.steps
};

class Trainer {
 public:
  // world: every rank of the job (a SingleCommunicator alone); topology: this rank's place.
  Trainer(const Config& config, Communicator& world, const Topology& topology);
  ~Trainer();

  // Trains to run.steps. `stop_requested`, polled after every step (and agreed on by all
  // ranks), ends the run early with a checkpoint.
  TrainSummary run(const std::function<bool()>& stop_requested = {});
  // Mean loss over the first `batches` x batch.global sequences of data.val (the same ones
  // every time). Collective over the data-parallel group.
  double evaluate(int64_t batches);

  Transformer& model() { return *r_.model; }
  const TrainingState& state() const { return state_; }
  // The flight recorders of this rank's communicators, for the error report of a failed rank.
  std::string flight_records() const;

 private:
  void resume_if_asked();
  std::string save();

  Config config_;
  Communicator& world_;
  Topology topology_;
  bool writer_;  // rank 0: writes metrics and checkpoints
  RankModel r_;   // this rank's groups, model part, pipeline and step
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Sampler> train_;
  std::unique_ptr<Sampler> val_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
  TrainingState state_;
};

}  // namespace tessel
