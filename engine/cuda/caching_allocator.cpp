// The CUDA caching allocator (engine/cuda/caching_allocator.h): size-class bins, blocks freed on
// other streams held until their events complete.
#include "engine/cuda/caching_allocator.h"

#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/cuda/device_guard.h"
#include "engine/cuda/stream.h"

namespace engine::cuda {

CudaCachingAllocator::CudaCachingAllocator(int device) : device_(device) {}

// At exit the driver may already be gone: release what can be released, never throw.
CudaCachingAllocator::~CudaCachingAllocator() {
  for (auto& [ptr, block] : blocks_) {
    if (block.live) continue;
    forget_other_streams(block);
    (void)cudaFree(ptr);
  }
}

void* CudaCachingAllocator::allocate(size_t bytes) {
  const size_t size = allocation_size_class(bytes);
  const DeviceGuard guard(Device::cuda(device_));  // the block, and the stream it is ordered on, are this device's
  const cudaStream_t stream = current_stream();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocations++;
    collect_pending();
    // Made here, where allocating may fail, so that deallocate only links blocks into it.
    Block*& bin = bins_[{stream, size}];
    if (bin != nullptr) {
      Block& block = *bin;
      bin = block.next;
      block.next = nullptr;
      block.live = true;
      stats_.cache_hits++;
      stats_.bytes_cached -= size;
      stats_.bytes_in_use += size;
      stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
      // The emulator poisons a reused block as cudaMalloc's fresh memory: a read before a write
      // gives NaN, not the previous tensor's values.
      if constexpr (kEmulated) CUDA_CHECK(cudaMemsetAsync(block.ptr, 0xff, size, stream));
      return block.ptr;
    }
  }
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, size);
  if (status == cudaErrorMemoryAllocation) {  // cached blocks may be what stands between us and success
    (void)cudaGetLastError();
    empty_cache();
    status = cudaMalloc(&ptr, size);
  }
  if (status != cudaSuccess) {
    const AllocatorStats now = stats();
    throw Error(engine::detail::concat("CUDA out of memory on device ", device_, ": could not allocate ", size,
                                       " bytes (", now.bytes_in_use, " bytes in use by tensors, peak ",
                                       now.peak_bytes_in_use, "): ", cudaGetErrorString(status),
                                       ". Reduce the batch size or the model width."));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    bins_.try_emplace({stream, size}, nullptr);  // again: empty_cache may have run since
    Block& block = blocks_[ptr];
    block.ptr = ptr;
    block.size = size;
    block.stream = stream;
    block.live = true;
  } catch (...) {  // no host memory for the records: give the block back rather than lose it
    blocks_.erase(ptr);
    (void)cudaFree(ptr);
    throw;
  }
  device_allocations_++;
  stats_.bytes_in_use += size;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CudaCachingAllocator::deallocate(void* ptr, size_t) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(ptr);
  ENGINE_ASSERT(it != blocks_.end() && it->second.live);
  Block& block = it->second;
  block.live = false;
  stats_.bytes_in_use -= block.size;
  stats_.bytes_cached += block.size;
  if (block.other_streams.empty()) {
    push_free(block);
    return;
  }
  const DeviceGuard guard(Device::cuda(device_));  // the events belong to the streams' device
  bool recorded = true;
  for (size_t i = 0; i < block.other_streams.size(); ++i)
    recorded = recorded && cudaEventRecord(block.events[i], block.other_streams[i]) == cudaSuccess;
  if (recorded) {
    block.next = pending_;
    pending_ = &block;
    return;
  }
  // An event could not be recorded: wait for the other streams instead, then the block is free.
  (void)cudaGetLastError();
  for (cudaStream_t other : block.other_streams) (void)cudaStreamSynchronize(other);
  forget_other_streams(block);
  push_free(block);
}

void CudaCachingAllocator::push_free(Block& block) {
  Block*& bin = bins_.find({block.stream, block.size})->second;
  block.next = bin;
  bin = &block;
}

void CudaCachingAllocator::forget_other_streams(Block& block) {
  for (cudaEvent_t event : block.events) (void)cudaEventDestroy(event);
  block.events.clear();  // keeps the capacity: nothing is allocated or freed
  block.other_streams.clear();
}

void CudaCachingAllocator::collect_pending() {
  for (Block** link = &pending_; *link != nullptr;) {
    Block& block = **link;
    const bool done = std::all_of(block.events.begin(), block.events.end(),
                                  [](cudaEvent_t event) { return cudaEventQuery(event) == cudaSuccess; });
    if (!done) {
      link = &block.next;
      continue;
    }
    *link = block.next;
    forget_other_streams(block);
    push_free(block);
  }
  (void)cudaGetLastError();  // a not-ready query leaves no error behind, but be sure
}

void CudaCachingAllocator::record_stream(void* ptr, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(ptr);
  ENGINE_CHECK(it != blocks_.end() && it->second.live, "record_stream: ", ptr,
               " is not a live block of the CUDA allocator");
  Block& block = it->second;
  if (stream == block.stream ||
      std::find(block.other_streams.begin(), block.other_streams.end(), stream) != block.other_streams.end())
    return;
  // The event that deallocate records is made now, and both lists grow now: freeing allocates nothing.
  block.other_streams.reserve(block.other_streams.size() + 1);
  block.events.reserve(block.events.size() + 1);
  const DeviceGuard guard(Device::cuda(device_));
  cudaEvent_t event;
  CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  block.other_streams.push_back(stream);
  block.events.push_back(event);
}

AllocatorStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

uint64_t CudaCachingAllocator::device_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return device_allocations_;
}

void CudaCachingAllocator::empty_cache() {
  const DeviceGuard guard(Device::cuda(device_));
  CUDA_CHECK(cudaDeviceSynchronize());  // pending blocks' events complete
  std::lock_guard<std::mutex> lock(mutex_);
  collect_pending();
  release_cached();
}

void CudaCachingAllocator::release_cached() {
  // The bins' entries stay: live blocks go back to them when freed.
  for (auto& [key, bin] : bins_) {
    while (bin != nullptr) {
      Block* block = bin;
      bin = block->next;
      CUDA_CHECK(cudaFree(block->ptr));
      stats_.bytes_cached -= key.second;
      blocks_.erase(block->ptr);
    }
  }
}

}  // namespace engine::cuda
