// Communicator: the collectives and point-to-point operations of one group of ranks.
//
// One interface for every backend: MpiCommunicator (CPU tensors, parallel/comm/mpi_communicator.h),
// NcclCommunicator (CUDA tensors), and SingleCommunicator (a group of one, so a lone process runs
// without MPI). Every operation has an async form that returns a Work; the blocking form is
// the async one followed by wait(). Operations of one communicator run in the order they were
// issued, and every member must issue the same collectives in the same order (as in MPI).
//
// Every operation gets a sequence number in its group and is recorded in the flight recorder
// (what was issued, when, and whether it finished), which is dumped when a rank fails, so a
// hang or a mismatch can be traced to the collective and the ranks that did not arrive.
//
// Tensors are contiguous; an async operation reads and writes them until its Work completes,
// so the caller keeps them alive and untouched until then. Dtypes: F32 and BF16 for
// reductions (BF16 is reduced in fp32 and rounded once per step of the reduction), any dtype
// for broadcast, all_gather and send/recv. Not thread-safe: one thread issues operations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/comm/flight_recorder.h"
#include "core/tensor.h"

namespace tessel {

enum class ReduceOp { kSum, kAvg, kMax };
const char* reduce_op_name(ReduceOp op);

// The completion handle of an async operation.
class Work {
 public:
  virtual ~Work() = default;
  // CPU communicators: blocks until the operation has finished; throws if it failed (a peer
  // died, a timeout). CUDA communicators (NCCL): orders the compute stream after the operation
  // without blocking the host, as CUDA work is ordered; the host sees results after it
  // synchronizes that stream.
  virtual void wait() = 0;
  virtual bool is_completed() = 0;
};

// A Work that is complete from the start (operations a group of one does in place).
class CompletedWork final : public Work {
 public:
  void wait() override {}
  bool is_completed() override { return true; }
};

// One side of a point-to-point transfer in a batch.
struct P2POp {
  enum Kind { kSend, kRecv } kind = kSend;
  Tensor tensor;
  int peer = 0;  // rank in this communicator
  int tag = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "world", "dp", "tp 1"...: used in logs and the flight recorder.
  virtual const std::string& name() const = 0;

  // x := op over the group of x (every rank gets the result).
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& x, ReduceOp op) = 0;
  // in: (size · n); out: (n), the reduction of block `rank()` of every rank's `in`.
  virtual std::shared_ptr<Work> reduce_scatter_async(const Tensor& in, const Tensor& out, ReduceOp op) = 0;
  // in: (n); out: (size · n), block r from rank r. `in` may be block rank() of `out` itself.
  virtual std::shared_ptr<Work> all_gather_async(const Tensor& in, const Tensor& out) = 0;
  // x := root's x.
  virtual std::shared_ptr<Work> broadcast_async(const Tensor& x, int root) = 0;
  // Sends and receives posted together (so a ring exchange cannot deadlock).
  virtual std::shared_ptr<Work> send_recv_async(const std::vector<P2POp>& ops) = 0;
  virtual std::shared_ptr<Work> barrier_async() = 0;

  // Reduces a few doubles (losses, squared norms) in double precision; blocking.
  virtual void all_reduce_doubles(double* x, int n, ReduceOp op) = 0;

  // The sub-group of the ranks that pass the same color, ordered by key; every rank of this
  // communicator must call it (collective).
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;

  // Recent operations of this communicator.
  virtual FlightRecorder& recorder() = 0;

  void all_reduce(const Tensor& x, ReduceOp op) { all_reduce_async(x, op)->wait(); }
  void reduce_scatter(const Tensor& in, const Tensor& out, ReduceOp op) { reduce_scatter_async(in, out, op)->wait(); }
  void all_gather(const Tensor& in, const Tensor& out) { all_gather_async(in, out)->wait(); }
  void broadcast(const Tensor& x, int root) { broadcast_async(x, root)->wait(); }
  void send_recv(const std::vector<P2POp>& ops) { send_recv_async(ops)->wait(); }
  void barrier() { barrier_async()->wait(); }

  // All-to-all with a count per pair of ranks (expert parallelism's dispatch and combine), made
  // of one batch of sends and receives, as NCCL makes its own, so every backend has it: this
  // rank sends rows [Σ_{j<i} send_rows[j], + send_rows[i]) of `in` to rank i and receives
  // recv_rows[i] rows from rank i into `out`, in rank order. Rows run along the first dimension;
  // `in` and `out` have the same dtype and row width and hold at least the rows counted. Pairs
  // with no rows exchange nothing. recv_rows must be what the others send (all_to_all_counts).
  std::shared_ptr<Work> all_to_all_async(const Tensor& in, const std::vector<int64_t>& send_rows, const Tensor& out,
                                         const std::vector<int64_t>& recv_rows);
  void all_to_all(const Tensor& in, const std::vector<int64_t>& send_rows, const Tensor& out,
                  const std::vector<int64_t>& recv_rows) {
    all_to_all_async(in, send_rows, out, recv_rows)->wait();
  }
  // The rows this rank receives from each rank, from the rows each sends it (one collective of
  // size² doubles; every rank calls it).
  std::vector<int64_t> all_to_all_counts(const std::vector<int64_t>& send_rows);
};

// Shape and dtype checks shared by the backends; `what` names the operation in messages.
void check_reduce_dtype(const Tensor& x, const char* what);
void check_gather_shapes(const Tensor& in, const Tensor& out, int size, const char* what);

}  // namespace tessel
