// CachingAllocator: device memory for tensors without a cudaMalloc or cudaFree in the step.
//
// The allocator takes memory from its backend in segments and hands out blocks carved from
// them; a freed block returns to a pool and serves the next request of a fitting size, so a
// training step that repeats the same allocations reaches a steady state where the backend is
// never called. The policy is PyTorch's CUDACachingAllocator's, reduced to what Tessel needs:
//  - Sizes round up to 512 bytes. Requests up to 1 MiB are small and share 2 MiB segments;
//    larger ones get segments of their own size rounded up to 2 MiB, split when a cached one is
//    larger than needed by more than 1 MiB.
//  - Pools are per stream: a block freed on stream S is reused only by allocations on S, so
//    work queued on S keeps its memory order without any synchronization. A block also used on
//    another stream (a gradient bucket the communication stream reads, say) is declared with
//    record_stream; when freed it waits for an event on each such stream before its reuse.
//  - Adjacent free blocks of a segment merge back together.
//  - When the backend runs out, the allocator waits for the events of blocks freed on other
//    streams, returns every cached segment no block is using, and retries; if it still fails
//    the error names the device and the statistics. Returning a segment (cudaFree) waits for
//    the device to finish what is queued, which is what makes freeing a cached block that
//    queued work may still read safe; it happens only here and in empty_cache().
// The backend (MemoryBackend) is a seam: the CUDA backend in production, a host fake in tests.
// Thread-safe: one mutex guards all state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace tessel {

// A stream as the backend knows it (a cudaStream_t's bits on CUDA).
using StreamId = uintptr_t;

class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  // nullptr when the device is out of memory; any other failure throws.
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_free(void* ptr) = 0;
  // An event recorded now on `stream`, and whether the work before it has finished.
  virtual uint64_t record_event(StreamId stream) = 0;
  virtual bool event_done(uint64_t event) = 0;
  // Blocks the host until the work before the event has finished.
  virtual void wait_event(uint64_t event) = 0;
  virtual void release_event(uint64_t event) = 0;
};

struct AllocatorStats {
  size_t allocated = 0;  // bytes in blocks handed out now
  size_t reserved = 0;   // bytes in segments taken from the backend
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  int64_t allocations = 0;          // allocate() calls
  int64_t backend_allocations = 0;  // segments taken from the backend, ever
  int64_t backend_frees = 0;
  int64_t oom_retries = 0;  // backend failures answered by returning the cache and retrying
};

class CachingAllocator {
 public:
  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallRequest = 1 << 20;
  static constexpr size_t kSmallSegment = 2 << 20;
  static constexpr size_t kLargeRound = 2 << 20;

  // `device` names the device in errors ("cuda:0").
  CachingAllocator(MemoryBackend& backend, std::string device);
  ~CachingAllocator();  // returns every segment to the backend
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // At least `bytes` (a zero-byte request gets a 512-byte block), aligned to 512 bytes, for use
  // on `stream`. Throws tessel::Error when the device has no room even with the cache emptied.
  void* allocate(size_t bytes, StreamId stream);
  // `ptr` came from allocate() and is not in use by any work queued after this point on its
  // streams, except what record_stream declared.
  void free(void* ptr);
  // Work on `stream` uses `ptr` too: on free, its reuse waits until that work has finished.
  void record_stream(void* ptr, StreamId stream);
  // Returns to the backend every segment with no block in use (and none waiting on events).
  void empty_cache();

  AllocatorStats stats() const;
  // Zeroes the peaks (to their current values) so that a phase can be measured on its own.
  void reset_peaks();
  // "allocated 1.2 GiB, reserved 1.5 GiB, peak 1.3 GiB" for logs and errors.
  std::string summary() const;

 private:
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    StreamId stream = 0;
    bool small = false;
    bool in_use = false;
    char* segment = nullptr;  // start of the segment this block was carved from
    Block* prev = nullptr;    // neighbours within the segment
    Block* next = nullptr;
    std::set<StreamId> used_on;  // other streams named by record_stream
    int pending_events = 0;
  };
  struct BlockOrder {  // (stream, size, address): lower_bound finds the best fit on a stream
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockOrder>;

  static size_t round_size(size_t bytes);
  Block* take_from_pool(Pool& pool, size_t size, StreamId stream);
  Block* new_segment(size_t size, StreamId stream, bool small);
  void split(Block* block, size_t size, Pool& pool);
  void release_to_pool(Block* block);
  void process_events();
  void wait_events();
  void free_cached_segments();
  std::string summary_locked() const;

  MemoryBackend& backend_;
  std::string device_;
  mutable std::mutex mu_;
  Pool small_pool_;
  Pool large_pool_;
  std::map<char*, Block*> live_;                     // blocks handed out, by address
  std::vector<std::pair<uint64_t, Block*>> events_;  // blocks freed but used on other streams
  AllocatorStats stats_;
};

}  // namespace tessel
