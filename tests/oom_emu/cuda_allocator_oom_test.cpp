// The CUDA caching allocator's deallocate() under the emulator with operator new failing: it runs in
// Storage's destructor, so it must neither allocate host memory nor throw. The whole executable's
// operator new is replaced by one that fails (and counts) on demand, hence this test's own executable.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "engine/allocator.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/init.h"
#include "engine/cuda/stream.h"

namespace {

thread_local bool fail_operator_new = false;
thread_local size_t refused_allocations = 0;

// Makes operator new throw std::bad_alloc on this thread while alive, counting the attempts.
struct FailingOperatorNew {
  FailingOperatorNew() { fail_operator_new = true; }
  ~FailingOperatorNew() { fail_operator_new = false; }
};

}  // namespace

void* operator new(std::size_t bytes) {
  if (fail_operator_new) {
    ++refused_allocations;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

TEST_CASE("CUDA caching allocator: freeing many blocks allocates nothing, and every block is reused") {
  engine::cuda::init();
  engine::cuda::CudaCachingAllocator allocator(0);
  engine::cuda::Stream first, second, third;
  struct Live {
    void* ptr;
    size_t bytes;
    cudaStream_t stream;
  };
  std::vector<Live> blocks;
  size_t cached_bytes = 0;
  // 300 blocks of 37 size classes on two streams (each bin new, and growing past any first
  // capacity), every third one also used on a third stream (freed through a pending event).
  for (size_t i = 0; i < 300; ++i) {
    const cudaStream_t stream = i % 2 == 0 ? first.get() : second.get();
    const engine::cuda::StreamGuard on(stream);
    const size_t bytes = 512 * (1 + i % 37) + i % 5;
    void* ptr = allocator.allocate(bytes);
    if (i % 3 == 0) allocator.record_stream(ptr, third.get());
    blocks.push_back({ptr, bytes, stream});
    cached_bytes += engine::allocation_size_class(bytes);
  }
  size_t escaped = 0;
  {
    const FailingOperatorNew no_memory;
    for (const Live& block : blocks) {
      try {
        allocator.deallocate(block.ptr, block.bytes);
      } catch (...) {
        ++escaped;
      }
    }
  }
  CHECK(escaped == 0);
  CHECK(refused_allocations == 0);
  CHECK(allocator.stats().bytes_in_use == 0);
  CHECK(allocator.stats().bytes_cached == cached_bytes);

  // Every freed block is handed out again: no new device allocation.
  const uint64_t device_allocations = allocator.device_allocations();
  const uint64_t hits = allocator.stats().cache_hits;
  for (Live& block : blocks) {
    const engine::cuda::StreamGuard on(block.stream);
    block.ptr = allocator.allocate(block.bytes);
  }
  CHECK(allocator.stats().cache_hits == hits + blocks.size());
  CHECK(allocator.device_allocations() == device_allocations);
  CHECK(allocator.stats().bytes_cached == 0);
  for (const Live& block : blocks) allocator.deallocate(block.ptr, block.bytes);
}
