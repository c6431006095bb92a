// NcclCommunicator: collectives over NCCL for CUDA tensors (f32, f64, i32, i64), one GPU per rank.
//
// Built with a CPU communicator for the bootstrap (MpiCommunicator under a launcher, a
// SingleProcessCommunicator alone): rank 0 makes the NCCL unique id and broadcasts it over that
// communicator; each rank uses GPU local_rank. Blocking collectives run on the engine's current
// stream (engine/cuda/stream.h), so they are ordered after the kernels that produced their inputs.
// all_reduce_async runs on the communicator's own communication stream, after an event recorded on
// the current stream, so it overlaps the kernels queued after it; its wait() makes the then-current
// stream wait for it (no host synchronisation).
// Built only with ENGINE_CUDA (library engine_dist_nccl).
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

namespace engine::dist {

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& bootstrap);
  ~NcclCommunicator() override;
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  const char* name() const override { return "NCCL"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void all_gather(const Tensor& input, Tensor& output) override;
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void barrier() override;

 private:
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

}  // namespace engine::dist
