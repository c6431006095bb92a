// The CUDA device allocator. cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds, and a training step asks for the same sizes every step, so freed blocks are kept in
// size-class bins (engine::allocation_size_class) and handed out again.
//
// Reuse is stream-ordered: a block belongs to the stream that was current when it was allocated.
// Freed, it goes back to that stream's bins at once, because any later kernel on the same stream
// runs after every kernel that used it. A block that was also used on other streams (declared
// with record_stream) is reused only after events recorded on those streams at free time complete.
//
// One allocator per device: it allocates on its own device (whatever device is current) and orders
// its blocks on that device's current stream. Under the emulator a reused block is poisoned again.
//
// deallocate() runs in destructors (Storage's), so it neither allocates host memory nor throws:
// every block's record, its bin's entry and the events of its other streams are made when it is
// allocated or declared (record_stream), where running out of memory is an ordinary error, and
// freeing only links the block into its bin's list (or the pending list).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/allocator.h"
#include "engine/cuda/cuda_api.h"

namespace engine::cuda {

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device);
  ~CudaCachingAllocator() override;

  // Allocates on the current stream (engine::cuda::current_stream()).
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  AllocatorStats stats() const override;
  // Waits for pending blocks and returns every cached block to the driver.
  void empty_cache() override;

  // Declares that the live block at `ptr` is also used by work queued on `stream`.
  void record_stream(void* ptr, cudaStream_t stream);
  // cudaMalloc calls so far (a cache miss each).
  uint64_t device_allocations() const;

 private:
  // Every block the allocator holds, live or free. `next` links it into its bin's free list or the
  // pending list, so that freeing it allocates nothing.
  struct Block {
    void* ptr = nullptr;
    size_t size = 0;  // size class
    cudaStream_t stream = nullptr;  // the stream it is ordered on (current when first allocated)
    bool live = false;
    std::vector<cudaStream_t> other_streams;  // declared with record_stream while live
    std::vector<cudaEvent_t> events;  // one per other stream, made by record_stream, recorded at free time
    Block* next = nullptr;
  };
  using BinKey = std::pair<cudaStream_t, size_t>;

  // Moves pending blocks whose events have completed into the bins (caller holds the mutex).
  void collect_pending();
  // Puts a free block at the head of its bin's list; never allocates (allocate made the entry).
  void push_free(Block& block);
  // Destroys the block's events and forgets its other streams; never throws.
  static void forget_other_streams(Block& block);
  void release_cached();

  int device_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> blocks_;  // by address; a node's address is stable until erased
  std::map<BinKey, Block*> bins_;  // (stream, size class) -> its free list, made by the first allocate
  Block* pending_ = nullptr;       // freed blocks waiting for events on other streams
  AllocatorStats stats_;
  uint64_t device_allocations_ = 0;
};

}  // namespace engine::cuda
