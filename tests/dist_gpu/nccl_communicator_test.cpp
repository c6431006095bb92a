// The NCCL communicator at world size 1 on a real GPU (NCCL refuses two ranks on one GPU; the
// multi-rank logic is tested through the MPI backend in tests/dist). Skips without a GPU.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "common/cuda_ready.h"
#include "engine/dist/communicator.h"
#include "engine/dist/nccl_communicator.h"
#include "engine/error.h"
#include "engine/tensor.h"

using engine::Device;
using engine::Dtype;
using engine::Tensor;
using namespace engine::dist;

TEST_CASE("NCCL collectives at world size 1 leave values as they are") {
  if (!cuda_ready()) return;
  SingleProcessCommunicator bootstrap;
  NcclCommunicator comm(bootstrap);
  CHECK(comm.world_size() == 1);
  CHECK(comm.rank() == 0);
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    Tensor x = Tensor::from_vector({1.5, -2, 3}, {3}, dtype).to(Device::cuda());
    comm.all_reduce(x, ReduceOp::sum);
    comm.all_reduce(x, ReduceOp::average);
    comm.broadcast(x, 0);
    Tensor gathered = Tensor::zeros({3}, dtype, Device::cuda());
    comm.all_gather(x, gathered);
    Tensor scattered = Tensor::zeros({3}, dtype, Device::cuda());
    comm.reduce_scatter(gathered, scattered, ReduceOp::average);
    CHECK(scattered.to(Device::cpu()).to_vector<double>() == std::vector<double>{1.5, -2, 3});
  }
  comm.barrier();
}

TEST_CASE("the NCCL communicator refuses CPU tensors") {
  if (!cuda_ready()) return;
  SingleProcessCommunicator bootstrap;
  NcclCommunicator comm(bootstrap);
  Tensor x = Tensor::ones({2});
  CHECK_THROWS_WITH_AS(comm.all_reduce(x, ReduceOp::sum), doctest::Contains("the NCCL backend takes CUDA tensors"),
                       engine::Error);
}

// The async all-reduce runs on the communicator's stream after the current stream's work, and the
// current stream waits for it: the value written just before is reduced, the one read after is
// the result, with no host synchronisation in between.
TEST_CASE("NCCL all_reduce_async is ordered between the current stream's work") {
  if (!cuda_ready()) return;
  SingleProcessCommunicator bootstrap;
  NcclCommunicator comm(bootstrap);
  Tensor x = Tensor::zeros({1 << 20}, Dtype::f32, Device::cuda());
  x.fill_(2.5);  // queued on the current stream
  std::unique_ptr<PendingCollective> pending = comm.all_reduce_async(x, ReduceOp::average);
  pending->wait();
  Tensor y = Tensor::zeros({1 << 20}, Dtype::f32, Device::cuda());
  y.copy_(x);  // queued after the wait
  const std::vector<float> values = y.to(Device::cpu()).to_vector<float>();
  CHECK(values.front() == 2.5f);
  CHECK(values.back() == 2.5f);
  CHECK(pending->test());
}
