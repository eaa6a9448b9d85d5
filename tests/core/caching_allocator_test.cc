// The caching allocator's policy, on a host fake of the device: which requests reach the
// backend, which blocks are reused on which stream, when a block used on another stream comes
// back, and what running out of memory does.
#include <cstdlib>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "core/caching_allocator.h"
#include "core/error.h"

using namespace tessel;

namespace {

// Host memory with a capacity, and events that complete when the test says so.
class FakeBackend : public MemoryBackend {
 public:
  explicit FakeBackend(size_t capacity) : capacity_(capacity) {}
  ~FakeBackend() override { CHECK(live_.empty()); }

  void* raw_allocate(size_t bytes) override {
    if (used_ + bytes > capacity_) return nullptr;
    void* p = std::aligned_alloc(512, bytes);
    live_[p] = bytes;
    used_ += bytes;
    ++allocations;
    return p;
  }
  void raw_free(void* p) override {
    REQUIRE(live_.count(p) == 1);
    used_ -= live_[p];
    live_.erase(p);
    std::free(p);
    ++frees;
  }
  uint64_t record_event(StreamId stream) override {
    events_[++next_event_] = stream;
    return next_event_;
  }
  bool event_done(uint64_t event) override { return finished_.count(events_.at(event)) > 0; }
  void wait_event(uint64_t event) override {
    ++waits;
    finish(events_.at(event));
  }
  void release_event(uint64_t event) override { events_.erase(event); }
  // All work queued on `stream` so far has finished.
  void finish(StreamId stream) { finished_.insert(stream); }

  size_t used() const { return used_; }
  int allocations = 0;
  int frees = 0;
  int waits = 0;

 private:
  size_t capacity_;
  size_t used_ = 0;
  std::map<void*, size_t> live_;
  std::map<uint64_t, StreamId> events_;
  std::set<StreamId> finished_;
  uint64_t next_event_ = 0;
};

constexpr StreamId kCompute = 1;
constexpr StreamId kComm = 2;
constexpr size_t kMiB = 1 << 20;

}  // namespace

TEST_CASE("a repeated step reaches a steady state with no backend calls", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  auto step = [&] {
    std::vector<void*> blocks;
    for (size_t bytes : {size_t(100), size_t(4096), 3 * kMiB, size_t(700 * 1024), 40 * kMiB})
      blocks.push_back(alloc.allocate(bytes, kCompute));
    for (void* p : blocks) alloc.free(p);
  };
  step();
  const int after_first = backend.allocations;
  for (int i = 0; i < 5; ++i) step();
  CHECK(backend.allocations == after_first);
  CHECK(backend.frees == 0);
  AllocatorStats s = alloc.stats();
  CHECK(s.allocated == 0);
  CHECK(s.allocations == 30);
  // Peak: everything of one step alive at once, each rounded to 512 bytes or a split block.
  CHECK(s.peak_allocated >= 100 + 4096 + 3 * kMiB + 700 * 1024 + 40 * kMiB);
  CHECK(s.reserved == backend.used());
}

TEST_CASE("sizes round to 512 bytes and small requests share a 2 MiB segment", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* a = alloc.allocate(1, kCompute);
  void* b = alloc.allocate(513, kCompute);
  void* c = alloc.allocate(0, kCompute);
  CHECK(backend.allocations == 1);
  CHECK(alloc.stats().reserved == CachingAllocator::kSmallSegment);
  CHECK(alloc.stats().allocated == 512 + 1024 + 512);
  // Carved one after the other from the same segment.
  CHECK(static_cast<char*>(b) - static_cast<char*>(a) == 512);
  CHECK(static_cast<char*>(c) - static_cast<char*>(b) == 1024);
  alloc.free(a);
  alloc.free(b);
  alloc.free(c);
  // Merged back into one free block, which empty_cache returns.
  alloc.empty_cache();
  CHECK(backend.frees == 1);
  CHECK(alloc.stats().reserved == 0);
}

TEST_CASE("a freed block is reused for a fitting request on the same stream only", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* a = alloc.allocate(8 * kMiB, kCompute);
  alloc.free(a);
  void* other_stream = alloc.allocate(8 * kMiB, kComm);
  CHECK(other_stream != a);
  void* same_stream = alloc.allocate(8 * kMiB, kCompute);
  CHECK(same_stream == a);
  CHECK(backend.allocations == 2);
  alloc.free(other_stream);
  alloc.free(same_stream);
}

