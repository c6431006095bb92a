// init_cuda_backend (apps/train/device_link.h) in a program built without CUDA: --device cuda is
// refused, saying how to get it.
#include "apps/train/device_link.h"
#include "engine/error.h"

namespace apps::train {

bool init_cuda_backend() {
  throw engine::Error("--device cuda needs the CUDA backend, which this build lacks; configure with -DENGINE_CUDA=ON");
}

}  // namespace apps::train
