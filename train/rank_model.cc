#include "train/rank_model.h"

#include <new>

#include "core/error.h"
#include "core/model/shard.h"
#include "parallel/rank_identity.h"
#include "train/device_comm.h"
#include "train/device_select.h"

#include "parallel/data_parallel.h"
#include "parallel/tensor_parallel.h"

namespace tessel {
namespace {

// The model's compute type: precision.compute on a device, F32 on the CPU.
DType compute_dtype(const Config& config, bool on_device) {
  if (!on_device || config.precision.compute == Precision::kFp32) return DType::F32;
  return config.precision.compute == Precision::kBf16 ? DType::BF16 : DType::F16;
}

}  // namespace

RankModel& RankModel::operator=(RankModel&& other) noexcept {
  // Destroying releases the members in reverse declaration order, the device last; the default
  // assignment would assign (and so free) the device first, under the model that lives on it.
  if (this != &other) {
    this->~RankModel();
    new (this) RankModel(std::move(other));
  }
  return *this;
}

RankModel RankModel::build(const Config& config, Communicator& world, const Topology& topology) {
  // The GPU is the one of this rank's place on its node, as the launcher set it.
  return build(config, world, topology, make_device(config, rank_identity_from_environment().local_rank));
}

RankModel RankModel::build(const Config& config, Communicator& world, const Topology& topology,
                           std::unique_ptr<DeviceBackend> device) {
  RankModel r;
  r.device = std::move(device);
  const int pp = topology.size(Axis::kPp), v = static_cast<int>(config.parallel.virtual_stages);
  // This replica's micro-batches per step (batch.shares, or an equal split).
  const int micro_batches = static_cast<int>(micro_batches_per_replica(
      config.batch, topology.size(Axis::kDp))[static_cast<size_t>(topology.coord(Axis::kDp))]);
  ModelPart part;
  std::vector<PipeAction> actions;
  if (pp > 1) {
    const std::vector<std::vector<PipeAction>> schedule =
        build_pipeline_schedule(config.parallel.schedule, pp, v, micro_batches);
    r.schedule = simulate_pipeline(schedule, pp, v);
    TESSEL_CHECK(r.schedule.complete) << "pipeline schedule '" << config.parallel.schedule
                                      << "' would hang: " << r.schedule.stuck;
    actions = schedule[static_cast<size_t>(topology.coord(Axis::kPp))];
    part = pipeline_model_part(config.model.layers, pp, v, topology.coord(Axis::kPp), actions,
                               config.parallel.pipeline_split);
  }
  // A device model's groups carry device tensors: NCCL, or staged over MPI (train/device_comm.h).
  const DeviceComm comm = r.device ? device_comm_here(config) : DeviceComm::kStaged;
  const auto group = [&](Axis axis, const char* name) {
    return device_group(world.split(topology.group_color(axis), topology.coord(axis), name), r.device.get(), comm,
                        config, name);
  };
  r.tp = group(Axis::kTp, "tp");
  r.dp = group(Axis::kDp, "dp");
  r.pp = group(Axis::kPp, "pp");
  if (pp > 1 && comm == DeviceComm::kNccl) {
    // NCCL has no tags: every link must receive in the order it sends, and gradients get a
    // communicator of their own (parallel/pipeline_executor.h).
    TESSEL_CHECK(r.schedule.transfers_in_order)
        << "pipeline schedule '" << config.parallel.schedule << "' cannot run over NCCL: " << r.schedule.out_of_order;
    r.pp_gradients = group(Axis::kPp, "pp gradients");
  }
  const int ep = static_cast<int>(config.parallel.ep);
  if (ep > 1) {
    TESSEL_CHECK(r.dp->size() % ep == 0)
        << "parallel.ep (" << ep << ") must divide the data-parallel ranks (" << r.dp->size()
        << "): expert-parallel groups are taken from them; hint: launch a multiple of tp x pp x ep ranks ("
        << topology.size(Axis::kTp) * pp * ep << ")";
    TESSEL_CHECK(!r.device) << "parallel.ep (" << ep << ") runs on the CPU backend only for now (MoE layers "
                            << "run on a GPU without it); hint: run.device: cpu, or parallel.ep: 1";
    // Consecutive data-parallel ranks form a group; the ranks at the same place in each group
    // hold the same experts.
    r.ep = r.dp->split(r.dp->rank() / ep, r.dp->rank() % ep, "ep");
    r.edp = r.dp->split(r.dp->rank() % ep, r.dp->rank() / ep, "expert dp");
  }
  TransformerOptions options(config.batch.micro, config.model.seq_len);
  options.ep_group = r.ep.get();
  if (r.edp) options.expert_param_multiple = bucket_multiple(r.edp->size());
  options.recompute = config.parallel.recompute;
  options.param_multiple = bucket_multiple(r.dp->size());
  options.tp_group = r.tp.get();
  options.sequence_parallel = config.parallel.sequence_parallel;
  options.part = part;
  options.device = r.device.get();
  options.compute = compute_dtype(config, r.device != nullptr);
  r.model = std::make_unique<Transformer>(config.model, options);
  r.model->parameters().initialize(config.run.seed);
  if (pp > 1) r.pipeline = std::make_unique<PipelineExecutor>(*r.model, *r.pp, actions, v, r.pp_gradients.get());
  r.step = std::make_unique<TrainStep>(config, *r.model, *r.dp, r.tp.get(), r.pipeline.get(), r.ep.get(), r.edp.get());
  r.grid.tp = r.tp->size();
  r.grid.pp = r.pp->size();
  r.grid.dp = r.dp->size();
  r.grid.zero = zero_stage(r.step->data_parallel().zero());
  r.grid.virtual_stages = v;
  r.grid.schedule = name_of(config.parallel.schedule);
  r.grid.world_size = world.size();
  return r;
}

RankCheckpoint RankModel::checkpoint_part() {
  const ParameterStore* source = &model->parameters();
  std::vector<RankCheckpoint::StateSegment> segments = step->state_segments();
  if (device) {
    // The checkpoint writer reads host memory: mirror the weights and the moments there.
    if (!host_params) {
      // One region: expert parallelism (a region of its own for the experts) runs on the CPU only.
      TESSEL_CHECK(!source->has_expert_region()) << "a device model with an expert region";
      std::vector<ParamSpec> specs;
      for (const ParamEntry& e : source->entries()) specs.push_back(e.spec);
      host_params =
          std::make_unique<ParameterStore>(std::move(specs), source->numel(), source->tp_rank(), source->tp_size());
      host_m = Tensor::empty(step->exp_avg().shape(), DType::F32);
      host_v = Tensor::empty(step->exp_avg_sq().shape(), DType::F32);
    }
    host_params->params().copy_from(source->params());
    host_m.copy_from(step->exp_avg());
    host_v.copy_from(step->exp_avg_sq());
    source = host_params.get();
    segments = step->state_segments(host_m, host_v);
  }
  const ParameterStore& store = *source;
  std::vector<bool> own;  // per entry: this rank writes the values it holds
  for (const ParamEntry& e : store.entries()) {
    own.push_back(tp->rank() % shard_replicas(e.spec, tp->size()) == 0 && !model->is_tied_copy(e.spec.name));
  }
  // A routed expert split over expert-parallel ranks is written by the ranks that hold it: the
  // first of its expert-data-parallel group, or each ZeRO shard's.
  const DataParallel* experts = step->expert_data_parallel();
  const bool expert_first = experts != nullptr && edp->rank() == 0;
  const bool expert_sharded = experts != nullptr && experts->zero() != ZeroStage::k0;
  const auto is_expert = [&](size_t entry) { return experts != nullptr && store.entries()[entry].spec.expert >= 0; };
  RankCheckpoint part;
  part.params = &store;
  part.write_params.assign(own.size(), false);
  for (size_t k = 0; k < own.size(); ++k)
    part.write_params[k] = own[k] && (is_expert(k) ? expert_first : dp->rank() == 0);
  for (const RankCheckpoint::StateSegment& s : segments) {
    const bool writes = is_expert(s.entry) ? expert_first || expert_sharded : dp->rank() == 0 || grid.zero > 0;
    if (own[s.entry] && writes) part.state.push_back(s);
  }
  return part;
}

void RankModel::gather_whole(const Tensor& local_values, const ParameterStore& whole,
                             const Tensor& whole_values) const {
  gather_shards(model->parameters(), local_values, whole, whole_values, tp.get());
  // Each expert-parallel rank filled in its routed experts: the sum over the group has them all.
  if (ep && ep->size() > 1) {
    for (const ParamEntry& e : whole.entries()) {
      if (e.spec.expert >= 0) ep->all_reduce(whole_values.view(e.offset, {e.numel}), ReduceOp::kSum);
    }
  }
  // Each stage now holds its parameters whole and zeros elsewhere: the sum over the stages is
  // the model. A tied embedding's copy on the last stage is left out (the first stage's
  // counts). Parameter by parameter, so each stays within MPI's element count.
  if (pp->size() == 1) return;
  for (const ParamEntry& e : whole.entries()) {
    const Tensor part = whole_values.view(e.offset, {e.numel});
    if (model->is_tied_copy(e.spec.name)) part.fill_zero();
    pp->all_reduce(part, ReduceOp::kSum);
  }
}

void RankModel::load_values(const Tensor& params, const Tensor& m, const Tensor& v) {
  ParameterStore& store = model->parameters();
  store.params().copy_from(params);  // host to device, or within the host
  store.sync_compute_params();
  step->load_full_adam_state(m, v);
}

}  // namespace tessel
