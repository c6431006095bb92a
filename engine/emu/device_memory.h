// The emulator's "device memory": host memory whose every allocation is registered with the device
// it belongs to, so that a host pointer passed where a device pointer belongs (a kernel argument, a
// cudaMemcpy side, a cuBLAS matrix) is caught, and so is a range that runs past the end of its
// allocation or memory of another device than the current one (engine/emu/devices.h).
#pragma once

#include <cstddef>

namespace engine::emu {

// Allocates `bytes` of tracked memory on the current device (256-byte aligned, as cudaMalloc), filled
// with 0xff bytes so that reading it before writing gives NaN for floats.
void* device_allocate(size_t bytes);
// Frees a pointer from device_allocate; throws engine::Error for any other pointer.
void device_free(void* ptr);
// True when ptr lies inside a live tracked allocation.
bool is_device_pointer(const void* ptr);
// The device owning the live allocation that contains ptr, or -1 for any other pointer.
int device_of(const void* ptr);
// Throws engine::Error, prefixed with `what`, unless [ptr, ptr + bytes) lies inside one live
// allocation of the current device.
void check_device_range(const void* ptr, size_t bytes, const char* what);
// As check_device_range, for an allocation of `device` (cudaMemcpyPeer names its devices).
void check_device_range_on(const void* ptr, size_t bytes, int device, const char* what);
// Throws unless [ptr, ptr + bytes) overlaps no tracked allocation (a host buffer).
void check_host_range(const void* ptr, size_t bytes, const char* what);
// Bytes held by live tracked allocations (for leak checks in tests).
size_t device_bytes_in_use();

}  // namespace engine::emu
