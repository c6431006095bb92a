// Streams and events: owning wrappers over cudaStream_t / cudaEvent_t, and the calling thread's
// current stream, on which the engine's kernels, copies and allocations are ordered.
#pragma once

#include "engine/cuda/cuda_api.h"

namespace engine::cuda {

class Event;

// An owned, non-blocking stream (it does not synchronise with the legacy default stream).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  // Waits on the host until the stream's queued work is done.
  void synchronize() const;
  // Orders this stream's later work after `event` (no host wait).
  void wait(const Event& event) const;

 private:
  cudaStream_t stream_ = nullptr;
};

// A point in a stream's work; timing is enabled so that two events measure elapsed time.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  // True when the work before the recorded point has finished.
  bool ready() const;
  void synchronize() const;
  // Milliseconds from `start` to this event; both must have been recorded and completed.
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

// The stream the engine uses on this host thread for the current device (the legacy default
// stream unless set). Streams belong to a device: each device has its own current stream.
cudaStream_t current_stream();
void set_current_stream(cudaStream_t stream);

// Makes `stream` (of the current device) current for a scope.
class StreamGuard {
 public:
  explicit StreamGuard(cudaStream_t stream) : previous_(current_stream()) { set_current_stream(stream); }
  ~StreamGuard() { set_current_stream(previous_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  cudaStream_t previous_;
};

}  // namespace engine::cuda
