// RankModel: what one rank of a tp × pp × dp grid trains with: its tensor-, data- and
// pipeline-parallel groups (split from the world), its part of the model, the pipeline
// executor when pp > 1, and the TrainStep. `tessel train`, `tessel bench step` and the layout
// tests build it the same way, so what is tested and benchmarked is what trains.
#pragma once

#include <memory>

#include "core/checkpoint/format.h"
#include "core/checkpoint/rank_file.h"
#include "core/comm/communicator.h"
#include "core/config/config.h"
#include "core/device_backend.h"
#include "core/model/transformer.h"
#include "parallel/pipeline_executor.h"
#include "parallel/pipeline_schedule.h"
#include "parallel/topology.h"
#include "train/train_step.h"

namespace tessel {

struct RankModel {
  // Destroyed in reverse: the step before the executor, both before the model and the groups,
  // the device (whose memory holds the model) last.
  std::unique_ptr<DeviceBackend> device;  // run.device=cuda: this rank's GPU; null: the CPU
  std::unique_ptr<Communicator> tp, dp, pp;
  // parallel.ep > 1: this rank's expert-parallel group (consecutive data-parallel ranks, which
  // split the routed experts), and its expert-data-parallel group (the data-parallel ranks at the
  // same place in theirs, which hold the same experts); both split from dp.
  std::unique_ptr<Communicator> ep, edp;
  std::unique_ptr<Communicator> pp_gradients;  // NCCL pipelines: the gradients' own link (else null)
  std::unique_ptr<Transformer> model;
  std::unique_ptr<PipelineExecutor> pipeline;  // pp > 1
  std::unique_ptr<TrainStep> step;
  PipelineSimulation schedule;  // pp > 1: the schedule run with forward:backward costs 1:2
  CheckpointLayout grid;        // the layout, as checkpoints record it

  // Collective over `world`. The pipeline schedule is built and checked (it must not hang)
  // before the model is allocated; the model's weights are initialized from run.seed. The
  // device comes from run.device (train/device_select.h).
  static RankModel build(const Config& config, Communicator& world, const Topology& topology);
  // The same on a given device (null: the CPU) instead of run.device's: the seam through which
  // tests run the device path on an emulated device.
  static RankModel build(const Config& config, Communicator& world, const Topology& topology,
                         std::unique_ptr<DeviceBackend> device);

  // True when this rank holds only a part of the model (tp > 1 or pp > 1).
  bool holds_part() const { return tp->size() > 1 || pp->size() > 1; }
  // whole_values := values laid out like this rank's parameters (weights, gradients or
  // moments), assembled into whole tensors laid out like `whole` (a store of every parameter,
  // without tensor parallelism). Collective over the tensor-, expert- and pipeline-parallel
  // groups.
  void gather_whole(const Tensor& local_values, const ParameterStore& whole, const Tensor& whole_values) const;
  const CheckpointLayout& layout() const { return grid; }
  // What this rank writes into a checkpoint: weights on data-parallel replica 0 and moments on
  // every ZeRO shard (on replica 0 without ZeRO), each value once (a routed expert from the
  // first rank of its expert-data-parallel group, or each of its ZeRO shards): a replicated parameter from
  // tensor-parallel rank 0 of those holding it, a tied embedding from the first stage. A
  // device's weights and moments are first copied into host mirrors, which the part points to.
  RankCheckpoint checkpoint_part();
  // Loads weights (and, when given, moments laid out like the parameters) read on the host
  // into the model and the step, wherever they live; refreshes a compute copy.
  void load_values(const Tensor& params, const Tensor& m, const Tensor& v);

  // Host mirrors of a device's weights and moments, for checkpoints (made on first use).
  std::unique_ptr<ParameterStore> host_params;
  Tensor host_m, host_v;

  RankModel() = default;
  RankModel(RankModel&&) noexcept = default;
  // Releases what this one holds in the destruction order above (the device last) before
  // taking the other's.
  RankModel& operator=(RankModel&& other) noexcept;
};

}  // namespace tessel
