#include "parallel/comm/nccl_communicator.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/kernels/cuda/cuda_check.h"
#include "core/kernels/cuda/device_context.h"

namespace tessel {
namespace {

constexpr int kScratchDoubles = 64;

void check_nccl(ncclResult_t rc, const char* what) {
  TESSEL_CHECK(rc == ncclSuccess) << what << ": " << ncclGetErrorString(rc)
                                  << "; hint: NCCL_DEBUG=WARN shows NCCL's own account";
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U8: return ncclUint8;
    case DType::I8: return ncclInt8;
    case DType::U32: return ncclUint32;
    case DType::F64: return ncclFloat64;
    case DType::U16:
    case DType::I16: return ncclUint8;  // moved as bytes: count doubled by the caller
  }
  return ncclUint8;
}

// Elements as NCCL counts them: 16-bit integer tensors move as twice as many bytes.
size_t nccl_count(const Tensor& t) {
  return t.dtype() == DType::U16 || t.dtype() == DType::I16 ? t.nbytes() : static_cast<size_t>(t.numel());
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
  }
  return ncclSum;
}

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<CUevent_st> done, cudaStream_t compute) : done_(std::move(done)), compute_(compute) {}
  void wait() override { TESSEL_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_.get(), 0)); }
  bool is_completed() override {
    const cudaError_t rc = cudaEventQuery(done_.get());
    if (rc == cudaErrorNotReady) return false;
    TESSEL_CUDA_CHECK(rc);
    return true;
  }

 private:
  std::shared_ptr<CUevent_st> done_;  // shared with the communicator's pending list
  cudaStream_t compute_;
};

}  // namespace

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(Communicator& bootstrap, int device, const std::string& name,
                                                           double timeout_s) {
  TESSEL_CUDA_CHECK(cudaSetDevice(device));
  ncclUniqueId id;
  if (bootstrap.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  Tensor bytes = Tensor::empty({static_cast<int64_t>(sizeof(id))}, DType::U8);
  std::memcpy(bytes.raw(), &id, sizeof(id));
  bootstrap.broadcast(bytes, 0);
  std::memcpy(&id, bytes.raw(), sizeof(id));
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()),
             "ncclCommInitRank (one rank per GPU: NCCL refuses two ranks on one device)");
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(comm, device, name, timeout_s));
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int device, std::string name, double timeout_s)
    : comm_(comm), device_(device), name_(std::move(name)), timeout_s_(timeout_s) {
  check_nccl(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
  check_nccl(ncclCommCount(comm_, &size_), "ncclCommCount");
  TESSEL_CUDA_CHECK(cudaSetDevice(device_));
  TESSEL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  TESSEL_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
  TESSEL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&scratch_), kScratchDoubles * sizeof(double)));
}

NcclCommunicator::~NcclCommunicator() {
  try {
    synchronize("destroying NCCL communicator '" + name_ + "'");
  } catch (const Error&) {
    // Already aborted: the resources below go regardless.
  }
  pending_.clear();
  cudaFree(scratch_);
  cudaEventDestroy(ready_);
  cudaStreamDestroy(stream_);
  ncclCommDestroy(comm_);
}

void NcclCommunicator::check_device(const Tensor& t, const char* what) const {
  TESSEL_CHECK(t.device() == Device::cuda(device_))
      << what << " on NCCL communicator '" << name_ << "': tensor " << t.str() << " is not on cuda:" << device_;
  // NCCL reads and writes the tensor on this communicator's stream, after its owner may have
  // freed it: the caching allocator must not hand its block to compute work before this stream
  // is done with it (record_stream; core/caching_allocator.h).
  if (auto* context = dynamic_cast<cuda::DeviceContext*>(t.storage()->backend()); context != nullptr) {
    context->allocator().record_stream(t.storage()->data(), reinterpret_cast<StreamId>(stream_));
  }
}

void NcclCommunicator::synchronize(const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t rc = cudaStreamQuery(stream_);
    if (rc == cudaSuccess) break;
    TESSEL_CHECK(rc == cudaErrorNotReady) << what << ": " << cudaGetErrorString(rc);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if ((async != ncclSuccess && async != ncclInProgress) || (timeout_s_ > 0 && waited > timeout_s_)) {
      ncclCommAbort(comm_);
      TESSEL_FAIL() << what << " on NCCL communicator '" << name_ << "': "
                    << (async != ncclSuccess && async != ncclInProgress
                            ? std::string(ncclGetErrorString(async))
                            : "not done within " + std::to_string(timeout_s_) + " s (parallel.timeout_s)")
                    << "; the communicator was aborted; see the flight recorder of each rank";
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  sweep_completed();
}

void NcclCommunicator::sweep_completed() {
  size_t kept = 0;
  for (auto& entry : pending_) {
    if (cudaEventQuery(entry.second.get()) == cudaSuccess) {
      recorder_.complete(entry.first);
    } else {
      pending_[kept++] = std::move(entry);
    }
  }
  pending_.resize(kept);
}

void NcclCommunicator::after_compute() {
  sweep_completed();
  TESSEL_CUDA_CHECK(cudaEventRecord(ready_, compute_));
  TESSEL_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
}

std::shared_ptr<Work> NcclCommunicator::finish(uint64_t seq) {
  cudaEvent_t raw = nullptr;
  TESSEL_CUDA_CHECK(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming));
  std::shared_ptr<CUevent_st> done(raw, [](cudaEvent_t e) { cudaEventDestroy(e); });
  TESSEL_CUDA_CHECK(cudaEventRecord(raw, stream_));
  pending_.emplace_back(seq, done);
  return std::make_shared<NcclWork>(std::move(done), compute_);
}

