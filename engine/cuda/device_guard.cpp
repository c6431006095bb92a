// DeviceGuard's constructor and destructor: cudaGetDevice / cudaSetDevice around a scope
// (engine/cuda/device_guard.h).
#include "engine/cuda/device_guard.h"

#include "engine/cuda/check.h"

namespace engine::cuda {

int current_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

DeviceGuard::DeviceGuard(Device device) {
  if (!device.is_cuda()) return;
  const int current = current_device();
  if (current == device.index) return;
  CUDA_CHECK(cudaSetDevice(device.index));
  previous_ = current;
}

// Destructors must not throw; restoring a device that was valid a moment ago does not fail.
DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

}  // namespace engine::cuda
