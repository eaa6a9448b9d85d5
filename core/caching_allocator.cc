#include "core/caching_allocator.h"

#include <iomanip>
#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

// The remainder of a large block is split off only when it is worth keeping apart: smaller
// tails stay attached rather than fragmenting the pool into slivers.
constexpr size_t kLargeSplitMin = 1 << 20;

std::string gib(size_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(bytes < (size_t(1) << 30) ? 1 : 2);
  if (bytes < (size_t(1) << 30))
    os << static_cast<double>(bytes) / (1 << 20) << " MiB";
  else
    os << static_cast<double>(bytes) / (size_t(1) << 30) << " GiB";
  return os.str();
}

}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}

CachingAllocator::CachingAllocator(MemoryBackend& backend, std::string device)
    : backend_(backend), device_(std::move(device)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : events_) {
    try {
      backend_.release_event(e.first);
    } catch (const std::exception&) {
    }
  }
  // Every block is reachable from its segment's head; walk each chain once.
  std::set<Block*> heads;
  auto note_head = [&](Block* b) {
    while (b->prev) b = b->prev;
    heads.insert(b);
  };
  for (Block* b : small_pool_) note_head(b);
  for (Block* b : large_pool_) note_head(b);
  for (auto& kv : live_) note_head(kv.second);
  for (auto& e : events_) note_head(e.second);
  for (Block* head : heads) {
    // A destructor must not throw: a failing free at exit (the driver already gone) is ignored.
    try {
      backend_.raw_free(head->segment);
    } catch (const std::exception&) {
    }
    for (Block* b = head; b != nullptr;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
  }
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes == 0) return kRound;
  return (bytes + kRound - 1) / kRound * kRound;
}

void* CachingAllocator::allocate(size_t bytes, StreamId stream) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  process_events();
  const size_t size = round_size(bytes);
  const bool small = size <= kSmallRequest;
  Pool& pool = small ? small_pool_ : large_pool_;
  Block* block = take_from_pool(pool, size, stream);
  if (block == nullptr) block = new_segment(size, stream, small);
  split(block, size, pool);
  block->in_use = true;
  live_[block->ptr] = block;
  stats_.allocated += block->size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return block->ptr;
}

CachingAllocator::Block* CachingAllocator::take_from_pool(Pool& pool, size_t size, StreamId stream) {
  Block key;
  key.stream = stream;
  key.size = size;
  key.ptr = nullptr;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  // The smallest block on this stream that fits; allocate() splits off what it does not need.
  Block* block = *it;
  pool.erase(it);
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t size, StreamId stream, bool small) {
  const size_t segment = small ? kSmallSegment : (size + kLargeRound - 1) / kLargeRound * kLargeRound;
  void* p = backend_.raw_allocate(segment);
  if (p == nullptr) {
    ++stats_.oom_retries;
    wait_events();
    free_cached_segments();
    p = backend_.raw_allocate(segment);
  }
  TESSEL_CHECK(p != nullptr) << "out of memory on " << device_ << " allocating " << gib(size) << " ("
                             << summary_locked()
                             << "); hint: lower batch.micro, enable model.recompute, or spread the "
                                "model over more GPUs (parallel.tp, parallel.pp, parallel.zero)";
  ++stats_.backend_allocations;
  stats_.reserved += segment;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  Block* block = new Block;
  block->ptr = static_cast<char*>(p);
  block->size = segment;
  block->stream = stream;
  block->small = small;
  block->segment = block->ptr;
  return block;
}

void CachingAllocator::split(Block* block, size_t size, Pool& pool) {
  const size_t rest = block->size - size;
  if (rest < (block->small ? kRound : kLargeSplitMin)) return;
  Block* tail = new Block;
  tail->ptr = block->ptr + size;
  tail->size = rest;
  tail->stream = block->stream;
  tail->small = block->small;
  tail->segment = block->segment;
  tail->prev = block;
  tail->next = block->next;
  if (block->next) block->next->prev = tail;
  block->next = tail;
  block->size = size;
  pool.insert(tail);
}

void CachingAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(static_cast<char*>(ptr));
  TESSEL_CHECK(it != live_.end()) << "CachingAllocator::free on " << device_ << ": " << ptr
                                  << " was not allocated here or was freed twice";
  Block* block = it->second;
  live_.erase(it);
  block->in_use = false;
  stats_.allocated -= block->size;
  if (block->used_on.empty()) {
    release_to_pool(block);
    return;
  }
  for (StreamId s : block->used_on) {
    events_.emplace_back(backend_.record_event(s), block);
    ++block->pending_events;
  }
  block->used_on.clear();
}

void CachingAllocator::record_stream(void* ptr, StreamId stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(static_cast<char*>(ptr));
  TESSEL_CHECK(it != live_.end()) << "CachingAllocator::record_stream on " << device_ << ": " << ptr
                                  << " is not an allocated block";
  if (stream != it->second->stream) it->second->used_on.insert(stream);
}

void CachingAllocator::release_to_pool(Block* block) {
  Pool& pool = block->small ? small_pool_ : large_pool_;
  // Merge with free neighbours: the surviving block is the lower one, so a segment's head
  // block object lives as long as the segment.
  auto mergeable = [](const Block* b) { return b && !b->in_use && b->pending_events == 0; };
  auto absorb = [&](Block* lower, Block* upper) {  // upper was free, in the pool
    pool.erase(lower == block ? upper : lower);
    lower->size += upper->size;
    lower->next = upper->next;
    if (lower->next) lower->next->prev = lower;
    delete upper;
  };
  if (mergeable(block->next)) absorb(block, block->next);
  if (mergeable(block->prev)) {
    Block* prev = block->prev;
    absorb(prev, block);
    block = prev;
  }
  pool.insert(block);
}

void CachingAllocator::process_events() {
  size_t kept = 0;
  for (size_t i = 0; i < events_.size(); ++i) {
    auto& e = events_[i];
    if (!backend_.event_done(e.first)) {
      events_[kept++] = e;
      continue;
    }
    backend_.release_event(e.first);
    if (--e.second->pending_events == 0) release_to_pool(e.second);
  }
  events_.resize(kept);
}

void CachingAllocator::wait_events() {
  for (auto& e : events_) backend_.wait_event(e.first);
  process_events();
}

void CachingAllocator::free_cached_segments() {
  process_events();
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev == nullptr && b->next == nullptr) {  // the whole segment is this free block
        backend_.raw_free(b->ptr);
        ++stats_.backend_frees;
        stats_.reserved -= b->size;
        it = pool->erase(it);
        delete b;
      } else {
        ++it;
      }
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  free_cached_segments();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

std::string CachingAllocator::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return summary_locked();
}

std::string CachingAllocator::summary_locked() const {
  return "allocated " + gib(stats_.allocated) + ", reserved " + gib(stats_.reserved) + ", peak allocated " +
         gib(stats_.peak_allocated);
}

}  // namespace tessel
