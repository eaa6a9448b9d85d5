#include "parallel/comm/mpi_runtime.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/dtype.h"
#include "core/error.h"

namespace tessel {
namespace {

// inout[i] := in[i] + inout[i] (or max), both bf16, computed in fp32 and rounded once.
void bf16_sum_fn(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

void bf16_max_fn(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = bf16_to_float(a[i]), y = bf16_to_float(b[i]);
    if (x > y || x != x) b[i] = a[i];  // NaN wins, as in fp32 max reductions that propagate it
  }
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

}  // namespace

MpiRuntime::MpiRuntime() {
  std::mutex ready_mutex;
  std::condition_variable ready_cv;
  bool ready = false;
  thread_ = std::thread([&] {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    {
      // Notified under the lock: once `ready` is seen, the constructor may return and destroy
      // ready_cv.
      std::lock_guard<std::mutex> lock(ready_mutex);
      if (rc != MPI_SUCCESS) {
        init_error_ = "MPI_Init_thread failed: " + mpi_error_string(rc);
      } else if (provided < MPI_THREAD_FUNNELED) {
        init_error_ = "this MPI library does not support a thread other than main() calling it (MPI_THREAD_FUNNELED)";
        MPI_Finalize();
      } else {
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
        MPI_Type_contiguous(2, MPI_BYTE, &bf16_type_);
        MPI_Type_commit(&bf16_type_);
        MPI_Op_create(&bf16_sum_fn, 1, &bf16_sum_);
        MPI_Op_create(&bf16_max_fn, 1, &bf16_max_);
      }
      ready = true;
      ready_cv.notify_one();
    }
    if (rc == MPI_SUCCESS && provided >= MPI_THREAD_FUNNELED) loop();
  });
  std::unique_lock<std::mutex> lock(ready_mutex);
  ready_cv.wait(lock, [&] { return ready; });
  if (!init_error_.empty()) {
    lock.unlock();
    thread_.join();
    TESSEL_FAIL() << init_error_ << "; hint: run under mpirun or tessel launch, and check the OpenMPI installation";
  }
}

MpiRuntime::~MpiRuntime() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<MpiTaskState> MpiRuntime::submit(MpiTask task) {
  std::shared_ptr<MpiTaskState> state = task.state;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    TESSEL_CHECK(!stopping_) << "MPI task submitted after the runtime began shutting down";
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return state;
}

void MpiRuntime::run(std::function<void()> fn) {
  MpiTask task;
  task.start = [fn = std::move(fn)](std::vector<MPI_Request>*) { fn(); };
  std::shared_ptr<MpiTaskState> state = submit(std::move(task));
  wait_task(*state, 0, "MPI call");
}

void MpiRuntime::abort(int code) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    abort_code_ = code;
  }
  cv_.notify_one();
  // The progress thread calls MPI_Abort at its next poll; if it is stuck inside a blocking
  // call, this thread does (OpenMPI accepts it from any thread), and failing that, exits.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

void MpiRuntime::loop() {
  std::vector<Active> active;
  int idle_polls = 0;
  std::chrono::steady_clock::time_point stop_requested{};
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Shutting down with operations a peer never joined (after an error): finalizing would
      // wait for them forever, so the job ends instead.
      if (stopping_ && !active.empty()) {
        const auto now = std::chrono::steady_clock::now();
        if (stop_requested == std::chrono::steady_clock::time_point{}) stop_requested = now;
        if (now - stop_requested > std::chrono::seconds(10)) {
          std::fprintf(stderr, "MPI shutdown: %zu operations still pending after 10 s; aborting the job\n",
                       active.size());
          MPI_Abort(MPI_COMM_WORLD, 1);
        }
      }
      if (active.empty() && queue_.empty()) {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || abort_code_ >= 0; });
      }
      if (abort_code_ >= 0) {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, abort_code_);
      }
      if (stopping_ && queue_.empty() && active.empty()) break;
      while (!queue_.empty()) {
        active.push_back({std::move(queue_.front()), {}});
        queue_.pop_front();
        Active& a = active.back();
        lock.unlock();
        try {
          a.task.start(&a.requests);
        } catch (const std::exception& e) {
          // The task fails at once; a request whose call failed may hold garbage.
          a.requests.clear();
          std::lock_guard<std::mutex> done_lock(a.task.state->mutex);
          a.task.state->error = e.what();
        }
        lock.lock();
      }
    }
    bool progressed = false;
    for (size_t i = 0; i < active.size();) {
      Active& a = active[i];
      int flag = 1;
      if (!a.requests.empty()) {
        const int rc = MPI_Testall(static_cast<int>(a.requests.size()), a.requests.data(), &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
          std::lock_guard<std::mutex> lock(a.task.state->mutex);
          a.task.state->error = "MPI operation failed: " + mpi_error_string(rc);
          flag = 1;
        }
      }
      if (!flag) {
        ++i;
        continue;
      }
      progressed = true;
      {
        std::lock_guard<std::mutex> lock(a.task.state->mutex);
        if (a.task.state->error.empty() && a.task.finish) {
          try {
            a.task.finish();
          } catch (const std::exception& e) {
            a.task.state->error = e.what();
          }
        }
        a.task.state->done = true;
      }
      a.task.state->cv.notify_all();
      active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
    }
    // Spin while operations complete; back off to short sleeps while they are in flight, so
    // the thread leaves the cores to compute (shared-memory transfers progress only inside MPI
    // calls, so the sleeps stay short).
    if (progressed) {
      idle_polls = 0;
    } else if (!active.empty()) {
      ++idle_polls;
      if (idle_polls < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
  }
  MPI_Op_free(&bf16_sum_);
  MPI_Op_free(&bf16_max_);
  MPI_Type_free(&bf16_type_);
  MPI_Finalize();
}

void wait_task(MpiTaskState& state, double timeout_s, const std::string& what) {
  std::unique_lock<std::mutex> lock(state.mutex);
  if (timeout_s > 0) {
    const bool done = state.cv.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return state.done; });
    TESSEL_CHECK(done) << what << " did not complete within " << timeout_s
                       << " s (parallel.timeout_s): a peer rank is stuck or gone; see the flight recorder dump "
                       << "of each rank for the last operation it reached";
  } else {
    state.cv.wait(lock, [&] { return state.done; });
  }
  TESSEL_CHECK(state.error.empty()) << what << ": " << state.error;
}

}  // namespace tessel
