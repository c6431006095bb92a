// The single-process communicator and the checks every backend shares (engine/dist/communicator.h).
#include "engine/dist/communicator.h"

#include <cstdio>
#include <cstdlib>

#include "engine/autograd.h"
#include "engine/dist/launch_env.h"
#include "engine/error.h"
#ifdef ENGINE_HAVE_MPI
#include <mpi.h>

#include "engine/dist/mpi_communicator.h"
#endif

namespace engine::dist {

namespace detail {

void check_collective_tensor(const char* backend, const char* op, const Tensor& tensor) {
  ENGINE_CHECK(tensor.defined(), backend, " ", op, ": tensor is undefined");
  ENGINE_CHECK(tensor.is_contiguous(), backend, " ", op, ": tensor must be contiguous, got ", tensor.describe());
}

void check_gather_sizes(const char* backend, const char* op, const Tensor& shard, const Tensor& full, int world_size) {
  check_collective_tensor(backend, op, shard);
  check_collective_tensor(backend, op, full);
  ENGINE_CHECK(shard.dtype() == full.dtype() && shard.device() == full.device(), backend, " ", op,
               ": tensors differ in dtype or device: ", shard.describe(), " and ", full.describe());
  ENGINE_CHECK(full.numel() == shard.numel() * world_size, backend, " ", op, ": the full tensor must hold world size (",
               world_size, ") times the shard's elements, got ", full.describe(), " and ", shard.describe());
}

}  // namespace detail

namespace {

// What a blocking collective leaves behind: nothing to wait for.
class CompletedCollective final : public PendingCollective {
 public:
  void wait() override {}
  bool test() override { return true; }
};

}  // namespace

std::unique_ptr<PendingCollective> Communicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  all_reduce(tensor, op);
  return std::make_unique<CompletedCollective>();
}

void SingleProcessCommunicator::all_reduce(Tensor& tensor, ReduceOp) {
  detail::check_collective_tensor(name(), "all_reduce", tensor);
}

void SingleProcessCommunicator::broadcast(Tensor& tensor, int root) {
  detail::check_collective_tensor(name(), "broadcast", tensor);
  ENGINE_CHECK(root == 0, name(), " broadcast: root ", root, " is outside world size 1");
}

void SingleProcessCommunicator::all_gather(const Tensor& input, Tensor& output) {
  detail::check_gather_sizes(name(), "all_gather", input, output, 1);
  NoGradGuard no_grad;
  output.view(input.shape()).copy_(input);
}

void SingleProcessCommunicator::reduce_scatter(const Tensor& input, Tensor& output, ReduceOp) {
  detail::check_gather_sizes(name(), "reduce_scatter", output, input, 1);
  NoGradGuard no_grad;
  output.copy_(input.view(output.shape()));
}

void abort_job(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef ENGINE_HAVE_MPI
  int initialized = 0, finalized = 0;
  if (MPI_Initialized(&initialized) == MPI_SUCCESS && initialized && MPI_Finalized(&finalized) == MPI_SUCCESS &&
      !finalized)
    MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::_Exit(exit_code);
}

std::unique_ptr<Communicator> create_communicator() {
  const LaunchInfo launch = detect_launch();
  if (launch.world_size == 1) return std::make_unique<SingleProcessCommunicator>();
#ifdef ENGINE_HAVE_MPI
  return std::make_unique<MpiCommunicator>();
#else
  throw Error(engine::detail::concat("create_communicator: ", launch.launcher, " started ", launch.world_size,
                                     " ranks, but this engine was built without MPI: install libopenmpi-dev "
                                     "openmpi-bin (scripts/setup.sh) and reconfigure"));
#endif
}

}  // namespace engine::dist
