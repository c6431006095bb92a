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
  for (PendingBlock& pending : pending_) {
    for (cudaEvent_t event : pending.events) (void)cudaEventDestroy(event);
    (void)cudaFree(pending.ptr);
  }
  for (auto& [key, blocks] : bins_)
    for (void* ptr : blocks) (void)cudaFree(ptr);
}

void* CudaCachingAllocator::allocate(size_t bytes) {
  const size_t size = allocation_size_class(bytes);
  const DeviceGuard guard(Device::cuda(device_));  // the block, and the stream it is ordered on, are this device's
  const cudaStream_t stream = current_stream();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocations++;
    collect_pending();
    auto bin = bins_.find({stream, size});
    if (bin != bins_.end() && !bin->second.empty()) {
      void* ptr = bin->second.back();
      bin->second.pop_back();
      live_[ptr] = Block{size, stream, {}};
      stats_.cache_hits++;
      stats_.bytes_cached -= size;
      stats_.bytes_in_use += size;
      stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
      // The emulator poisons a reused block as cudaMalloc's fresh memory: a read before a write
      // gives NaN, not the previous tensor's values.
      if constexpr (kEmulated) CUDA_CHECK(cudaMemsetAsync(ptr, 0xff, size, stream));
      return ptr;
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
  device_allocations_++;
  live_[ptr] = Block{size, stream, {}};
  stats_.bytes_in_use += size;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

void CudaCachingAllocator::deallocate(void* ptr, size_t) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  ENGINE_ASSERT(it != live_.end());
  Block block = std::move(it->second);
  live_.erase(it);
  stats_.bytes_in_use -= block.size;
  stats_.bytes_cached += block.size;
  if (block.other_streams.empty()) {
    bins_[{block.stream, block.size}].push_back(ptr);
    return;
  }
  PendingBlock pending{ptr, std::move(block), {}};
  const DeviceGuard guard(Device::cuda(device_));  // the events belong to the streams' device
  for (cudaStream_t other : pending.block.other_streams) {
    cudaEvent_t event;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(event, other));
    pending.events.push_back(event);
  }
  pending_.push_back(std::move(pending));
}

void CudaCachingAllocator::collect_pending() {
  for (size_t i = 0; i < pending_.size();) {
    PendingBlock& pending = pending_[i];
    const bool done = std::all_of(pending.events.begin(), pending.events.end(),
                                  [](cudaEvent_t event) { return cudaEventQuery(event) == cudaSuccess; });
    if (!done) {
      ++i;
      continue;
    }
    for (cudaEvent_t event : pending.events) CUDA_CHECK(cudaEventDestroy(event));
    bins_[{pending.block.stream, pending.block.size}].push_back(pending.ptr);
    pending_[i] = std::move(pending_.back());
    pending_.pop_back();
  }
  (void)cudaGetLastError();  // a not-ready query leaves no error behind, but be sure
}

void CudaCachingAllocator::record_stream(void* ptr, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  ENGINE_CHECK(it != live_.end(), "record_stream: ", ptr, " is not a live block of the CUDA allocator");
  Block& block = it->second;
  if (stream != block.stream && std::find(block.other_streams.begin(), block.other_streams.end(), stream) ==
                                    block.other_streams.end())
    block.other_streams.push_back(stream);
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
  for (auto& [key, blocks] : bins_)
    for (void* ptr : blocks) {
      CUDA_CHECK(cudaFree(ptr));
      stats_.bytes_cached -= key.second;
    }
  bins_.clear();
}

}  // namespace engine::cuda
