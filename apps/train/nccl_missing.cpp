// select_rank_gpu and nccl_communicator (apps/train/device_link.h) in a program without NCCL: a
// multi-rank job on GPUs is refused.
#include "apps/train/device_link.h"
#include "engine/error.h"

namespace apps::train {

int select_rank_gpu(engine::dist::Communicator& /*ranks*/) {
  throw engine::Error("--device cuda on several ranks needs NCCL, which this build lacks");
}

std::unique_ptr<engine::dist::Communicator> nccl_communicator(engine::dist::Communicator& /*ranks*/,
                                                              engine::Device device) {
  throw engine::Error("a multi-rank job on " + device.str() + " needs NCCL, which this build lacks");
}

}  // namespace apps::train
