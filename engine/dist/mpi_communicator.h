// MpiCommunicator: collectives over MPI_COMM_WORLD for CPU tensors (f32, f64, i32, i64).
// The first one made initialises MPI (finalised at exit); rank and world size come from MPI, the
// local rank (the rank among the processes of one node: which GPU it uses) from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), which needs no launcher variable. Built only when
// CMake found MPI (ENGINE_HAVE_MPI).
#pragma once

#include "engine/dist/communicator.h"

namespace engine::dist {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator();
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  const char* name() const override { return "MPI"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  // MPI_Iallreduce: progresses inside MPI calls (PendingCollective::test() is one).
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void all_gather(const Tensor& input, Tensor& output) override;
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void barrier() override;

 private:
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

}  // namespace engine::dist
