// MpiRuntime: MPI's lifetime in a process, and the one thread that talks to MPI.
//
// Every MPI call of the process runs on the runtime's progress thread, from MPI_Init to
// MPI_Finalize, so MPI only needs MPI_THREAD_FUNNELED and compute threads never block in MPI.
// Callers submit tasks: a task starts non-blocking MPI operations and returns their requests;
// the thread polls all started requests (MPI makes progress only inside MPI calls) and runs
// the task's finish step when they complete. Tasks start in submission order, which keeps
// every communicator's collectives in program order. Polling spins briefly, then backs off to
// short sleeps, so an idle wait costs little CPU beside the compute threads.
//
// Owned by main(); communicators hold a pointer and must be destroyed before it. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <mpi.h>

namespace tessel {

// The shared state of one submitted task: done, or failed with a message.
struct MpiTaskState {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::string error;
};

struct MpiTask {
  // Runs on the progress thread; starts MPI operations and appends their requests.
  std::function<void(std::vector<MPI_Request>* requests)> start;
  // Runs on the progress thread once every request has completed. May be empty.
  std::function<void()> finish;
  std::shared_ptr<MpiTaskState> state = std::make_shared<MpiTaskState>();
};

class MpiRuntime {
 public:
  // Initializes MPI on the progress thread; throws when MPI cannot start.
  MpiRuntime();
  // Finalizes MPI after every submitted task has finished; if some are still pending 10 s
  // later (a peer is gone), aborts the job instead of waiting forever.
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }

  // bf16 as an MPI datatype (two bytes) and its reductions, computed in fp32; created with MPI.
  MPI_Datatype bf16_type() const { return bf16_type_; }
  MPI_Op bf16_sum() const { return bf16_sum_; }
  MPI_Op bf16_max() const { return bf16_max_; }

  // Queues `task`; returns its state, to wait on.
  std::shared_ptr<MpiTaskState> submit(MpiTask task);
  // Submits `fn` as a task with no requests and waits for it (blocking MPI calls: splits, frees).
  void run(std::function<void()> fn);

  // Ends the whole job with `code` (MPI_Abort), so no rank is left waiting on this one.
  [[noreturn]] void abort(int code);

 private:
  struct Active {
    MpiTask task;
    std::vector<MPI_Request> requests;
  };
  void loop();

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<MpiTask> queue_;
  bool stopping_ = false;
  std::atomic<int> abort_code_{-1};
  int world_rank_ = 0;
  int world_size_ = 1;
  MPI_Datatype bf16_type_ = MPI_DATATYPE_NULL;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
  MPI_Op bf16_max_ = MPI_OP_NULL;
  std::string init_error_;
};

// Blocks until `state` is done; throws tessel::Error with its failure. timeout_s > 0 turns a
// wait longer than that into an error naming `what` (the hang watchdog).
void wait_task(MpiTaskState& state, double timeout_s, const std::string& what);

}  // namespace tessel
