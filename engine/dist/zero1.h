// Zero1DataParallel: data parallelism with the optimizer state sharded across ranks (ZeRO stage 1).
//
// Each parameter group becomes one flat vector of its parameters [N, padded to W*S]; rank r owns
// elements [r*S, (r+1)*S) as a shard tensor [S] that the optimizer updates, so each rank keeps
// optimizer state (AdamW's moments) for 1/W of the parameters. Per step:
//
//   Zero1DataParallel zero(comm, weight_decay_groups(model.named_parameters(), lr, wd));
//   optim::AdamW optimizer(zero.shard_groups());
//   for each micro-step: loss.backward();
//                        if (zero.reduce_gradients()) {
//                          optimizer.step(); optimizer.zero_grad(); zero.gather_parameters();
//                        }
//
// reduce_gradients() reduce-scatters the mean gradient into the shards' .grad and drops the
// parameters' own gradients; gather_parameters() all-gathers the updated shards into the
// parameters. An element-wise optimizer (AdamW, SGD) then follows the unsharded trajectory exactly;
// anything needing all gradients at once (global-norm clipping) would need one more all-reduce.
//
// Legend: N elements of a group's parameters, W world size, S = ceil(N / W) shard elements.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/optim/optimizer.h"

namespace engine::dist {

class Zero1DataParallel {
 public:
  // Broadcasts every parameter from rank 0 and builds this rank's shards.
  Zero1DataParallel(Communicator& comm, std::vector<optim::ParamGroup> groups, int accumulation_steps = 1);

  // One group per parameter group, with its lr and weight decay, holding this rank's shard
  // ("group<i>.shard"): what the optimizer is built on.
  std::vector<optim::ParamGroup> shard_groups() const;

  // Counts one micro-step; on the last of accumulation_steps reduce-scatters the mean gradient
  // into the shards and returns true (time to step the optimizer).
  bool reduce_gradients();
  // After the optimizer step: parameters <- all-gathered shards.
  void gather_parameters();

 private:
  struct FlatGroup {
    optim::ParamGroup group;
    Tensor flat_params, flat_grads;  // [W*S]
    Tensor shard;                    // [S], a leaf the optimizer updates
    Tensor shard_grad;               // [S], the shard's gradient (the optimizer's zero_grad drops the reference)
  };
  Communicator& comm_;
  std::vector<FlatGroup> groups_;
  int accumulation_steps_;
  int micro_step_ = 0;
};

}  // namespace engine::dist
