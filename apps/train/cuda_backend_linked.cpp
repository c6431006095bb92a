// init_cuda_backend (apps/train/device_link.h) in a program that links a CUDA backend: the real one
// (engine_cuda) or the kernel emulator (engine_cuda_emu); both answer to engine/cuda/init.h.
#include "apps/train/device_link.h"
#include "engine/cuda/init.h"

namespace apps::train {

bool init_cuda_backend() {
  engine::cuda::init();
  return engine::cuda::is_emulated();
}

}  // namespace apps::train
