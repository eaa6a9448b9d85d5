// PipelineExecutor: runs one pipeline rank's schedule (parallel/pipeline_schedule.h) on its
// part of the model, moving activations and their gradients between neighbouring stages.
//
// For each action: a forward takes a free activation slot of its chunk, receives its input
// from the previous stage (stage 0 reads the tokens instead), runs, and sends its output to the
// next stage without waiting; a backward receives the gradient of its output from the next
// stage (the last stage computes the loss instead), runs, and sends the gradient of its input
// to the previous stage without waiting. Receives block, sends do not, which is exactly what
// simulate_pipeline checks the schedule against, so a schedule it finds complete cannot hang
// here. Sends are tagged by the stage they go to and its direction (tag 2s: activations into
// stage s, 2s + 1: gradients into stage s), and each stage runs its micro-batches in order, so
// every message meets the receive it belongs to. Tag 0 is left free (TrainStep sums a tied
// embedding's gradients between the first and last stage with it).
//
// A transport without tags (NCCL) matches a pair's sends and receives by the order they are
// posted, on one ordered stream per communicator. Two things make that safe: simulate_pipeline
// checks that every link receives in the order it sends (transfers_in_order), and gradients
// may travel on a communicator of their own (`gradient_group`), so that a send of activations
// never waits behind a send of gradients the other way, or the reverse.
//
// With sequence parallelism the tensors sent are the rank's T-shard of the residual stream:
// rank t of one stage's tensor-parallel group talks to rank t of the next stage's.
// Not thread-safe; every rank of the pipeline group runs the same schedule kind.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/comm/communicator.h"
#include "core/model/transformer.h"
#include "parallel/pipeline_schedule.h"

namespace tessel {

// The part of the model pipeline rank `rank` holds: chunk c is stage c·pp + rank of
// partition_layers(layers, pp, v, split), with as many activation slots as `actions`
// (the rank's schedule) keeps micro-batches alive on it.
ModelPart pipeline_model_part(int64_t layers, int pp, int v, int rank, const std::vector<PipeAction>& actions,
                              const LayerSplit& split = {});

class PipelineExecutor {
 public:
  // model: built with pipeline_model_part of this rank's `actions`; pp_group: the ranks of the
  // pipeline, by stage; gradient_group: the same ranks again, for the gradients (null: pp_group).
  PipelineExecutor(Transformer& model, Communicator& pp_group, std::vector<PipeAction> actions, int v,
                   Communicator* gradient_group = nullptr);

  // Fills micro-batch `micro_batch` of the step: tokens and targets I32 (B, T).
  using FillFn = std::function<void(int micro_batch, const Tensor& tokens, const Tensor& targets)>;
  // Called before each backward, with its action (the step's last micro-batch reduces
  // gradients).
  using BeforeBackward = std::function<void(const PipeAction& action)>;

  // Runs the schedule: every micro-batch forward and backward, gradients added into the model
  // scaled by grad_scale. Returns the sum of the micro-batches' losses on the last stage, 0
  // on the others.
  double train(const FillFn& fill, float grad_scale, const BeforeBackward& before_backward = {});
  // Forward only over `micro_batches` micro-batches, in order: the sum of their losses on the
  // last stage, 0 on the others.
  double evaluate(int micro_batches, const FillFn& fill);

  Communicator& group() { return group_; }
  int micro_batches() const { return micro_batches_; }
  // Of the last train(): seconds spent computing, and in all.
  double busy_s() const { return busy_s_; }
  double step_s() const { return step_s_; }

 private:
  int stage_of(int chunk) const { return chunk * pp_ + rank_; }
  bool needs_tokens(int chunk) const;  // the chunk embeds tokens or computes the loss
  static void receive(Communicator& link, const Tensor& into, int from_rank, int tag);
  static void send(Communicator& link, const Tensor& what, int to_rank, int tag, std::shared_ptr<Work>* work);
  void wait_sends();
  // The send of chunk `chunk`'s output from `slot`, waited for so the slot can be reused.
  std::shared_ptr<Work>& free_output(size_t chunk, int slot);

  Transformer& model_;
  Communicator& group_;      // activations (and the group's collectives)
  Communicator& gradients_;  // gradients: group_, or a communicator of their own
  std::vector<PipeAction> actions_;
  int pp_, v_, rank_, stages_;
  int next_, prev_;  // the pipeline ranks after and before this one (wrapping round)
  int micro_batches_ = 0;
  // Per chunk and slot: the micro-batch's tokens and targets (undefined where the chunk reads
  // none), and the send reading its output.
  std::vector<std::vector<Tensor>> tokens_, targets_;
  std::vector<std::vector<std::shared_ptr<Work>>> output_sends_;
  struct GradSend {
    Tensor buffer;
    std::shared_ptr<Work> work;
  };
  std::vector<GradSend> grad_sends_;
  GradSend& free_grad_send();  // one whose buffer no send still reads
  double busy_s_ = 0, step_s_ = 0;
};

}  // namespace tessel
