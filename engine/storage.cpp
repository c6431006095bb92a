// Storage (engine/storage.h): memory taken from and given back to its device's allocator.
#include "engine/storage.h"

#include "engine/backend.h"

namespace engine {

Storage::Storage(size_t bytes, Device device)
    : bytes_(bytes), device_(device), allocator_(&backend_for(device.type).allocator(device.index)) {
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() { allocator_->deallocate(data_, bytes_); }

}  // namespace engine
