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
  struct Block {
    size_t size = 0;  // size class
    cudaStream_t stream = nullptr;
    std::vector<cudaStream_t> other_streams;
  };
  struct PendingBlock {
    void* ptr;
    Block block;
    std::vector<cudaEvent_t> events;  // one per other stream, recorded at free time
  };
  using BinKey = std::pair<cudaStream_t, size_t>;

  // Moves pending blocks whose events have completed into the bins (caller holds the mutex).
  void collect_pending();
  void release_cached();

  int device_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  std::map<BinKey, std::vector<void*>> bins_;  // (stream, size class) -> ready blocks
  std::vector<PendingBlock> pending_;
  AllocatorStats stats_;
  uint64_t device_allocations_ = 0;
};

}  // namespace engine::cuda
