// A block of device memory shared by a tensor and all of its views. Freed (back to its allocator's
// cache) when the last tensor referring to it goes away.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/allocator.h"
#include "engine/device.h"

namespace engine {

class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t bytes_;
  Device device_;
  Allocator* allocator_;
};

}  // namespace engine
