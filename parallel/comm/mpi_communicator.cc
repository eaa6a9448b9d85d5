#include "parallel/comm/mpi_communicator.h"

#include <climits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace tessel {
namespace {

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<MpiTaskState> state, double timeout_s, std::string what)
      : state_(std::move(state)), timeout_s_(timeout_s), what_(std::move(what)) {}
  void wait() override { wait_task(*state_, timeout_s_, what_); }
  bool is_completed() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->done;
  }

 private:
  std::shared_ptr<MpiTaskState> state_;
  double timeout_s_;
  std::string what_;
};

// Communicators return MPI errors instead of killing the process (MPI_ERRORS_RETURN), so a
// failed call becomes a Work error with the flight recorder dumped.
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  TESSEL_FAIL() << what << " failed: " << std::string(text, static_cast<size_t>(length));
}

int mpi_count(int64_t n, const char* what) {
  TESSEL_CHECK(n >= 0 && n <= INT_MAX) << what << " of " << n << " elements: MPI counts stop at " << INT_MAX
                                       << "; hint: split the tensor";
  return static_cast<int>(n);
}

// x *= 1 / size, in the tensor's dtype: the second half of an average.
void scale(const Tensor& x, int size) {
  const float s = 1.0f / static_cast<float>(size);
  const int64_t n = x.numel();
  if (x.dtype() == DType::F32) {
    float* p = x.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] *= s;
  } else {
    uint16_t* p = x.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = float_to_bf16(bf16_to_float(p[i]) * s);
  }
}

// The MPI datatype and operator of a reduction: MPI's own for f32, the runtime's for bf16.
// kAvg reduces as a sum; the caller scales.
std::pair<MPI_Datatype, MPI_Op> mpi_reduction(const MpiRuntime& runtime, DType dtype, ReduceOp op) {
  const bool bf16 = dtype == DType::BF16;
  const MPI_Datatype type = bf16 ? runtime.bf16_type() : MPI_FLOAT;
  if (op == ReduceOp::kMax) return {type, bf16 ? runtime.bf16_max() : MPI_MAX};
  return {type, bf16 ? runtime.bf16_sum() : MPI_SUM};
}

}  // namespace

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(MpiRuntime& runtime, double timeout_s) {
  MPI_Comm comm = MPI_COMM_NULL;
  runtime.run([&] { MPI_Comm_dup(MPI_COMM_WORLD, &comm); });
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(runtime, comm, "world", timeout_s));
}

MpiCommunicator::MpiCommunicator(MpiRuntime& runtime, MPI_Comm comm, std::string name, double timeout_s)
    : runtime_(runtime), comm_(comm), name_(std::move(name)), timeout_s_(timeout_s) {
  runtime_.run([&] {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  });
}

MpiCommunicator::~MpiCommunicator() {
  try {
    runtime_.run([this] { MPI_Comm_free(&comm_); });
  } catch (...) {
    // Shutting down after a failure: the communicator dies with the process.
  }
}

std::shared_ptr<Work> MpiCommunicator::submit(const std::string& op, int64_t count, DType dtype, int peer,
                                              std::function<void(std::vector<MPI_Request>*)> start,
                                              std::function<void()> finish) {
  const uint64_t seq = recorder_->record(op, count, dtype_name(dtype), peer);
  MpiTask task;
  task.start = std::move(start);
  task.finish = [recorder = recorder_, seq, finish = std::move(finish)] {
    if (finish) finish();
    recorder->complete(seq);
  };
  std::shared_ptr<MpiTaskState> state = runtime_.submit(std::move(task));
  return std::make_shared<MpiWork>(std::move(state), timeout_s_,
                                   op + " #" + std::to_string(seq) + " on communicator '" + name_ + "' (rank " +
                                       std::to_string(rank_) + " of " + std::to_string(size_) + ")");
}

void MpiCommunicator::check_host(const Tensor& t, const char* op) const {
  TESSEL_CHECK(t.device().is_cpu()) << op << " on MPI communicator '" << name_ << "': tensor " << t.str()
                                    << " is in device memory, which MPI does not move here; hint: device tensors "
                                    << "go through the NCCL communicator";
}

std::shared_ptr<Work> MpiCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  check_host(x, "all_reduce");
  check_reduce_dtype(x, "all_reduce");
  const int n = mpi_count(x.numel(), "all_reduce");
  const std::pair<MPI_Datatype, MPI_Op> reduction = mpi_reduction(runtime_, x.dtype(), op);
  const MPI_Datatype type = reduction.first;
  const MPI_Op mpi_op = reduction.second;
  std::function<void()> finish;
  if (op == ReduceOp::kAvg) finish = [x, size = size_] { scale(x, size); };
  return submit(
      std::string("all_reduce(") + reduce_op_name(op) + ")", x.numel(), x.dtype(), -1,
      [this, x, n, type, mpi_op](std::vector<MPI_Request>* r) {
        r->emplace_back();
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, x.raw(), n, type, mpi_op, comm_, &r->back()), "MPI_Iallreduce");
      },
      std::move(finish));
}

