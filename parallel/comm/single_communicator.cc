#include "parallel/comm/single_communicator.h"

#include <cstring>
#include <string>

#include "core/error.h"

namespace tessel {
namespace {

void copy_bytes(const Tensor& from, const Tensor& to) {
  if (from.raw() != to.raw()) std::memcpy(to.raw(), from.raw(), from.nbytes());
}

}  // namespace

std::shared_ptr<Work> SingleCommunicator::done(uint64_t seq) {
  recorder_.complete(seq);
  return std::make_shared<CompletedWork>();
}

std::shared_ptr<Work> SingleCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  check_reduce_dtype(x, "all_reduce");
  return done(
      recorder_.record(std::string("all_reduce(") + reduce_op_name(op) + ")", x.numel(), dtype_name(x.dtype())));
}

std::shared_ptr<Work> SingleCommunicator::reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) {
  check_reduce_dtype(in, "reduce_scatter");
  check_gather_shapes(out, in, 1, "reduce_scatter");
  const uint64_t seq =
      recorder_.record(std::string("reduce_scatter(") + reduce_op_name(op) + ")", in.numel(), dtype_name(in.dtype()));
  copy_bytes(in, out);
  return done(seq);
}

std::shared_ptr<Work> SingleCommunicator::all_gather_async(const Tensor& in, const Tensor& out) {
  check_gather_shapes(in, out, 1, "all_gather");
  const uint64_t seq = recorder_.record("all_gather", in.numel(), dtype_name(in.dtype()));
  copy_bytes(in, out);
  return done(seq);
}

std::shared_ptr<Work> SingleCommunicator::broadcast_async(const Tensor& x, int root) {
  TESSEL_CHECK(root == 0) << "broadcast from rank " << root << " in a group of one";
  return done(recorder_.record("broadcast", x.numel(), dtype_name(x.dtype()), root));
}

std::shared_ptr<Work> SingleCommunicator::send_recv_async(const std::vector<P2POp>& ops) {
  const uint64_t seq = recorder_.record("send_recv", static_cast<int64_t>(ops.size()), "ops");
  std::vector<bool> used(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    TESSEL_CHECK(ops[i].peer == 0) << "send_recv with peer " << ops[i].peer << " in a group of one";
    if (ops[i].kind != P2POp::kRecv) continue;
    bool matched = false;
    for (size_t j = 0; j < ops.size() && !matched; ++j) {
      if (used[j] || ops[j].kind != P2POp::kSend || ops[j].tag != ops[i].tag) continue;
      TESSEL_CHECK(ops[j].tensor.nbytes() == ops[i].tensor.nbytes())
          << "send_recv to self, tag " << ops[i].tag << ": sent " << ops[j].tensor.nbytes()
          << " bytes into a receive of " << ops[i].tensor.nbytes();
      copy_bytes(ops[j].tensor, ops[i].tensor);
      used[j] = matched = true;
    }
    TESSEL_CHECK(matched) << "send_recv to self: a receive with tag " << ops[i].tag << " has no matching send";
  }
  return done(seq);
}

std::shared_ptr<Work> SingleCommunicator::barrier_async() { return done(recorder_.record("barrier", 0, "-")); }

void SingleCommunicator::all_reduce_doubles(double*, int n, ReduceOp op) {
  done(recorder_.record(std::string("all_reduce_doubles(") + reduce_op_name(op) + ")", n, "f64"));
}

std::unique_ptr<Communicator> SingleCommunicator::split(int, int, const std::string& name) {
  return std::make_unique<SingleCommunicator>(name);
}

}  // namespace tessel
