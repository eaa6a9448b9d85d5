// RAII owners of a CUDA stream and a CUDA event. Non-copyable, movable; destroying one that
// work is still queued on is safe (CUDA releases it when the work completes).
// Compute and communication each get their own Stream; an Event recorded on one and waited on
// by the other orders them without blocking the host or synchronizing the device.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "core/kernels/cuda/cuda_check.h"

namespace tessel {
namespace cuda {

class Stream {
 public:
  // Non-blocking: no implicit ordering with the legacy default stream.
  Stream() { TESSEL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  Stream(Stream&& o) noexcept : stream_(std::exchange(o.stream_, nullptr)) {}
  Stream& operator=(Stream&&) = delete;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  // Blocks the host until the stream's work is done.
  void synchronize() const { TESSEL_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  // Timing events are for benchmarks; the others are cheaper to record and wait on.
  explicit Event(bool timing = false) {
    TESSEL_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(Event&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  Event& operator=(Event&&) = delete;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) const { TESSEL_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // Work queued on `stream` after this call starts after the work before record().
  void block(cudaStream_t stream) const { TESSEL_CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0)); }
  bool done() const {
    const cudaError_t rc = cudaEventQuery(event_);
    if (rc == cudaErrorNotReady) return false;
    TESSEL_CUDA_CHECK(rc);
    return true;
  }
  void synchronize() const { TESSEL_CUDA_CHECK(cudaEventSynchronize(event_)); }
  // Milliseconds between two timing events, both completed.
  float elapsed_ms_since(const Event& start) const {
    float ms = 0.0f;
    TESSEL_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace cuda
}  // namespace tessel
