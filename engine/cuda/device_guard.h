// DeviceGuard: makes a tensor's GPU the calling thread's current CUDA device for a scope, and
// restores the previous one after. Kernels, copies, cuBLAS handles and streams act on the current
// device, so every operation on CUDA tensors runs under a guard for their device: a tensor on
// cuda:1 is never touched by work queued on GPU 0. A CPU device leaves the current device alone.
//
//   const engine::cuda::DeviceGuard guard(x.device());
//   ENGINE_LAUNCH(kernel, grid, block, 0, engine::cuda::current_stream(), x.data<float>(), ...);
#pragma once

#include "engine/device.h"

namespace engine::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;  // the device to restore, or -1 when nothing changed
};

// The calling thread's current CUDA device.
int current_device();

}  // namespace engine::cuda
