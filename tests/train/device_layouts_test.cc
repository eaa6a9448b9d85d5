// Tensor, sequence and pipeline parallelism with the model on a device, against the same
// layout on the CPU. The device is the emulated one of tests/core/emulated_device.h (host
// memory, the CPU's kernels, tensors that say they are on cuda:0 and refuse host reads), and
// RankModel gives its groups the staged communicator over MPI (parallel/comm/staged_communicator.h),
// as it does for ranks sharing a GPU. Every device path of these layouts runs: the
// sequence-parallel reordering, the vocab-parallel embedding and loss, the shared key/value
// head sums, the pipeline's transfers and gradient buffers, the tied embedding's sum between
// the first and the last stage, ZeRO 1. Its ops are the CPU's, so each rank's losses, gradient
// norms and weights must equal the CPU run of the same layout bitwise.
#include <algorithm>
#include <cstring>
#include <filesystem>

#include <catch2/catch.hpp>

#include "parallel/comm/staged_communicator.h"
#include "tests/core/emulated_device.h"
#include "tests/parallel/mpi_world.h"
#include "tests/train/checkpoint_relay.h"
#include "tests/train/layout_run.h"
#include "train/device_comm.h"
#include "train/rank_model.h"

using namespace tessel;
using testing::EmulatedDevice;

namespace {

// GPT-2 with its tied head, LLaMA (GQA, an untied head) with 2 key/value heads, and with 1
// (so tp 2 and 4 share it: the kv sums); 8 layers, 4 micro-batches of 2.
Config tiny(const std::string& arch) {
  const std::string heads = arch == "gpt2"    ? "heads: 4, kv_heads: 4"
                            : arch == "llama" ? "heads: 4, kv_heads: 2"
                                              : "heads: 4, kv_heads: 1";
  Config c = tiny_layout_config(arch == "gpt2" ? "gpt2" : "llama", heads, 8, 8, 2);
  c.run.steps = 3;
  return c;
}

Config layout(Config c, int tp, int pp, Schedule schedule = Schedule::k1F1B, int v = 1, bool sp = false) {
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.parallel.schedule = schedule;
  c.parallel.virtual_stages = v;
  c.parallel.sequence_parallel = sp;
  return c;
}

// Trains `c` as this rank on the CPU and on the emulated device, step by step, and requires the
// same bits: losses, gradient norms, then every weight this rank holds.
void device_equals_cpu(const Config& c, MpiCommunicator& world) {
  const Topology topology = Topology::from_config(c.parallel, world.size(), world.rank());
  const auto fill = [](uint64_t first, const Tensor& tokens, const Tensor& targets) {
    fill_synthetic_tokens(first, tokens, targets, 5, 13);
  };
  RankModel cpu = RankModel::build(c, world, topology, nullptr);
  auto owned = std::make_unique<EmulatedDevice>();
  EmulatedDevice* device = owned.get();
  RankModel dev = RankModel::build(c, world, topology, std::move(owned));
  // Every group of more than one rank stages device tensors through the host.
  for (Communicator* g : {dev.tp.get(), dev.pp.get(), dev.dp.get()}) {
    if (g->size() > 1) CHECK(dynamic_cast<StagedCommunicator*>(g) != nullptr);
  }
  for (int64_t s = 0; s < c.run.steps; ++s) {
    const StepResult a = cpu.step->run(s, fill), b = dev.step->run(s, fill);
    CHECK(a.loss == b.loss);
    CHECK(a.grad_norm == b.grad_norm);
  }
  // Evaluation (forward only, the vocab-parallel loss without its backward) agrees too.
  const int64_t B = c.batch.micro, T = c.model.seq_len;
  const auto eval = [&](RankModel& r) {
    const auto fill_eval = [&](int mb, const Tensor& tokens, const Tensor& targets) {
      fill(static_cast<uint64_t>(1000 + mb * B), tokens, targets);
    };
    if (r.pipeline) return r.pipeline->evaluate(2, fill_eval);
    const Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
    fill_eval(0, tokens, targets);
    return static_cast<double>(r.model->forward_loss(tokens, targets));
  };
  CHECK(eval(cpu) == eval(dev));
  const Tensor& mine = dev.model->parameters().params();
  REQUIRE(!mine.device().is_cpu());
  Tensor back = Tensor::empty(mine.shape(), DType::F32);
  back.copy_from(mine);
  CHECK(std::memcmp(back.raw(), cpu.model->parameters().params().raw(), back.nbytes()) == 0);
  // The work ran on the device, the vocab-parallel loss included on the last stage.
  const auto called = [&](const std::string& op) {
    return std::count_if(device->calls.begin(), device->calls.end(),
                         [&](const std::string& call) { return call.rfind(op, 0) == 0; });
  };
  CHECK(called("matmul_forward") > 0);
  if (c.parallel.tp > 1 && dev.model->part().head) CHECK(called("vocab_loss_dlogits") > 0);
  // The gradient norm: one reduction of this rank's counted pieces per step (one wait), not one
  // per parameter.
  CHECK(called("sums_of_squares") == c.run.steps);
  CHECK(called("sum_of_squares") == 0);
}

}  // namespace

TEST_CASE("tensor parallel on device tensors equals the CPU layout bitwise, with and without sequence parallelism",
          "[mpi][device][tp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  if (P != 2 && P != 4) return;
  for (const std::string arch : {"gpt2", "llama", "llama-kv1"}) {
    for (bool sp : {false, true}) {
      INFO(arch << ": tp " << P << ", sequence parallel " << sp);
      device_equals_cpu(layout(tiny(arch), P, 1, Schedule::k1F1B, 1, sp), world);
    }
  }
}

