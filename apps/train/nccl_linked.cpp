// select_rank_gpu and nccl_communicator (apps/train/device_link.h) in a program that links NCCL: the
// real one (engine_dist_nccl) or the emulated one over MPI (engine_dist_nccl_emu).
#include <cstdio>

#include "apps/train/device_link.h"
#include "engine/dist/device_select.h"
#include "engine/dist/nccl_communicator.h"

namespace apps::train {

int select_rank_gpu(engine::dist::Communicator& ranks) { return engine::dist::select_cuda_device(ranks); }

std::unique_ptr<engine::dist::Communicator> nccl_communicator(engine::dist::Communicator& ranks,
                                                              engine::Device device) {
  engine::dist::NcclOptions options;
  options.device = device.index;
  auto nccl = std::make_unique<engine::dist::NcclCommunicator>(ranks, options);
  std::printf("gradients all-reduced over NCCL on %d ranks\n", nccl->world_size());
  return nccl;
}

}  // namespace apps::train
