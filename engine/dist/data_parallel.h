// DataParallel: one model replica per rank, gradients averaged across ranks (PyTorch DDP, llm.c).
//
//   dist::DataParallel ddp(comm, model.parameters(), {.bucket_bytes = 25 << 20, .accumulation_steps = 4});
//   for each micro-step: loss = model(rank's shard) / accumulation_steps; loss.backward();
//                        if (ddp.reduce_gradients()) { optimizer.step(); optimizer.zero_grad(); }
//
// The constructor broadcasts every parameter from rank 0, so all replicas start identical. The
// gradients are averaged in flat buckets of at most bucket_bytes (parameters in reverse registration
// order, the order backward produces them; one bucket per dtype run), one all-reduce per bucket;
// the buckets are allocated once.
//
// Overlap (options.overlap, the default; PyTorch DDP's scheme): during the last micro-step's
// backward, autograd's gradient-ready hook (engine/autograd.h) copies each parameter's final
// gradient into its bucket, and a bucket whose parameters are all ready starts its all-reduce
// (Communicator::all_reduce_async) while the backward goes on: MPI_Iallreduce on the CPU, which
// the later hooks progress with MPI_Test; the NCCL communicator's own stream on CUDA. Buckets start
// strictly in bucket order, so every rank issues the same collectives in the same order.
// reduce_gradients() then starts the buckets the backward did not complete (parameters it did not
// reach), waits for all and copies the means back into the gradients. Without overlap it does all
// of that after the backward. Both average the same buckets, so the results are identical.
// With overlap, run one backward per micro-step (a second would find gradients already sent) and
// leave the gradients alone until reduce_gradients() (clip after it), as with PyTorch DDP.
//
// Reduction dtype (options.reduce_dtype): f32 buckets by default; bf16 buckets for f32 gradients
// halve the bytes on the wire. Each gradient is rounded to bf16 (nearest even) as it is copied into
// its bucket, the collective sums in bf16 as NCCL does (each addition in f32, rounded to bf16; the
// mean pre-multiplies every rank's value by 1/W), and the mean is widened back to f32. The result
// carries bf16's 8 significant bits: a relative error of up to 2^-8 per element, plus one rounding per
// rank summed (docs/distributed.md). f64 gradients always reduce in f64. NCCL supports bf16; MPI
// (CPU tensors) does not, and refuses it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace engine::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = int64_t(25) << 20;  // upper bound of one bucket (a larger parameter gets its own)
  int accumulation_steps = 1;                // micro-steps per optimizer step
  bool overlap = true;                       // all-reduce buckets during the backward
  Dtype reduce_dtype = Dtype::f32;           // f32, or bf16: f32 gradients travel and sum in bf16
};

class DataParallel {
 public:
  DataParallel(Communicator& comm, std::vector<Tensor> parameters, DataParallelOptions options = {});
  ~DataParallel();
  // The gradient-ready hooks point at this object.
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Counts one micro-step; on the last of accumulation_steps averages the gradients across ranks
  // and returns true (time to step the optimizer), else leaves them to accumulate and returns false.
  bool reduce_gradients();

  Communicator& communicator() const { return comm_; }
  int64_t bucket_count() const { return int64_t(buckets_.size()); }
  // Buckets whose all-reduce the last backward started before it ended (for tests and tuning).
  int64_t buckets_started_in_backward() const { return started_in_backward_; }
  const DataParallelOptions& options() const { return options_; }

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into parameters_
    Tensor flat;                   // [sum of members' numel]
    int64_t waiting = 0;           // members whose gradient is not in `flat` yet
    std::unique_ptr<PendingCollective> pending;
  };
  struct Slot {
    int64_t bucket = 0, offset = 0;  // where the parameter's gradient sits in a bucket's flat
    bool copied = false;             // already in the bucket this step
    int64_t hook = -1;               // gradient-ready hook id
  };
  bool last_micro_step() const { return micro_step_ + 1 == options_.accumulation_steps; }
  void on_gradient_ready(int64_t index);
  void copy_into_bucket(int64_t index);
  void start_ready_buckets();
  void finish_bucket(Bucket& bucket);

  Communicator& comm_;
  std::vector<Tensor> parameters_;
  DataParallelOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<Slot> slots_;     // one per parameter
  size_t next_to_start_ = 0;    // buckets start in order: [0, next_to_start_) have started this step
  int64_t started_in_backward_ = 0;
  int micro_step_ = 0;
};

}  // namespace engine::dist
