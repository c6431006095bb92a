// What the engine needs from a device: memory, byte copies, and the few strided primitives that
// tensors and autograd use themselves (contiguous(), gradient accumulation, broadcast reduction).
// The CPU backend is built in; the CUDA backend registers itself when its library is linked, so the
// ops' users never see which one runs.
#pragma once

#include <cstddef>

#include "engine/allocator.h"
#include "engine/device.h"
#include "engine/philox.h"

namespace engine {

class Tensor;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Allocator& allocator(int device_index) = 0;
  // Copies bytes between this device and the host, or within this device.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // dst[...] = value, over dst's strided elements.
  virtual void fill(const Tensor& dst, double value) = 0;
  // dst[...] = src[...], with src broadcast to dst's shape and converted to dst's dtype.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  // dst[...] += src[...], src broadcast to dst's shape; same floating dtype.
  virtual void add_into(const Tensor& dst, const Tensor& src) = 0;
  // dst = src summed over the dimensions where dst (right-aligned, of rank <= src's) has size 1 or
  // is missing: the gradient of a broadcast. dst is contiguous and overwritten.
  virtual void sum_to(const Tensor& dst, const Tensor& src) = 0;
  // dst[i] = random_element(spec, seed, offset, i) over dst's elements in row-major order.
  virtual void fill_random(const Tensor& dst, const RandomSpec& spec, uint64_t seed, uint64_t offset) = 0;
  // Waits until all queued work on the device is done.
  virtual void synchronize() = 0;
};

Backend& backend_for(DeviceType type);
// Installs the backend for a device type (the CUDA runtime, or the emulator in test builds).
void register_backend(DeviceType type, Backend* backend);
bool backend_available(DeviceType type);

}  // namespace engine
