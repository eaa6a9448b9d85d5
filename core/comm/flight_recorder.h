// FlightRecorder: the last operations of one communicator, for diagnosing hangs and failures.
//
// Each operation is recorded when issued (sequence number in its group, kind, element count,
// dtype, peer or root) and marked when it completes. When a rank fails, the trainer dumps the
// recorders of its communicators: the first operation still pending is the one the rank was
// stuck in, and comparing sequence numbers across ranks shows which ranks never arrived.
// Keeps the newest `capacity` entries. Thread-safe: the issuing thread records, a progress
// thread marks completion.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace tessel {

struct FlightEntry {
  uint64_t seq = 0;   // 1-based, per communicator
  std::string op;     // "all_reduce(sum)", "send_recv", ...
  int64_t count = 0;  // elements
  std::string dtype;
  int peer = -1;  // root or peer rank where it applies
  std::chrono::steady_clock::time_point issued;
  bool completed = false;
  double seconds = 0;  // issue to completion
};

class FlightRecorder {
 public:
  explicit FlightRecorder(size_t capacity = 256) : capacity_(capacity) {}

  // Returns the entry's sequence number.
  uint64_t record(std::string op, int64_t count, std::string dtype, int peer = -1);
  void complete(uint64_t seq);

  uint64_t last_seq() const;
  // The oldest operation not yet completed, or 0 when none.
  uint64_t first_pending() const;
  // One line per entry, oldest first, each prefixed with `prefix`.
  std::string dump(const std::string& prefix) const;

 private:
  mutable std::mutex mutex_;
  size_t capacity_;
  uint64_t next_seq_ = 1;
  std::deque<FlightEntry> entries_;
};

}  // namespace tessel
