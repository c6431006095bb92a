// NcclCommunicator: collectives over NCCL for CUDA tensors (f32, f64, i32, i64), one GPU per rank.
//
// Built with a CPU communicator for the bootstrap (MpiCommunicator under a launcher, a
// SingleProcessCommunicator alone): the rank's GPU is chosen over it (engine/dist/device_select.h)
// unless the caller already did, then rank 0 makes the NCCL unique id and broadcasts it over it.
// Every call runs on the communicator's GPU (a DeviceGuard) and refuses tensors of another device.
// Blocking collectives run on the engine's current stream (engine/cuda/stream.h), so they are
// ordered after the kernels that produced their inputs. all_reduce_async runs on the communicator's
// own communication stream, after an event recorded on the current stream, so it overlaps the
// kernels queued after it; its wait() makes the then-current stream wait for it (no host sync).
//
// Failures end the job instead of hanging it. On a GPU a watchdog thread polls NCCL's asynchronous
// errors (ncclCommGetAsyncError) and the completion of every queued collective; an error, or a
// collective not finished within the timeout, prints "NCCL watchdog: rank R of W: ..." naming the
// collective, aborts the communicator (ncclCommAbort) and ends every rank (abort_job). Under the
// emulated NCCL (engine/emu/nccl_api.h) collectives are synchronous and check themselves: a
// collective that differs between ranks or is not joined within the timeout throws an error naming
// the rank, which the apps turn into the same end of the job (apps/dist_job.h).
// The timeout: NcclOptions::timeout_seconds, else the environment's ENGINE_NCCL_TIMEOUT_S, else 600.
//
// Built with ENGINE_CUDA (library engine_dist_nccl) and under the emulator with MPI
// (engine_dist_nccl_emu).
#pragma once

#include <memory>

#include "engine/device.h"
#include "engine/dist/communicator.h"

namespace engine::dist {

struct NcclOptions {
  int device = -1;              // this rank's GPU; -1 chooses it (select_cuda_device over the bootstrap)
  double timeout_seconds = 0;   // 0: ENGINE_NCCL_TIMEOUT_S, else 600
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& bootstrap, NcclOptions options = {});
  ~NcclCommunicator() override;
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  const char* name() const override { return "NCCL"; }
  // The GPU this rank's collectives run on.
  Device device() const { return Device::cuda(device_); }
  double timeout_seconds() const { return timeout_seconds_; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void all_gather(const Tensor& input, Tensor& output) override;
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void barrier() override;

 private:
  void check_tensor(const char* op, const Tensor& tensor) const;
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0, device_ = 0;
  double timeout_seconds_ = 600;
};

}  // namespace engine::dist
