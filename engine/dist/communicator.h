// Communicator: the collectives data-parallel training needs, over one group of processes (ranks).
//
// Backends: SingleProcessCommunicator (world size 1, no MPI needed), MpiCommunicator (CPU tensors,
// engine/dist/mpi_communicator.h) and NcclCommunicator (CUDA tensors, built with ENGINE_CUDA).
// create_communicator() picks one from the launcher's environment (engine/dist/launch_env.h).
//
// Every collective works in place on contiguous tensors and must be called by all ranks, in the
// same order, with the same shapes and dtypes. Legend: N elements of one rank's tensor, W world size.
#pragma once

#include <memory>
#include <string>

#include "engine/tensor.h"

namespace engine::dist {

enum class ReduceOp { sum, average };

// A collective started by an *_async call. wait() finishes it: on the CPU the result is in the
// tensor when it returns; on CUDA the caller's current stream is ordered after it (no host wait).
// test() lets the library advance it without blocking (MPI progresses only inside its calls) and
// says whether it has completed. The tensor must stay alive and untouched until wait() returns.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Rank among the processes on this machine: which GPU a process uses.
  virtual int local_rank() const = 0;
  virtual const char* name() const = 0;

  // tensor [N] <- sum (or mean) over ranks of tensor [N].
  virtual void all_reduce(Tensor& tensor, ReduceOp op) = 0;
  // all_reduce started without waiting for it, so that it overlaps the caller's later work. Ranks
  // must start their async and blocking collectives in the same order. The default runs the
  // blocking all_reduce.
  virtual std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op);
  // tensor [N] <- root's tensor [N].
  virtual void broadcast(Tensor& tensor, int root) = 0;
  // output [W*N] <- concatenation over ranks, in rank order, of input [N].
  virtual void all_gather(const Tensor& input, Tensor& output) = 0;
  // output [N] <- this rank's N-element slice of the sum (or mean) over ranks of input [W*N].
  virtual void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) = 0;
  virtual void barrier() = 0;
};

// World size 1: every collective is a copy (or nothing). Used when no launcher started us.
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  const char* name() const override { return "single-process"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void all_gather(const Tensor& input, Tensor& output) override;
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void barrier() override {}
};

// Ends every rank of the job at once with `exit_code` (MPI_Abort when MPI is running; else this
// process alone exits and the launcher, seeing a failed rank, stops the others). For a rank that
// cannot go on: the others would wait for it in their next collective forever.
[[noreturn]] void abort_job(int exit_code);

// The communicator for CPU tensors of this process: MPI when a launcher (mpirun, srun) started more
// than one rank, else a SingleProcessCommunicator. Throws when a multi-rank launch is detected but
// the engine was built without MPI.
std::unique_ptr<Communicator> create_communicator();

namespace detail {
// Checks shared by the backends; `op` names the collective in errors.
void check_collective_tensor(const char* backend, const char* op, const Tensor& tensor);
void check_gather_sizes(const char* backend, const char* op, const Tensor& shard, const Tensor& full, int world_size);
}  // namespace detail

}  // namespace engine::dist
