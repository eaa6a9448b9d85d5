// NcclCommunicator: the Communicator of a group of GPU ranks over NCCL (built when the CUDA
// toolkit and NCCL are found: TESSEL_HAVE_NCCL).
//
// One rank per GPU: the local rank selects the device. Rank 0 of the group creates the NCCL
// unique id and the bootstrap communicator (MPI, or a group of one) carries it to the others;
// sub-groups come from ncclCommSplit. Operations run on the communicator's own stream: each
// first waits for an event recorded on the compute stream (so it reads what compute wrote),
// and its Work records an event when it finishes; Work::wait() makes the compute stream wait
// for that event (stream order, the host does not block), is_completed() queries it. No
// device-wide synchronization. barrier() and all_reduce_doubles() block the host; their waits
// poll NCCL's asynchronous error state and give up after timeout_s (aborting the NCCL
// communicator, so the error reaches the caller instead of a hang). Flight-recorder entries are
// marked complete when their end event is seen. Tensors must be on this communicator's device;
// dtypes F32 and BF16 for reductions (NCCL reduces bf16 natively), any for the rest. Not
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <nccl.h>

#include "core/comm/communicator.h"

namespace tessel {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap`: every rank of it joins, with its own `device`.
  static std::unique_ptr<NcclCommunicator> create(Communicator& bootstrap, int device, const std::string& name,
                                                  double timeout_s);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  // The stream compute kernels run on (default: the legacy default stream).
  void set_compute_stream(cudaStream_t stream) { compute_ = stream; }
  cudaStream_t stream() const { return stream_; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) override;
  std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) override;
  std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) override;
  std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) override;
  std::shared_ptr<Work> barrier_async() override;
  // Blocking: the doubles go through a device buffer.
  void all_reduce_doubles(double* x, int n, ReduceOp op) override;
  // Sub-groups share this communicator's compute stream.
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;
  FlightRecorder& recorder() override { return recorder_; }

 private:
  NcclCommunicator(ncclComm_t comm, int device, std::string name, double timeout_s);
  // Blocks the host until the communication stream is done, or fails (NCCL error, timeout).
  void synchronize(const std::string& what);
  // Marks the operations whose end events have fired as complete in the recorder.
  void sweep_completed();
  // Orders the communication stream after the compute stream.
  void after_compute();
  // Records the operation's end on the communication stream and returns its Work.
  std::shared_ptr<Work> finish(uint64_t seq);
  void check_device(const Tensor& t, const char* what) const;

  ncclComm_t comm_;
  int device_;
  std::string name_;
  double timeout_s_;
  int rank_ = 0;
  int size_ = 1;
  cudaStream_t stream_ = nullptr;
  cudaStream_t compute_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  double* scratch_ = nullptr;  // device buffer for all_reduce_doubles and barriers
  FlightRecorder recorder_;
  std::vector<std::pair<uint64_t, std::shared_ptr<CUevent_st>>> pending_;  // (seq, end event)
};

}  // namespace tessel
