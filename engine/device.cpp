// The process-wide default CUDA device (engine/device.h).
#include "engine/device.h"

#include <atomic>

#include "engine/error.h"

namespace engine {

namespace {
std::atomic<int> default_cuda_index{0};
}  // namespace

int default_cuda_device() { return default_cuda_index.load(std::memory_order_relaxed); }

void set_default_cuda_device(int index) {
  ENGINE_CHECK(index >= 0, "set_default_cuda_device: device index ", index, " is negative");
  default_cuda_index.store(index, std::memory_order_relaxed);
}

}  // namespace engine
