#include "core/comm/flight_recorder.h"

#include <sstream>

namespace tessel {

uint64_t FlightRecorder::record(std::string op, int64_t count, std::string dtype, int peer) {
  std::lock_guard<std::mutex> lock(mutex_);
  FlightEntry e;
  e.seq = next_seq_++;
  e.op = std::move(op);
  e.count = count;
  e.dtype = std::move(dtype);
  e.peer = peer;
  e.issued = std::chrono::steady_clock::now();
  entries_.push_back(std::move(e));
  while (entries_.size() > capacity_) entries_.pop_front();
  return entries_.back().seq;
}

void FlightRecorder::complete(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->seq != seq) continue;
    it->completed = true;
    it->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->issued).count();
    return;
  }
}

uint64_t FlightRecorder::last_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_seq_ - 1;
}

uint64_t FlightRecorder::first_pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const FlightEntry& e : entries_) {
    if (!e.completed) return e.seq;
  }
  return 0;
}

std::string FlightRecorder::dump(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  const auto now = std::chrono::steady_clock::now();
  for (const FlightEntry& e : entries_) {
    out << prefix << "#" << e.seq << " " << e.op << " " << e.count << " x " << e.dtype;
    if (e.peer >= 0) out << " peer/root " << e.peer;
    if (e.completed) {
      out << " done in " << e.seconds * 1e3 << " ms";
    } else {
      out << " PENDING for " << std::chrono::duration<double>(now - e.issued).count() << " s";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace tessel
