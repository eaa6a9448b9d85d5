// SingleCommunicator: a group of one rank. Reductions leave data as it is, gathers and
// scatters copy, and sends to itself meet its own receives (same tag, in order). Lets one
// process train with the same code as a grid, without MPI. Every Work is complete on return.
#pragma once

#include "core/comm/communicator.h"

namespace tessel {

class SingleCommunicator final : public Communicator {
 public:
  explicit SingleCommunicator(std::string name = "world") : name_(std::move(name)) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::string& name() const override { return name_; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) override;
  std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) override;
  std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) override;
  std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) override;
  std::shared_ptr<Work> barrier_async() override;
  void all_reduce_doubles(double* x, int n, ReduceOp op) override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;
  FlightRecorder& recorder() override { return recorder_; }

 private:
  std::shared_ptr<Work> done(uint64_t seq);

  std::string name_;
  FlightRecorder recorder_;
};

}  // namespace tessel
