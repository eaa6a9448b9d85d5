// The NCCL communicator on one GPU (a group of one: NCCL refuses two ranks on one device, so
// multi-rank NCCL runs need several GPUs). Skipped with a message without a GPU or NCCL.
#include <catch2/catch.hpp>

#ifdef TESSEL_HAVE_NCCL

#include <atomic>
#include <thread>

#include "core/dtype.h"
#include "core/kernels/cuda/device_context.h"
#include "parallel/comm/nccl_communicator.h"
#include "parallel/comm/single_communicator.h"
#include "tests/core/kernels/cuda_parity.h"

using namespace tessel;

TEST_CASE("NCCL communicator of one rank: every collective, f32 and bf16", "[gpu][comm]") {
  TESSEL_REQUIRE_GPU();
  cuda::DeviceContext ctx(0);
  SingleCommunicator bootstrap;
  std::unique_ptr<NcclCommunicator> nccl = NcclCommunicator::create(bootstrap, 0, "world", 60.0);
  REQUIRE(nccl->size() == 1);
  nccl->set_compute_stream(ctx.compute());
  auto to_device = [&](const Tensor& host) { return ctx.to_device(host); };
  auto to_host = [&](const Tensor& device) { return ctx.to_host(device); };
  Tensor x = to_device(Tensor::from_vector<float>({1, 2, 3, 4}, {4}));
  nccl->all_reduce_async(x, ReduceOp::kAvg)->wait();
  Tensor bf = Tensor::empty({3}, DType::BF16);
  for (int i = 0; i < 3; ++i) bf.data<uint16_t>()[i] = float_to_bf16(0.5f * i);
  Tensor bf_dev = to_device(bf);
  nccl->all_reduce(bf_dev, ReduceOp::kMax);
  Tensor gathered = to_device(Tensor::zeros({4}, DType::F32));
  nccl->all_gather(x, gathered);
  Tensor recv = to_device(Tensor::zeros({4}, DType::F32));
  nccl->send_recv({{P2POp::kSend, x, 0, 0}, {P2POp::kRecv, recv, 0, 0}});
  nccl->barrier();
  double d[2] = {1.5, -2};
  nccl->all_reduce_doubles(d, 2, ReduceOp::kSum);
  CHECK(to_host(x).data<float>()[3] == 4.0f);
  CHECK(bf16_to_float(to_host(bf_dev).data<uint16_t>()[2]) == 1.0f);
  CHECK(to_host(gathered).data<float>()[1] == 2.0f);
  CHECK(to_host(recv).data<float>()[2] == 3.0f);
  CHECK(d[0] == 1.5);
  std::unique_ptr<Communicator> sub = nccl->split(0, 0, "dp");
  CHECK(sub->size() == 1);
  nccl->barrier();
  CHECK(nccl->recorder().first_pending() == 0);  // every end event seen
}

TEST_CASE("a tensor NCCL still reads is not handed to compute work after its owner frees it", "[gpu][comm]") {
  TESSEL_REQUIRE_GPU();
  cuda::DeviceContext ctx(0);
  SingleCommunicator bootstrap;
  std::unique_ptr<NcclCommunicator> nccl = NcclCommunicator::create(bootstrap, 0, "world", 60.0);
  nccl->set_compute_stream(ctx.compute());
  // Hold the communication stream behind a gate the host opens later: the all-reduce below stays
  // queued, so the block under its tensor is still NCCL's when the tensor is freed.
  std::atomic<bool> open{false};
  cudaStream_t side = nullptr;
  cudaEvent_t gate = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaEventCreateWithFlags(&gate, cudaEventDisableTiming) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(
              side,
              [](void* flag) {
                while (!static_cast<std::atomic<bool>*>(flag)->load()) std::this_thread::yield();
              },
              &open) == cudaSuccess);
  REQUIRE(cudaEventRecord(gate, side) == cudaSuccess);
  REQUIRE(cudaStreamWaitEvent(nccl->stream(), gate, 0) == cudaSuccess);
  void* held = nullptr;
  {
    Tensor x = ctx.zeros({1 << 20}, DType::F32);
    held = x.raw();
    nccl->all_reduce_async(x, ReduceOp::kSum);  // queued behind the gate
  }                                             // x freed while the all-reduce still waits to read it
  Tensor y = ctx.empty({1 << 20}, DType::F32);
  CHECK(y.raw() != held);  // without record_stream the allocator would reuse the block at once
  open = true;
  REQUIRE(cudaStreamSynchronize(nccl->stream()) == cudaSuccess);
  cudaEventDestroy(gate);
  cudaStreamDestroy(side);
}

#else

TEST_CASE("NCCL communicator of one rank: every collective, f32 and bf16", "[gpu][comm]") {
  WARN("built without NCCL (no CUDA toolkit with nccl.h): NCCL test skipped");
}

#endif
