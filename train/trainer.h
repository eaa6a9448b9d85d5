// Trainer: the `tessel train` loop for one rank.
//
// Built from a validated Config, the world communicator and the rank grid: the model, the
// sampler over data.train (and data.val), the optimizer step with its data-parallel group,
// metrics (progress line, metrics.jsonl, TensorBoard) and checkpoints. The data position is
// one global sample counter: step s reads samples [s·G, (s+1)·G), data-parallel rank d the d-th
// 1/dp of them, so a resumed run, on any number of ranks, reads exactly what the uninterrupted
// run would have. Rank 0 writes metrics and checkpoints (every rank reads them) and holds the
// locks on run.out_dir and the checkpoint root (core/io/dir_lock.h) from before its first write
// to its end, so a second run pointed at either fails at its start. Not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint/format.h"
#include "core/comm/communicator.h"
#include "core/config/config.h"
#include "core/io/dir_lock.h"
#include "core/model/transformer.h"
#include "data/sampler.h"
#include "parallel/topology.h"
#include "train/checkpointer.h"
#include "train/evaluation.h"
#include "train/goodput.h"
#include "train/metrics.h"
#include "train/rank_model.h"
#include "train/straggler.h"
#include "train/train_step.h"

namespace tessel {

struct TrainSummary {
  int64_t first_step = 0;  // where this run started (0, or the resumed step)
  int64_t last_step = 0;   // steps completed at the end
  double first_loss = 0;
  double last_loss = 0;
  double last_eval_loss = -1;
  std::vector<double> losses;  // one per step run here
  std::string checkpoint;      // the last checkpoint written, if any
  bool stopped = false;        // a stop request ended the run before run.steps
};

class Trainer {
 public:
  // world: every rank of the job (a SingleCommunicator alone); topology: this rank's place;
  // rank_hosts: every rank's host (World::placement), to name a straggler's.
  Trainer(const Config& config, Communicator& world, const Topology& topology,
          std::vector<std::string> rank_hosts = {});
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
  // The figures of the step just run, named once for every sink.
  StepMetrics step_metrics(const StepResult& r, double step_s, double eval_loss, double eta_s) const;

  Config config_;
  Communicator& world_;
  Topology topology_;
  bool writer_;  // rank 0: writes metrics and checkpoints
  // Rank 0's hold on run.out_dir (and checkpoint.dir): declared before everything that writes
  // there, so it is released last.
  std::vector<DirLock> locks_;
  RankModel r_;  // this rank's groups, model part, pipeline and step
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Sampler> train_;
  std::unique_ptr<Sampler> val_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;  // rank 0: console, metrics.jsonl, TensorBoard
  std::unique_ptr<Goodput> goodput_;
  std::unique_ptr<StragglerMonitor> straggler_;  // several ranks: the slowest one (train/straggler.h) // rank 0:
                                                 // restarts and productive time (train/goodput.h)
  TrainingState state_;
};

}  // namespace tessel
