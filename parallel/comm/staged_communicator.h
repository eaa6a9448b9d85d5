// StagedCommunicator: a group of device ranks that cannot use NCCL, because they share a GPU
// (NCCL refuses two ranks of one communicator on one device) or the build has no NCCL. Each
// operation stages its device tensors through host memory and runs on the wrapped CPU
// communicator (MPI): device → host, operate, host → device. parallel.device_comm picks it
// (train/device_comm.h).
//
// Ordering. A device's copy into host memory returns once the data is there, so it waits for
// the compute stream's earlier work (what the operation reads has been written); the copy back
// is queued on the compute stream, ahead of everything that reads the result. Collectives and
// receives are complete when they return; a batch of sends alone returns at once, its data in
// host buffers that its Work keeps until MPI is done with them (as an MPI send, it must not
// wait for the peer's receive). Either way the device tensors are free for reuse on return,
// and nothing needs record_stream (no other stream ever touches them). Host buffers are
// pageable: the copy back stages them before it returns, so they may be freed at once.
//
// CPU tensors pass straight through; tags of send_recv are kept (MPI matches by them).
// Everything else (barrier, doubles, the flight recorder) is the wrapped communicator's. Split
// groups are staged too. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/comm/communicator.h"

namespace tessel {

class StagedCommunicator final : public Communicator {
 public:
  // Owns the CPU communicator it stages through.
  explicit StagedCommunicator(std::unique_ptr<Communicator> owned);
  // Stages through `inner`, which must outlive this communicator.
  explicit StagedCommunicator(Communicator& inner);

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  const std::string& name() const override { return inner_.name(); }

  std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) override;
  std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) override;
  std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) override;
  std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) override;
  std::shared_ptr<Work> barrier_async() override { return inner_.barrier_async(); }
  void all_reduce_doubles(double* x, int n, ReduceOp op) override { inner_.all_reduce_doubles(x, n, op); }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;
  FlightRecorder& recorder() override { return inner_.recorder(); }

  // Bytes copied between device and host so far, both ways (for tests and benchmarks).
  int64_t staged_bytes() const { return staged_bytes_; }

 private:
  // A host copy of a device tensor (the tensor itself on the CPU); waits for its producer.
  Tensor host(const Tensor& t);
  // Copies a host result back into device tensor `t` (nothing for a CPU tensor).
  void back(const Tensor& t, const Tensor& h);

  std::unique_ptr<Communicator> owned_;
  Communicator& inner_;
  int64_t staged_bytes_ = 0;
};

}  // namespace tessel
