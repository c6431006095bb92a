#include "engine/cuda/stream.h"

#include "engine/cuda/check.h"

namespace engine::cuda {

namespace {
thread_local cudaStream_t thread_stream = nullptr;
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

cudaStream_t current_stream() { return thread_stream; }

void set_current_stream(cudaStream_t stream) { thread_stream = stream; }

}  // namespace engine::cuda
