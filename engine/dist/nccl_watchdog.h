// NcclWatchdog: turns a hung or failed NCCL job into a clear end. NCCL's collectives are queued on
// streams and return at once, so the host cannot see that a peer never joined one (it waits on the
// GPU forever) or that NCCL hit an asynchronous error (a network failure, a peer that died). A
// thread polls, every 50 ms, ncclCommGetAsyncError and an event recorded after each collective;
// on an error, or a collective unfinished after the timeout, it prints on stderr
//   NCCL watchdog: rank 3 of 8: collective #1207 (all_reduce of 2621440 f32) did not finish within 600 s ...
// aborts the communicator (ncclCommAbort, which frees the GPU work stuck in it) and ends every rank
// of the job (abort_job), as PyTorch's NCCL watchdog does.
// Used on real GPUs only: the emulated NCCL is synchronous and reports the same failures itself.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "engine/cuda/cuda_api.h"
#include "engine/cuda/nccl_api.h"

namespace engine::dist {

class NcclWatchdog {
 public:
  NcclWatchdog(ncclComm_t comm, int rank, int world_size, int device, double timeout_seconds);
  ~NcclWatchdog();
  NcclWatchdog(const NcclWatchdog&) = delete;
  NcclWatchdog& operator=(const NcclWatchdog&) = delete;

  // Watches the collective just queued on `stream` (`what` describes it in the message).
  void watch(cudaStream_t stream, std::string what);

 private:
  struct Watched {
    cudaEvent_t done;
    std::string what;
    std::chrono::steady_clock::time_point queued;
  };
  void run();
  [[noreturn]] void end_job(const std::string& why);

  ncclComm_t comm_;
  int rank_, world_size_, device_;
  double timeout_seconds_;
  std::mutex mutex_;
  std::deque<Watched> watched_;  // in queue order
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace engine::dist
