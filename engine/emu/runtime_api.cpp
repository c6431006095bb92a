// The emulated CUDA runtime (engine/emu/runtime_api.h): synchronous memory copies with kind checks,
// device queries, streams and events.
#include "engine/emu/runtime_api.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/emu/scheduler.h"
#include "engine/error.h"

struct EmulatedStream {
  unsigned flags = 0;
  int device = 0;
};

struct EmulatedEvent {
  bool recorded = false;
  std::chrono::steady_clock::time_point time;
};

namespace {

const char* kind_name(cudaMemcpyKind kind) {
  switch (kind) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an unknown cudaMemcpyKind";
}

// Checks that both sides of a copy are on the side its kind names, then copies.
void checked_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return;
  const std::string source = std::string("emulated cudaMemcpy(") + kind_name(kind) + ") source";
  const std::string destination = std::string("emulated cudaMemcpy(") + kind_name(kind) + ") destination";
  const bool src_on_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_on_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  ENGINE_CHECK(kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault, "emulated cudaMemcpy: invalid kind ", int(kind));
  if (kind != cudaMemcpyDefault) {
    if (src_on_device) engine::emu::check_device_range(src, bytes, source.c_str());
    else engine::emu::check_host_range(src, bytes, source.c_str());
    if (dst_on_device) engine::emu::check_device_range(dst, bytes, destination.c_str());
    else engine::emu::check_host_range(dst, bytes, destination.c_str());
  } else {  // unified addressing: each side must still be whole on one side
    if (engine::emu::is_device_pointer(src)) engine::emu::check_device_range(src, bytes, source.c_str());
    if (engine::emu::is_device_pointer(dst)) engine::emu::check_device_range(dst, bytes, destination.c_str());
  }
  std::memmove(dst, src, bytes);
}

}  // namespace

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotReady: return "device not ready";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}

// Launch errors throw at the launch, so there is never a pending error.
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaPeekAtLastError() { return cudaSuccess; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = engine::emu::device_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= engine::emu::device_count()) return cudaErrorInvalidDevice;
  engine::emu::set_current_device(device);
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = engine::emu::current_device();
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= engine::emu::device_count()) return cudaErrorInvalidDevice;
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "emulated GPU %d", device);
  const std::array<uint8_t, 16> uuid = engine::emu::device_uuid(device);
  std::memcpy(prop->uuid.bytes, uuid.data(), uuid.size());
  prop->totalGlobalMem = size_t(16) << 30;
  prop->major = 8;  // sm_80, the limits the scheduler enforces
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = engine::emu::device_allocate(bytes);
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  engine::emu::device_free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  checked_copy(dst, src, bytes, kind);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  engine::emu::check_stream_device(stream, "emulated cudaMemcpyAsync");
  checked_copy(dst, src, bytes, kind);
  return cudaSuccess;
}

cudaError_t cudaMemcpyPeer(void* dst, int dst_device, const void* src, int src_device, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  engine::emu::check_device_range_on(src, bytes, src_device, "emulated cudaMemcpyPeer source");
  engine::emu::check_device_range_on(dst, bytes, dst_device, "emulated cudaMemcpyPeer destination");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, size_t bytes,
                                cudaStream_t stream) {
  engine::emu::check_stream_device(stream, "emulated cudaMemcpyPeerAsync");
  return cudaMemcpyPeer(dst, dst_device, src, src_device, bytes);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  engine::emu::check_device_range(ptr, bytes, "emulated cudaMemset");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  engine::emu::check_stream_device(stream, "emulated cudaMemsetAsync");
  return cudaMemset(ptr, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  *stream = new EmulatedStream{flags, engine::emu::current_device()};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = new EmulatedEvent{};
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start->recorded || !end->recorded) return cudaErrorInvalidValue;  // as CUDA: both must be recorded
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

void engine::emu::check_stream_device(cudaStream_t stream, const char* what) {
  ENGINE_CHECK(stream == nullptr || stream->device == engine::emu::current_device(), what, ": the stream belongs to device ",
               stream->device, " but the current device is ", engine::emu::current_device(),
               " (make the tensor's device current first, engine/cuda/device_guard.h)");
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0) return cudaErrorInvalidValue;
  engine::emu::detail::set_max_dynamic_shared(kernel, size_t(value));
  return cudaSuccess;
}
