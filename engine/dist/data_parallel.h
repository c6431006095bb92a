// DataParallel: one model replica per rank, gradients averaged across ranks (PyTorch DDP, llm.c).
//
//   dist::DataParallel ddp(comm, model.parameters(), {.bucket_bytes = 25 << 20, .accumulation_steps = 4});
//   for each micro-step: loss = model(rank's shard) / accumulation_steps; loss.backward();
//                        if (ddp.reduce_gradients()) { optimizer.step(); optimizer.zero_grad(); }
//
// The constructor broadcasts every parameter from rank 0, so all replicas start identical. After
// the last micro-step's backward, reduce_gradients() copies the gradients into flat buckets of at
// most bucket_bytes (parameters in reverse registration order, the order backward produces them;
// one bucket per dtype run), averages each bucket across ranks with one all-reduce and copies the
// result back into the gradients. The buckets are allocated once.
//
// Each rank's loss must be the mean over its own shard; with equal shards the averaged gradient is
// the gradient of the mean over the combined batch.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace engine::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = int64_t(25) << 20;  // upper bound of one bucket (a larger parameter gets its own)
  int accumulation_steps = 1;                // micro-steps per optimizer step
};

class DataParallel {
 public:
  DataParallel(Communicator& comm, std::vector<Tensor> parameters, DataParallelOptions options = {});

  // Counts one micro-step; on the last of accumulation_steps averages the gradients across ranks
  // and returns true (time to step the optimizer), else leaves them to accumulate and returns false.
  bool reduce_gradients();

  Communicator& communicator() const { return comm_; }
  int64_t bucket_count() const { return int64_t(buckets_.size()); }
  const DataParallelOptions& options() const { return options_; }

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into parameters_
    Tensor flat;                   // [sum of members' numel]
  };
  void average_bucket(Bucket& bucket);

  Communicator& comm_;
  std::vector<Tensor> parameters_;
  DataParallelOptions options_;
  std::vector<Bucket> buckets_;
  int micro_step_ = 0;
};

}  // namespace engine::dist
