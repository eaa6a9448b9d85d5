#include "parallel/comm/staged_communicator.h"

namespace tessel {

StagedCommunicator::StagedCommunicator(std::unique_ptr<Communicator> owned)
    : owned_(std::move(owned)), inner_(*owned_) {}

StagedCommunicator::StagedCommunicator(Communicator& inner) : inner_(inner) {}

Tensor StagedCommunicator::host(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  Tensor h = Tensor::empty(t.shape(), t.dtype());
  h.copy_from(t);
  staged_bytes_ += static_cast<int64_t>(t.nbytes());
  return h;
}

void StagedCommunicator::back(const Tensor& t, const Tensor& h) {
  if (t.device().is_cpu()) return;
  t.copy_from(h);
  staged_bytes_ += static_cast<int64_t>(t.nbytes());
}

std::shared_ptr<Work> StagedCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  const Tensor h = host(x);
  inner_.all_reduce(h, op);
  back(x, h);
  return std::make_shared<CompletedWork>();
}

std::shared_ptr<Work> StagedCommunicator::reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) {
  const Tensor hin = host(in);
  const Tensor hout = out.device().is_cpu() ? out : Tensor::empty(out.shape(), out.dtype());
  inner_.reduce_scatter(hin, hout, op);
  back(out, hout);
  return std::make_shared<CompletedWork>();
}

std::shared_ptr<Work> StagedCommunicator::all_gather_async(const Tensor& in, const Tensor& out) {
  const Tensor hin = host(in);
  const Tensor hout = out.device().is_cpu() ? out : Tensor::empty(out.shape(), out.dtype());
  inner_.all_gather(hin, hout);
  back(out, hout);
  return std::make_shared<CompletedWork>();
}

std::shared_ptr<Work> StagedCommunicator::broadcast_async(const Tensor& x, int root) {
  // Only the root's values are read; the others receive.
  const Tensor h = rank() == root ? host(x) : (x.device().is_cpu() ? x : Tensor::empty(x.shape(), x.dtype()));
  inner_.broadcast(h, root);
  back(x, h);
  return std::make_shared<CompletedWork>();
}

namespace {

// The Work of sends alone: the device data is already in host buffers, which this keeps alive
// until the wrapped operation has finished with them.
class StagedSendWork final : public Work {
 public:
  StagedSendWork(std::shared_ptr<Work> inner, std::vector<P2POp> staged)
      : inner_(std::move(inner)), staged_(std::move(staged)) {}
  void wait() override { inner_->wait(); }
  bool is_completed() override { return inner_->is_completed(); }

 private:
  std::shared_ptr<Work> inner_;
  std::vector<P2POp> staged_;
};

}  // namespace

std::shared_ptr<Work> StagedCommunicator::send_recv_async(const std::vector<P2POp>& ops) {
  std::vector<P2POp> staged = ops;
  bool receives = false;
  for (P2POp& op : staged) {
    // A send's data goes to the host first; a receive needs only room there.
    if (op.kind == P2POp::kSend) {
      op.tensor = host(op.tensor);
    } else {
      receives = true;
      if (!op.tensor.device().is_cpu()) op.tensor = Tensor::empty(op.tensor.shape(), op.tensor.dtype());
    }
  }
  std::shared_ptr<Work> work = inner_.send_recv_async(staged);
  // Sends alone stay in flight, as they do on MPI: the device tensors may be reused at once, and
  // a pipeline's send does not wait for the peer's receive (two stages sending to each other
  // would otherwise wait for ever).
  if (!receives) return std::make_shared<StagedSendWork>(std::move(work), std::move(staged));
  work->wait();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == P2POp::kRecv) back(ops[i].tensor, staged[i].tensor);
  }
  return std::make_shared<CompletedWork>();
}

std::unique_ptr<Communicator> StagedCommunicator::split(int color, int key, const std::string& name) {
  return std::make_unique<StagedCommunicator>(inner_.split(color, key, name));
}

}  // namespace tessel
