// The engine's headers before the CUDA ones: under the emulator, engine/cuda/cuda_api.h defines
// CUDA's keywords (__noinline__) as macros, which standard headers included after it trip over.
#include "engine/dist/communicator.h"
#include "engine/dist/nccl_watchdog.h"

#include <cstdio>
#include <utility>

#include "engine/cuda/check.h"

namespace engine::dist {

NcclWatchdog::NcclWatchdog(ncclComm_t comm, int rank, int world_size, int device, double timeout_seconds)
    : comm_(comm), rank_(rank), world_size_(world_size), device_(device), timeout_seconds_(timeout_seconds) {
  thread_ = std::thread([this] { run(); });
}

NcclWatchdog::~NcclWatchdog() {
  stop_ = true;
  thread_.join();
  for (Watched& w : watched_) (void)cudaEventDestroy(w.done);
}

void NcclWatchdog::watch(cudaStream_t stream, std::string what) {
  cudaEvent_t done;
  CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(done, stream));
  const std::lock_guard<std::mutex> lock(mutex_);
  watched_.push_back({done, std::move(what), std::chrono::steady_clock::now()});
}

void NcclWatchdog::end_job(const std::string& why) {
  std::fprintf(stderr, "NCCL watchdog: rank %d of %d: %s; aborting the NCCL communicator and the job\n", rank_,
               world_size_, why.c_str());
  (void)ncclCommAbort(comm_);
  abort_job(1);
}

// Checks, until stopped, for an asynchronous error and for the oldest unfinished collective's age.
void NcclWatchdog::run() {
  if (cudaSetDevice(device_) != cudaSuccess) end_job("cannot make GPU " + std::to_string(device_) + " current");
  while (!stop_) {
    ncclResult_t async_error = ncclSuccess;
    const ncclResult_t polled = ncclCommGetAsyncError(comm_, &async_error);
    if (polled != ncclSuccess || (async_error != ncclSuccess && async_error != ncclInProgress)) {
      const ncclResult_t bad = polled != ncclSuccess ? polled : async_error;
      const char* detail = ncclGetLastError(comm_);
      end_job(std::string("asynchronous NCCL error: ") + ncclGetErrorString(bad) + (detail && *detail ? ": " : "") +
              (detail ? detail : ""));
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      while (!watched_.empty()) {
        Watched& oldest = watched_.front();
        const cudaError_t status = cudaEventQuery(oldest.done);
        if (status == cudaErrorNotReady) {
          const double waited =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - oldest.queued).count();
          if (waited > timeout_seconds_)
            end_job(engine::detail::concat(oldest.what, " did not finish within ", timeout_seconds_,
                                           " s (ENGINE_NCCL_TIMEOUT_S): a rank stopped, or the ranks issue "
                                           "different collectives"));
          break;
        }
        if (status != cudaSuccess)
          end_job(std::string("CUDA error while waiting for ") + oldest.what + ": " + cudaGetErrorString(status));
        (void)cudaEventDestroy(oldest.done);
        watched_.pop_front();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace engine::dist
