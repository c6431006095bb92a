// What the device set-up (device_setup.cpp, compiled once) needs from the CUDA backend and from
// NCCL, which a program may or may not link. Each pair below is one declaration with two
// implementations, and a program links one of each (apps/CMakeLists.txt), as it links one
// implementation of the ops' CUDA kernels:
//   cuda_backend_linked.cpp   the CUDA backend the program links: engine_cuda, or engine_cuda_emu
//                             (the kernel emulator)
//   cuda_backend_missing.cpp  none: --device cuda is refused, saying how to build with CUDA
//   nccl_linked.cpp           NCCL: engine_dist_nccl, or engine_dist_nccl_emu (emulated, over MPI)
//   nccl_missing.cpp          none: a multi-rank job on GPUs is refused
#pragma once

#include <memory>

#include "engine/device.h"
#include "engine/dist/communicator.h"

namespace apps::train {

// Initialises the CUDA backend (engine/cuda/init.h) and returns whether it is the kernel emulator.
bool init_cuda_backend();

// This rank's GPU, chosen over `ranks` by local rank (engine/dist/device_select.h). A collective.
int select_rank_gpu(engine::dist::Communicator& ranks);

// The NCCL communicator over `ranks`, this rank on GPU `device`, bootstrapped over `ranks`. A
// collective.
std::unique_ptr<engine::dist::Communicator> nccl_communicator(engine::dist::Communicator& ranks,
                                                              engine::Device device);

}  // namespace apps::train
