// Device memory allocators. Training reuses buffers of the same sizes every step, and on these
// machines the first touch of a fresh page costs 11-16 us per 4 KiB, so freed blocks are kept in
// size-class bins and handed out again instead of going back to the operating system.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace engine {

struct AllocatorStats {
  size_t bytes_in_use = 0;       // handed out and not yet freed
  size_t bytes_cached = 0;       // freed, kept in bins for reuse
  size_t peak_bytes_in_use = 0;
  uint64_t allocations = 0;      // calls to allocate()
  uint64_t cache_hits = 0;       // allocations served from a bin
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns at least `bytes` bytes, 64-byte aligned; never null (throws engine::Error).
  virtual void* allocate(size_t bytes) = 0;
  // `bytes` is the size passed to the matching allocate().
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  // Returns cached blocks to the system.
  virtual void empty_cache() = 0;
  // Restarts peak_bytes_in_use from the bytes in use now, to measure the peak of one phase (an
  // evaluation, a step). Allocators that do not support it throw engine::Error.
  virtual void reset_peak_stats();
};

// Rounds a request up to its size class: multiples of 512 B below 1 MiB (so that small tensors of
// nearby sizes share bins), then four classes per power of two (at most 25% waste).
size_t allocation_size_class(size_t bytes);

// Host allocator with size-class caching. Large blocks are asked to use transparent huge pages,
// which cuts the first-touch cost of a fresh 32 MiB buffer from ~100 ms to a few ms here.
class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  AllocatorStats stats() const override;
  void empty_cache() override;
  void reset_peak_stats() override;

 private:
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_blocks_;  // size class -> cached blocks
  AllocatorStats stats_;
};

// The process-wide host allocator used by CPU tensors.
Allocator& cpu_allocator();

}  // namespace engine