TEST_CASE("a large cached block is split and its tail serves the next request", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* big = alloc.allocate(64 * kMiB, kCompute);
  alloc.free(big);
  void* first = alloc.allocate(16 * kMiB, kCompute);
  void* second = alloc.allocate(16 * kMiB, kCompute);
  CHECK(first == big);
  CHECK(static_cast<char*>(second) == static_cast<char*>(big) + 16 * kMiB);
  CHECK(backend.allocations == 1);
  alloc.free(first);
  alloc.free(second);
  // Both halves merge with the free tail: one 64 MiB block fits a 64 MiB request again.
  void* again = alloc.allocate(64 * kMiB, kCompute);
  CHECK(again == big);
  CHECK(backend.allocations == 1);
  alloc.free(again);
}

TEST_CASE("a block used on another stream is reused only after that stream's work", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* bucket = alloc.allocate(4 * kMiB, kCompute);
  alloc.record_stream(bucket, kComm);  // an all-reduce reads it on the communication stream
  alloc.free(bucket);
  void* next = alloc.allocate(4 * kMiB, kCompute);
  CHECK(next != bucket);  // the all-reduce may still be reading it
  backend.finish(kComm);
  void* after = alloc.allocate(4 * kMiB, kCompute);
  CHECK(after == bucket);
  alloc.free(next);
  alloc.free(after);
}

TEST_CASE("running out returns the cache and retries, then fails naming the device", "[cpu][allocator][errors]") {
  FakeBackend backend(40 * kMiB);
  CachingAllocator alloc(backend, "fake:3");
  void* a = alloc.allocate(30 * kMiB, kCompute);
  alloc.free(a);                               // cached: 30 MiB reserved, none allocated
  void* b = alloc.allocate(20 * kMiB, kComm);  // does not fit beside the cache; fits without it
  CHECK(alloc.stats().oom_retries == 1);
  CHECK(backend.frees == 1);
  CHECK(alloc.stats().reserved == 20 * kMiB);
  CHECK_THROWS_WITH(alloc.allocate(30 * kMiB, kComm), Catch::Contains("out of memory on fake:3 allocating 30.0 MiB") &&
                                                          Catch::Contains("allocated 20.0 MiB") &&
                                                          Catch::Contains("hint: lower batch.micro"));
  alloc.free(b);
}

TEST_CASE("running out waits for blocks freed on other streams before giving up", "[cpu][allocator]") {
  FakeBackend backend(40 * kMiB);
  CachingAllocator alloc(backend, "fake:0");
  void* bucket = alloc.allocate(30 * kMiB, kCompute);
  alloc.record_stream(bucket, kComm);
  alloc.free(bucket);                                // waits on the communication stream's event
  void* next = alloc.allocate(30 * kMiB, kCompute);  // room only once that segment is returned
  CHECK(backend.waits == 1);
  CHECK(alloc.stats().oom_retries == 1);
  CHECK(alloc.stats().reserved == 30 * kMiB);
  alloc.free(next);
}

TEST_CASE("freeing an unknown pointer or twice is an error", "[cpu][allocator][errors]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* a = alloc.allocate(1000, kCompute);
  alloc.free(a);
  CHECK_THROWS_WITH(alloc.free(a), Catch::Contains("was not allocated here or was freed twice"));
  int local = 0;
  CHECK_THROWS_WITH(alloc.record_stream(&local, kComm), Catch::Contains("is not an allocated block"));
}

TEST_CASE("peaks can be reset to measure one phase", "[cpu][allocator]") {
  FakeBackend backend(1 << 30);
  CachingAllocator alloc(backend, "fake:0");
  void* a = alloc.allocate(10 * kMiB, kCompute);
  alloc.free(a);
  CHECK(alloc.stats().peak_allocated == 10 * kMiB);
  alloc.reset_peaks();
  void* b = alloc.allocate(2 * kMiB, kCompute);
  CHECK(alloc.stats().peak_allocated == 2 * kMiB);
  alloc.free(b);
}
