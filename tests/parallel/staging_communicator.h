// StagingCommunicator: a test stand-in for NCCL over the emulated device. It takes device
// tensors (as NcclCommunicator does) and runs each operation on the wrapped CPU communicator
// (MPI) through host copies: in, operate, back out, completed before it returns. With it the
// data-parallel code runs on device tensors on a machine without GPUs, through the same
// Communicator interface that NCCL serves on GPUs. CPU tensors pass straight through.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/comm/communicator.h"

namespace tessel {
namespace testing {

class StagingCommunicator final : public Communicator {
 public:
  explicit StagingCommunicator(std::unique_ptr<Communicator> owned) : owned_(std::move(owned)), inner_(*owned_) {}
  explicit StagingCommunicator(Communicator& inner) : inner_(inner) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  const std::string& name() const override { return inner_.name(); }

  std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) override {
    const Tensor h = host(x);
    inner_.all_reduce(h, op);
    back(x, h);
    return done();
  }
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) override {
    const Tensor hin = host(in), hout = host(out);
    inner_.reduce_scatter(hin, hout, op);
    back(out, hout);
    return done();
  }
  std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) override {
    const Tensor hin = host(in), hout = host(out);
    inner_.all_gather(hin, hout);
    back(out, hout);
    return done();
  }
  std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) override {
    const Tensor h = host(x);
    inner_.broadcast(h, root);
    back(x, h);
    return done();
  }
  std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) override {
    std::vector<P2POp> staged = ops;
    for (P2POp& op : staged) op.tensor = host(op.tensor);
    inner_.send_recv(staged);
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].kind == P2POp::kRecv) back(ops[i].tensor, staged[i].tensor);
    }
    return done();
  }
  std::shared_ptr<Work> barrier_async() override { return inner_.barrier_async(); }
  void all_reduce_doubles(double* x, int n, ReduceOp op) override { inner_.all_reduce_doubles(x, n, op); }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override {
    return std::make_unique<StagingCommunicator>(inner_.split(color, key, name));
  }
  FlightRecorder& recorder() override { return inner_.recorder(); }

 private:
  // A host copy of a device tensor (the tensor itself on the CPU).
  static Tensor host(const Tensor& t) {
    if (t.device().is_cpu()) return t;
    Tensor h = Tensor::empty(t.shape(), t.dtype());
    h.copy_from(t);
    return h;
  }
  static void back(const Tensor& t, const Tensor& h) {
    if (!t.device().is_cpu()) t.copy_from(h);
  }
  static std::shared_ptr<Work> done() { return std::make_shared<CompletedWork>(); }

  std::unique_ptr<Communicator> owned_;
  Communicator& inner_;
};

}  // namespace testing
}  // namespace tessel
