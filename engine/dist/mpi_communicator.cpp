// Legend: N elements of one rank's tensor, W world size.
#include "engine/dist/mpi_communicator.h"

#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

#include "engine/dist/launch_env.h"
#include "engine/dist/mpi_check.h"
#include "engine/error.h"

namespace engine::dist {

namespace {

// Initialises MPI once per process and finalises it at exit (unless someone else owns it).
void ensure_mpi_initialized() {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;
  MPI_CHECK(MPI_Init(nullptr, nullptr));
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  std::atexit([] {
    int finalized = 0;
    if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
  });
}

MPI_Datatype mpi_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32: return MPI_FLOAT;
    case Dtype::f64: return MPI_DOUBLE;
    case Dtype::i32: return MPI_INT32_T;
    case Dtype::i64: return MPI_INT64_T;
    case Dtype::bf16: break;  // MPI has no bf16 type
  }
  throw Error(engine::detail::concat("MPI: unsupported dtype ", dtype_name(dtype)));
}

int mpi_count(const char* op, const Tensor& tensor) {
  ENGINE_CHECK(tensor.numel() <= (int64_t(1) << 31) - 1, "MPI ", op, ": ", tensor.numel(),
               " elements exceed MPI's int count; split the tensor");
  return int(tensor.numel());
}

void check_cpu(const char* op, const Tensor& tensor) {
  detail::check_collective_tensor("MPI", op, tensor);
  ENGINE_CHECK(tensor.device().is_cpu(), "MPI ", op, ": the MPI backend takes CPU tensors, got ", tensor.describe(),
               " (use the NCCL communicator for CUDA tensors)");
}

// x[i] /= divisor: turns a sum over ranks into a mean.
template <typename T>
void divide(T* x, int64_t n, T divisor) {
  for (int64_t i = 0; i < n; ++i) x[i] /= divisor;
}

void finish_average(const char* op, Tensor& tensor, int world_size) {
  switch (tensor.dtype()) {
    case Dtype::f32: divide(tensor.data<float>(), tensor.numel(), float(world_size)); break;
    case Dtype::f64: divide(tensor.data<double>(), tensor.numel(), double(world_size)); break;
    default:
      throw Error(engine::detail::concat("MPI ", op, ": average needs a floating tensor, got ", tensor.describe()));
  }
}

// An MPI_Iallreduce in flight; an average divides by the world size once the sum has arrived.
class PendingMpiAllReduce final : public PendingCollective {
 public:
  PendingMpiAllReduce(Tensor tensor, ReduceOp op, int world_size)
      : tensor_(std::move(tensor)), op_(op), world_size_(world_size) {
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, tensor_.raw_data(), mpi_count("all_reduce_async", tensor_),
                             mpi_type(tensor_.dtype()), MPI_SUM, MPI_COMM_WORLD, &request_));
  }
  // MPI may write the buffer until the request completes, so an unfinished one is waited for.
  // Not while an exception unwinds: the other ranks may never join this collective, and the job is
  // ending (apps::run_dist_job aborts it); the buffer is then leaked on purpose, so that MPI's late
  // writes land in memory nobody reuses.
  ~PendingMpiAllReduce() override {
    if (request_ == MPI_REQUEST_NULL) return;
    if (std::uncaught_exceptions() > 0) {
      new Tensor(std::move(tensor_));  // NOLINT: deliberately leaked, see above
      return;
    }
    MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  PendingMpiAllReduce(const PendingMpiAllReduce&) = delete;
  PendingMpiAllReduce& operator=(const PendingMpiAllReduce&) = delete;

  void wait() override {
    if (done_) return;
    MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
    finish();
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    if (flag) finish();
    return done_;
  }

 private:
  void finish() {
    done_ = true;
    if (op_ == ReduceOp::average) finish_average("all_reduce_async", tensor_, world_size_);
  }
  Tensor tensor_;
  ReduceOp op_;
  int world_size_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

}  // namespace

MpiCommunicator::MpiCommunicator() {
  ensure_mpi_initialized();
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  // The processes that share this node's memory are the node's ranks, ordered by world rank.
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  MPI_CHECK(MPI_Comm_free(&node));
  const LaunchInfo launch = detect_launch();
  ENGINE_CHECK(launch.world_size == 1 || launch.world_size == world_size_, "the launcher (", launch.launcher,
               ") started ", launch.world_size, " ranks but MPI sees ", world_size_,
               ": start the ranks with mpirun or srun of the MPI the engine was built with");
}

void MpiCommunicator::all_reduce(Tensor& tensor, ReduceOp op) {
  check_cpu("all_reduce", tensor);
  if (op == ReduceOp::average)
    ENGINE_CHECK(is_floating(tensor.dtype()), "MPI all_reduce: average needs a floating tensor, got ",
                 tensor.describe());
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, tensor.raw_data(), mpi_count("all_reduce", tensor), mpi_type(tensor.dtype()),
                          MPI_SUM, MPI_COMM_WORLD));
  if (op == ReduceOp::average) finish_average("all_reduce", tensor, world_size_);
}

std::unique_ptr<PendingCollective> MpiCommunicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  check_cpu("all_reduce_async", tensor);
  if (op == ReduceOp::average)
    ENGINE_CHECK(is_floating(tensor.dtype()), "MPI all_reduce_async: average needs a floating tensor, got ",
                 tensor.describe());
  return std::make_unique<PendingMpiAllReduce>(tensor, op, world_size_);
}

void MpiCommunicator::broadcast(Tensor& tensor, int root) {
  check_cpu("broadcast", tensor);
  ENGINE_CHECK(root >= 0 && root < world_size_, "MPI broadcast: root ", root, " is outside world size ", world_size_);
  MPI_CHECK(MPI_Bcast(tensor.raw_data(), mpi_count("broadcast", tensor), mpi_type(tensor.dtype()), root,
                      MPI_COMM_WORLD));
}

void MpiCommunicator::all_gather(const Tensor& input, Tensor& output) {
  check_cpu("all_gather", input);
  check_cpu("all_gather", output);
  detail::check_gather_sizes(name(), "all_gather", input, output, world_size_);
  const MPI_Datatype type = mpi_type(input.dtype());
  MPI_CHECK(MPI_Allgather(input.raw_data(), mpi_count("all_gather", input), type, output.raw_data(),
                          mpi_count("all_gather", input), type, MPI_COMM_WORLD));
}

void MpiCommunicator::reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  check_cpu("reduce_scatter", input);
  check_cpu("reduce_scatter", output);
  detail::check_gather_sizes(name(), "reduce_scatter", output, input, world_size_);
  if (op == ReduceOp::average)
    ENGINE_CHECK(is_floating(input.dtype()), "MPI reduce_scatter: average needs a floating tensor, got ",
                 input.describe());
  MPI_CHECK(MPI_Reduce_scatter_block(input.raw_data(), output.raw_data(), mpi_count("reduce_scatter", output),
                                     mpi_type(input.dtype()), MPI_SUM, MPI_COMM_WORLD));
  if (op == ReduceOp::average) finish_average("reduce_scatter", output, world_size_);
}

void MpiCommunicator::barrier() { MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

}  // namespace engine::dist
