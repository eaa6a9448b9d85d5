// MpiCommunicator: the Communicator of a group of CPU ranks over MPI.
//
// Operations are non-blocking MPI calls issued and progressed by the MpiRuntime's thread, so
// a gradient bucket's all-reduce proceeds while the compute threads run the rest of backward.
// F32 reduces with MPI's own operators; BF16 with user-defined ones that add (or compare) in
// fp32. kAvg is a sum scaled by 1/size once it completes. Counts above 2^31 - 1 elements are
// rejected (buckets are far smaller). Owns a duplicate of its MPI communicator, freed on
// destruction; must not outlive its runtime.
#pragma once

#include <memory>
#include <string>

#include "core/comm/communicator.h"
#include "parallel/comm/mpi_runtime.h"

namespace tessel {

class MpiCommunicator final : public Communicator {
 public:
  // The world: a duplicate of MPI_COMM_WORLD. timeout_s > 0: waits longer than that fail
  // (parallel.timeout_s).
  static std::unique_ptr<MpiCommunicator> world(MpiRuntime& runtime, double timeout_s);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) override;
  std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) override;
  std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) override;
  std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) override;
  std::shared_ptr<Work> barrier_async() override;
  void all_reduce_doubles(double* x, int n, ReduceOp op) override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;
  FlightRecorder& recorder() override { return *recorder_; }

 private:
  MpiCommunicator(MpiRuntime& runtime, MPI_Comm comm, std::string name, double timeout_s);
  // Records the operation, submits start/finish to the runtime, returns its Work.
  std::shared_ptr<Work> submit(const std::string& op, int64_t count, DType dtype, int peer,
                               std::function<void(std::vector<MPI_Request>*)> start, std::function<void()> finish = {});
  // MPI here moves host memory: a device tensor is an error that names the op.
  void check_host(const Tensor& t, const char* op) const;

  MpiRuntime& runtime_;
  MPI_Comm comm_;
  std::string name_;
  double timeout_s_;
  int rank_ = 0;
  int size_ = 1;
  // Shared with in-flight operations, which mark completion even if this communicator is gone.
  std::shared_ptr<FlightRecorder> recorder_ = std::make_shared<FlightRecorder>();
};

}  // namespace tessel