TEST_CASE("a device model under tensor parallelism refuses a target outside the vocabulary, naming it",
          "[mpi][device][tp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 2) return;
  const Config c = layout(tiny("gpt2"), 2, 1);
  const Topology topology = Topology::from_config(c.parallel, world.size(), world.rank());
  RankModel dev = RankModel::build(c, world, topology, std::make_unique<EmulatedDevice>());
  const int64_t B = c.batch.micro, T = c.model.seq_len;
  const Tensor tokens = Tensor::zeros({B, T}, DType::I32), targets = Tensor::zeros({B, T}, DType::I32);
  targets.data<int32_t>()[5] = 64;  // vocab_size is 64
  CHECK_THROWS_WITH(dev.model->forward_loss(tokens, targets),
                    Catch::Contains("target id 64 at position 5 is outside the vocabulary [0, 64)"));
}

TEST_CASE("pipeline parallel on device tensors equals the CPU layout bitwise, every schedule", "[mpi][device][pp]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  if (P != 2 && P != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {  // tied and untied heads
    for (const auto& [schedule, v] : std::vector<std::pair<Schedule, int>>{
             {Schedule::kGpipe, 1}, {Schedule::k1F1B, 1}, {Schedule::kInterleaved, 2}}) {
      INFO(arch << ": pp " << P << ", schedule " << schedule << ", virtual stages " << v);
      device_equals_cpu(layout(tiny(arch), 1, P, schedule, v), world);
    }
  }
}

TEST_CASE("tp 2 x pp 2 on device tensors equals the CPU layout bitwise", "[mpi][device][pp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    for (Schedule schedule : {Schedule::k1F1B, Schedule::kInterleaved}) {
      INFO(arch << ": tp 2 x pp 2, sequence parallel, " << schedule);
      device_equals_cpu(layout(tiny(arch), 2, 2, schedule, schedule == Schedule::kInterleaved ? 2 : 1, true), world);
    }
  }
}

TEST_CASE("pp 2 x dp 2 with ZeRO 2 on device tensors equals the CPU layout bitwise", "[mpi][device][pp]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  for (const std::string arch : {"gpt2", "llama"}) {
    INFO(arch << ": pp 2 x dp 2, zero 2, 1f1b");
    Config c = layout(tiny(arch), 1, 2);
    c.parallel.zero = ZeroStage::k2;
    device_equals_cpu(c, world);
  }
}

TEST_CASE("3D on device tensors: tp 2 x pp 2 x dp 2 with zero 1 equals the CPU layout bitwise", "[mpi8][device]") {
  MpiCommunicator& world = test_world();
  REQUIRE(world.size() == 8);
  for (const std::string arch : {"gpt2", "llama"}) {
    for (Schedule schedule : {Schedule::k1F1B, Schedule::kInterleaved}) {
      INFO(arch << ": tp 2 x pp 2 x dp 2, zero 1, sequence parallel, " << schedule);
      Config c = layout(tiny(arch), 2, 2, schedule, schedule == Schedule::kInterleaved ? 2 : 1, true);
      c.parallel.zero = ZeroStage::k1;
      device_equals_cpu(c, world);
    }
  }
}

TEST_CASE("a tp 2 x pp 2 checkpoint moves between a device run and a CPU run bitwise", "[mpi][device][checkpoint]") {
  MpiCommunicator& world = test_world();
  if (world.size() != 4) return;
  const std::string dir = "device_layouts_checkpoints";
  if (world.rank() == 0) std::filesystem::remove_all(dir);
  world.barrier();
  Config c = layout(tiny("gpt2"), 2, 2, Schedule::kInterleaved, 2, true);
  c.checkpoint.dir = dir;
  const Topology topology = Topology::from_config(c.parallel, world.size(), world.rank());
  // The tied embedding is saved from the first stage, each shard from its rank.
  const auto [want, got] = checkpoint_relay(c, world, topology);
  CHECK(got == want);
  world.barrier();
  if (world.rank() == 0) std::filesystem::remove_all(dir);
}

TEST_CASE("parallel.device_comm: auto picks NCCL only for a GPU per rank, nccl on a shared GPU is refused",
          "[device]") {
  Config c = tiny("gpt2");
  c.source = "run.yaml";
  // auto: a GPU each with NCCL built; staged when ranks share one or NCCL is missing.
  CHECK(resolve_device_comm(c, 8, 8, true) == DeviceComm::kNccl);
  CHECK(resolve_device_comm(c, 4, 1, true) == DeviceComm::kStaged);
  CHECK(resolve_device_comm(c, 2, 2, false) == DeviceComm::kStaged);
  CHECK(resolve_device_comm(c, 1, 0, true) == DeviceComm::kStaged);
  c.parallel.device_comm = DeviceComm::kStaged;
  CHECK(resolve_device_comm(c, 2, 2, true) == DeviceComm::kStaged);
  c.parallel.device_comm = DeviceComm::kNccl;
  CHECK(resolve_device_comm(c, 2, 2, true) == DeviceComm::kNccl);
  CHECK_THROWS_WITH(
      resolve_device_comm(c, 4, 1, true),
      Catch::Contains("run.yaml: parallel.device_comm=nccl with 4 ranks on this node and 1 GPU visible") &&
          Catch::Contains("NCCL refuses two ranks of one communicator on one device") &&
          Catch::Contains("hint: parallel.device_comm=staged"));
  CHECK_THROWS_WITH(resolve_device_comm(c, 1, 1, false), Catch::Contains("this build has no NCCL"));
}
