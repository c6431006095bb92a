// CUDA streams and events and the calling thread's current stream (engine/cuda/stream.h).
#include "engine/cuda/stream.h"

#include "engine/cuda/check.h"

namespace engine::cuda {

namespace {
// Each device has its own current stream per host thread (a stream belongs to one device): the
// legacy default stream (nullptr) until set.
constexpr int kMaxDevices = 64;
thread_local cudaStream_t thread_streams[kMaxDevices] = {};

int checked_current_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  ENGINE_CHECK(device >= 0 && device < kMaxDevices, "CUDA device ", device, " is beyond the ", kMaxDevices,
               " devices the engine keeps streams for");
  return device;
}
}  // namespace

Stream::Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

// Destructors must not throw: a failure here means the context is already gone at exit.
Stream::~Stream() { (void)cudaStreamDestroy(stream_); }

void Stream::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void Stream::wait(const Event& event) const { CUDA_CHECK(cudaStreamWaitEvent(stream_, event.get(), 0)); }

Event::Event() { CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDefault)); }

Event::~Event() { (void)cudaEventDestroy(event_); }

void Event::record(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(event_, stream)); }

bool Event::ready() const {
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) return false;
  CUDA_CHECK(status);
  return true;
}

void Event::synchronize() const { CUDA_CHECK(cudaEventSynchronize(event_)); }

float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0.0f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

cudaStream_t current_stream() { return thread_streams[checked_current_device()]; }

void set_current_stream(cudaStream_t stream) { thread_streams[checked_current_device()] = stream; }

}  // namespace engine::cuda
