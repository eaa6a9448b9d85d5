// Data parallelism with the model on a device (run.device=cuda, tp = pp = 1), on the
// emulated device of tests/core/emulated_device.h, its groups served by the staged
// communicator (parallel/comm/staged_communicator.h: device tensors, carried over MPI through
// host copies), as RankModel picks it for ranks without NCCL: the buckets, ZeRO's shards and
// the all-gather of updated weights all work on device tensors.
// The emulated device's ops are the CPU's, so every rank must match the CPU run of the same
// layout bitwise, ZeRO 0, 1 and 2 alike.
#include <cstring>

#include <catch2/catch.hpp>

#include "tests/core/emulated_device.h"
#include "tests/parallel/mpi_world.h"
#include "tests/train/layout_run.h"
#include "train/rank_model.h"

using namespace tessel;
using testing::EmulatedDevice;

TEST_CASE("data parallelism on device tensors equals the CPU's bitwise, ZeRO 0, 1 and 2", "[mpi][device]") {
  MpiCommunicator& world = test_world();
  for (ZeroStage zero : {ZeroStage::k0, ZeroStage::k1, ZeroStage::k2}) {
    INFO("zero " << zero << ", " << world.size() << " ranks");
    Config c = tiny_layout_config("llama", "heads: 4, kv_heads: 2", 2, 12, 1);
    c.run.steps = 4;
    c.parallel.zero = zero;
    c.parallel.bucket_mb = 0.004;  // many buckets, several per layer
    const Topology topology = Topology::from_config(c.parallel, world.size(), world.rank());
    const auto fill = [](uint64_t first, const Tensor& tokens, const Tensor& targets) {
      fill_synthetic_tokens(first, tokens, targets, 5, 13);
    };
    RankModel cpu = RankModel::build(c, world, topology, nullptr);
    RankModel dev = RankModel::build(c, world, topology, std::make_unique<EmulatedDevice>());
    REQUIRE(dev.step->data_parallel().zero() == zero);
    for (int64_t s = 0; s < c.run.steps; ++s) {
      const StepResult a = cpu.step->run(s, fill), b = dev.step->run(s, fill);
      CHECK(a.loss == b.loss);
      CHECK(a.grad_norm == b.grad_norm);
    }
    const Tensor& mine = dev.model->parameters().params();
    Tensor back = Tensor::empty(mine.shape(), DType::F32);
    back.copy_from(mine);
    CHECK(std::memcmp(back.raw(), cpu.model->parameters().params().raw(), back.nbytes()) == 0);
  }
}