std::shared_ptr<Work> NcclCommunicator::all_reduce_async(const Tensor& x, ReduceOp op) {
  check_reduce_dtype(x, "all_reduce");
  check_device(x, "all_reduce");
  const uint64_t seq =
      recorder_.record(std::string("all_reduce(") + reduce_op_name(op) + ")", x.numel(), dtype_name(x.dtype()));
  after_compute();
  check_nccl(ncclAllReduce(x.raw(), x.raw(), nccl_count(x), nccl_type(x.dtype()), nccl_op(op), comm_, stream_),
             "ncclAllReduce");
  return finish(seq);
}

std::shared_ptr<Work> NcclCommunicator::reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) {
  check_reduce_dtype(in, "reduce_scatter");
  check_gather_shapes(out, in, size_, "reduce_scatter");
  check_device(in, "reduce_scatter");
  check_device(out, "reduce_scatter");
  const uint64_t seq =
      recorder_.record(std::string("reduce_scatter(") + reduce_op_name(op) + ")", in.numel(), dtype_name(in.dtype()));
  after_compute();
  check_nccl(
      ncclReduceScatter(in.raw(), out.raw(), nccl_count(out), nccl_type(in.dtype()), nccl_op(op), comm_, stream_),
      "ncclReduceScatter");
  return finish(seq);
}

std::shared_ptr<Work> NcclCommunicator::all_gather_async(const Tensor& in, const Tensor& out) {
  check_gather_shapes(in, out, size_, "all_gather");
  check_device(in, "all_gather");
  check_device(out, "all_gather");
  const uint64_t seq = recorder_.record("all_gather", in.numel(), dtype_name(in.dtype()));
  after_compute();
  check_nccl(ncclAllGather(in.raw(), out.raw(), nccl_count(in), nccl_type(in.dtype()), comm_, stream_),
             "ncclAllGather");
  return finish(seq);
}

std::shared_ptr<Work> NcclCommunicator::broadcast_async(const Tensor& x, int root) {
  TESSEL_CHECK(root >= 0 && root < size_) << "broadcast from rank " << root << " in a group of " << size_;
  check_device(x, "broadcast");
  const uint64_t seq = recorder_.record("broadcast", x.numel(), dtype_name(x.dtype()), root);
  after_compute();
  check_nccl(ncclBroadcast(x.raw(), x.raw(), nccl_count(x), nccl_type(x.dtype()), root, comm_, stream_),
             "ncclBroadcast");
  return finish(seq);
}

std::shared_ptr<Work> NcclCommunicator::send_recv_async(const std::vector<P2POp>& ops) {
  int64_t count = 0;
  for (const P2POp& op : ops) {
    TESSEL_CHECK(op.peer >= 0 && op.peer < size_) << "send_recv with peer " << op.peer << " in a group of " << size_;
    check_device(op.tensor, "send_recv");
    count += op.tensor.numel();
  }
  const uint64_t seq =
      recorder_.record("send_recv(" + std::to_string(ops.size()) + " ops)", count,
                       ops.empty() ? "-" : dtype_name(ops.front().tensor.dtype()), ops.empty() ? -1 : ops.front().peer);
  after_compute();
  // One group: NCCL matches the sends and receives of every pair together (no deadlock in a
  // ring). Tags have no NCCL counterpart: order within a pair is the order posted.
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (const P2POp& op : ops) {
    if (op.kind == P2POp::kSend) {
      check_nccl(ncclSend(op.tensor.raw(), op.tensor.nbytes(), ncclUint8, op.peer, comm_, stream_), "ncclSend");
    } else {
      check_nccl(ncclRecv(op.tensor.raw(), op.tensor.nbytes(), ncclUint8, op.peer, comm_, stream_), "ncclRecv");
    }
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  return finish(seq);
}

std::shared_ptr<Work> NcclCommunicator::barrier_async() {
  const uint64_t seq = recorder_.record("barrier", 1, "F64");
  after_compute();
  check_nccl(ncclAllReduce(scratch_, scratch_, 1, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce (barrier)");
  std::shared_ptr<Work> work = finish(seq);
  synchronize("barrier #" + std::to_string(seq));  // a barrier holds the host, not only the stream
  return work;
}

void NcclCommunicator::all_reduce_doubles(double* x, int n, ReduceOp op) {
  TESSEL_CHECK(n >= 0 && n <= kScratchDoubles)
      << "all_reduce_doubles of " << n << " values: at most " << kScratchDoubles;
  const uint64_t seq = recorder_.record(std::string("all_reduce_doubles(") + reduce_op_name(op) + ")", n, "F64");
  after_compute();
  TESSEL_CUDA_CHECK(
      cudaMemcpyAsync(scratch_, x, static_cast<size_t>(n) * sizeof(double), cudaMemcpyHostToDevice, stream_));
  check_nccl(ncclAllReduce(scratch_, scratch_, static_cast<size_t>(n), ncclFloat64, nccl_op(op), comm_, stream_),
             "ncclAllReduce");
  TESSEL_CUDA_CHECK(
      cudaMemcpyAsync(x, scratch_, static_cast<size_t>(n) * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  finish(seq);
  synchronize("all_reduce_doubles #" + std::to_string(seq));
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key, const std::string& name) {
  const uint64_t seq = recorder_.record("split", 0, "-", color);
  ncclComm_t sub = nullptr;
  check_nccl(ncclCommSplit(comm_, color, key, &sub, nullptr), "ncclCommSplit");
  recorder_.complete(seq);
  std::unique_ptr<NcclCommunicator> group(new NcclCommunicator(sub, device_, name, timeout_s_));
  group->set_compute_stream(compute_);  // ordered after the same compute work as this one
  return group;
}

}  // namespace tessel