std::shared_ptr<Work> MpiCommunicator::reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) {
  check_host(in, "reduce_scatter");
  check_host(out, "reduce_scatter");
  check_reduce_dtype(in, "reduce_scatter");
  check_gather_shapes(out, in, size_, "reduce_scatter");
  TESSEL_CHECK(in.raw() != out.raw()) << "reduce_scatter: the output must not alias the input";
  const int n = mpi_count(out.numel(), "reduce_scatter");
  const std::pair<MPI_Datatype, MPI_Op> reduction = mpi_reduction(runtime_, in.dtype(), op);
  const MPI_Datatype type = reduction.first;
  const MPI_Op mpi_op = reduction.second;
  std::function<void()> finish;
  if (op == ReduceOp::kAvg) finish = [out, size = size_] { scale(out, size); };
  return submit(
      std::string("reduce_scatter(") + reduce_op_name(op) + ")", in.numel(), in.dtype(), -1,
      [this, in, out, n, type, mpi_op](std::vector<MPI_Request>* r) {
        r->emplace_back();
        check_mpi(MPI_Ireduce_scatter_block(in.raw(), out.raw(), n, type, mpi_op, comm_, &r->back()),
                  "MPI_Ireduce_scatter_block");
      },
      std::move(finish));
}

std::shared_ptr<Work> MpiCommunicator::all_gather_async(const Tensor& in, const Tensor& out) {
  check_host(in, "all_gather");
  check_host(out, "all_gather");
  check_gather_shapes(in, out, size_, "all_gather");
  const int bytes = mpi_count(static_cast<int64_t>(in.nbytes()), "all_gather (bytes)");
  const bool in_place =
      static_cast<char*>(in.raw()) == static_cast<char*>(out.raw()) + static_cast<size_t>(rank_) * in.nbytes();
  return submit("all_gather", in.numel(), in.dtype(), -1,
                [this, in, out, bytes, in_place](std::vector<MPI_Request>* r) {
                  r->emplace_back();
                  check_mpi(MPI_Iallgather(in_place ? MPI_IN_PLACE : in.raw(), bytes, MPI_BYTE, out.raw(), bytes,
                                           MPI_BYTE, comm_, &r->back()),
                            "MPI_Iallgather");
                });
}

std::shared_ptr<Work> MpiCommunicator::broadcast_async(const Tensor& x, int root) {
  check_host(x, "broadcast");
  TESSEL_CHECK(root >= 0 && root < size_) << "broadcast from rank " << root << " in a group of " << size_;
  const int bytes = mpi_count(static_cast<int64_t>(x.nbytes()), "broadcast (bytes)");
  return submit("broadcast", x.numel(), x.dtype(), root, [this, x, bytes, root](std::vector<MPI_Request>* r) {
    r->emplace_back();
    check_mpi(MPI_Ibcast(x.raw(), bytes, MPI_BYTE, root, comm_, &r->back()), "MPI_Ibcast");
  });
}

std::shared_ptr<Work> MpiCommunicator::send_recv_async(const std::vector<P2POp>& ops) {
  for (const P2POp& op : ops) check_host(op.tensor, "send_recv");
  int64_t count = 0;
  for (const P2POp& op : ops) {
    TESSEL_CHECK(op.peer >= 0 && op.peer < size_) << "send_recv with peer " << op.peer << " in a group of " << size_;
    mpi_count(static_cast<int64_t>(op.tensor.nbytes()), "send_recv (bytes)");
    count += op.tensor.numel();
  }
  const DType dtype = ops.empty() ? DType::U8 : ops.front().tensor.dtype();
  return submit(
      "send_recv(" + std::to_string(ops.size()) + " ops)", count, dtype, ops.empty() ? -1 : ops.front().peer,
      [this, ops](std::vector<MPI_Request>* r) {
        for (const P2POp& op : ops) {
          r->emplace_back();
          const int bytes = static_cast<int>(op.tensor.nbytes());
          if (op.kind == P2POp::kSend) {
            check_mpi(MPI_Isend(op.tensor.raw(), bytes, MPI_BYTE, op.peer, op.tag, comm_, &r->back()), "MPI_Isend");
          } else {
            check_mpi(MPI_Irecv(op.tensor.raw(), bytes, MPI_BYTE, op.peer, op.tag, comm_, &r->back()), "MPI_Irecv");
          }
        }
      });
}

std::shared_ptr<Work> MpiCommunicator::barrier_async() {
  return submit("barrier", 0, DType::U8, -1, [this](std::vector<MPI_Request>* r) {
    r->emplace_back();
    check_mpi(MPI_Ibarrier(comm_, &r->back()), "MPI_Ibarrier");
  });
}

void MpiCommunicator::all_reduce_doubles(double* x, int n, ReduceOp op) {
  const MPI_Op mpi_op = op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;
  const uint64_t seq = recorder_->record(std::string("all_reduce_doubles(") + reduce_op_name(op) + ")", n, "F64");
  // The operation owns its buffer: after a timeout MPI may still write into it.
  auto buffer = std::make_shared<std::vector<double>>(x, x + n);
  MpiTask task;
  task.start = [this, buffer, mpi_op](std::vector<MPI_Request>* r) {
    r->emplace_back();
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, buffer->data(), static_cast<int>(buffer->size()), MPI_DOUBLE, mpi_op, comm_,
                             &r->back()),
              "MPI_Iallreduce");
  };
  task.finish = [recorder = recorder_, seq] { recorder->complete(seq); };
  std::shared_ptr<MpiTaskState> state = runtime_.submit(std::move(task));
  wait_task(*state, timeout_s_, "all_reduce_doubles #" + std::to_string(seq) + " on communicator '" + name_ + "'");
  for (int i = 0; i < n; ++i)
    x[i] = op == ReduceOp::kAvg ? (*buffer)[static_cast<size_t>(i)] / size_ : (*buffer)[static_cast<size_t>(i)];
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string& name) {
  const uint64_t seq = recorder_->record("split", 0, "-", color);
  MPI_Comm sub = MPI_COMM_NULL;
  runtime_.run([&] { check_mpi(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split"); });
  recorder_->complete(seq);
  return std::unique_ptr<Communicator>(new MpiCommunicator(runtime_, sub, name, timeout_s_));
}

}  // namespace tessel
