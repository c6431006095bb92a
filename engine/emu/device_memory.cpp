// The emulator's tracked device memory (engine/emu/device_memory.h): a registry of allocations,
// poisoned with 0xff bytes, and range checks.
#include "engine/emu/device_memory.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "engine/emu/devices.h"
#include "engine/error.h"

namespace engine::emu {

namespace {

struct Allocation {
  size_t bytes;
  int device;
};

std::mutex registry_mutex;
std::map<uintptr_t, Allocation>& registry() {  // start address -> allocation
  static auto* allocations = new std::map<uintptr_t, Allocation>();  // never destroyed: freed into at exit
  return *allocations;
}
size_t bytes_in_use = 0;

// The live allocation containing address p, or registry().end(); caller holds the mutex.
std::map<uintptr_t, Allocation>::const_iterator find_allocation(uintptr_t p) {
  auto it = registry().upper_bound(p);
  if (it == registry().begin()) return registry().end();
  --it;
  return p < it->first + it->second.bytes ? it : registry().end();
}

}  // namespace

void* device_allocate(size_t bytes) {
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* ptr = std::aligned_alloc(256, rounded == 0 ? 256 : rounded);
  ENGINE_CHECK(ptr != nullptr, "emulated cudaMalloc: out of host memory for ", bytes, " bytes");
  std::memset(ptr, 0xff, bytes);
  std::lock_guard<std::mutex> lock(registry_mutex);
  const size_t tracked = bytes == 0 ? 1 : bytes;  // a zero-byte allocation still has an address
  registry()[reinterpret_cast<uintptr_t>(ptr)] = {tracked, current_device()};
  bytes_in_use += tracked;
  return ptr;
}

void device_free(void* ptr) {
  if (ptr == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry().find(reinterpret_cast<uintptr_t>(ptr));
    ENGINE_CHECK(it != registry().end(), "emulated cudaFree: ", ptr,
                 " is not the start of a device allocation (a host pointer, or freed twice)");
    bytes_in_use -= it->second.bytes;
    registry().erase(it);
  }
  std::free(ptr);
}

bool is_device_pointer(const void* ptr) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return find_allocation(reinterpret_cast<uintptr_t>(ptr)) != registry().end();
}

int device_of(const void* ptr) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = find_allocation(reinterpret_cast<uintptr_t>(ptr));
  return it == registry().end() ? -1 : it->second.device;
}

void check_device_range_on(const void* ptr, size_t bytes, int device, const char* what) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = find_allocation(start);
  ENGINE_CHECK(it != registry().end(), what, ": ", ptr,
               " is not device memory (a host pointer where a device pointer belongs?)");
  const Allocation& allocation = it->second;
  ENGINE_CHECK(allocation.device == device, what, ": ", ptr, " is memory of device ", allocation.device,
               " but the call runs on device ", device,
               " (a tensor on another device: make its device current first, engine/cuda/device_guard.h)");
  ENGINE_CHECK(start + bytes <= it->first + allocation.bytes, what, ": ", bytes, " bytes from ", ptr,
               " run past the end of its device allocation of ", allocation.bytes, " bytes (by ",
               start + bytes - (it->first + allocation.bytes), " bytes)");
}

void check_device_range(const void* ptr, size_t bytes, const char* what) {
  check_device_range_on(ptr, bytes, current_device(), what);
}

void check_host_range(const void* ptr, size_t bytes, const char* what) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry().lower_bound(start);
  const bool overlaps_next = it != registry().end() && it->first < start + bytes;
  ENGINE_CHECK(!overlaps_next && find_allocation(start) == registry().end(), what, ": ", ptr,
               " is device memory, but a host pointer belongs here (wrong cudaMemcpyKind?)");
}

size_t device_bytes_in_use() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return bytes_in_use;
}

}  // namespace engine::emu
