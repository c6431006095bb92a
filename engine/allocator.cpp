// The CPU caching allocator and allocation size classes (engine/allocator.h).
#include "engine/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "engine/checked_size.h"
#include "engine/error.h"

namespace engine {

namespace {
constexpr size_t kAlignment = 64;
constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kHugePageThreshold = size_t(2) << 20;
}  // namespace

size_t allocation_size_class(size_t bytes) {
  // Above 2^63 - 1 the rounding below would wrap (and no such block exists).
  ENGINE_CHECK(bytes <= kMaxSize, "allocation of ", bytes, " bytes: more than 2^63 - 1, the size is corrupt");
  if (bytes == 0) bytes = 1;
  if (bytes < kSmallLimit) return (bytes + 511) / 512 * 512;
  size_t power = size_t(1) << (63 - __builtin_clzll(bytes));  // largest power of two <= bytes
  size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

CpuCachingAllocator::~CpuCachingAllocator() { empty_cache(); }

void* CpuCachingAllocator::allocate(size_t bytes) {
  const size_t size = allocation_size_class(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocations++;
    auto bin = free_blocks_.find(size);
    if (bin != free_blocks_.end() && !bin->second.empty()) {
      void* ptr = bin->second.back();
      bin->second.pop_back();
      stats_.cache_hits++;
      stats_.bytes_cached -= size;
      stats_.bytes_in_use += size;
      stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(kAlignment, size);
  if (ptr == nullptr) {
    empty_cache();  // cached blocks may be what stands between us and success
    ptr = std::aligned_alloc(kAlignment, size);
  }
  ENGINE_CHECK(ptr != nullptr, "out of host memory: could not allocate ", size, " bytes");
  if (size >= kHugePageThreshold) madvise(ptr, size, MADV_HUGEPAGE);  // a hint; failure is harmless
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.bytes_in_use += size;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CpuCachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t size = allocation_size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.bytes_in_use -= size;
  // This runs in destructors (Storage's), where an exception terminates the program: when the bin
  // cannot grow for lack of memory, the block goes back to the system instead of into the cache.
  try {
    free_blocks_[size].push_back(ptr);
  } catch (const std::bad_alloc&) {
    std::free(ptr);
    return;
  }
  stats_.bytes_cached += size;
}

AllocatorStats CpuCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CpuCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_blocks_)
    for (void* ptr : blocks) std::free(ptr);
  free_blocks_.clear();
  stats_.bytes_cached = 0;
}

void Allocator::reset_peak_stats() {
  throw Error("this allocator cannot reset its peak statistics");
}

void CpuCachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

Allocator& cpu_allocator() {
  // Never destroyed: tensors with static lifetime may free into it during program exit.
  static auto* allocator = new CpuCachingAllocator();
  return *allocator;
}

}  // namespace engine
