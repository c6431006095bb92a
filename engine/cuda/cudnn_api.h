// cuDNN for the code that calls it (ops/cuda/attention_cudnn.cpp): the toolkit's <cudnn.h> in the
// real build, the emulator's backend subset engine/emu/cudnn_api.h in the emulated one
// (ENGINE_CUDA_EMU defined), beside engine/cuda/cuda_api.h so that only its callers include it.
#pragma once

#include "engine/cuda/cuda_api.h"

#if defined(ENGINE_CUDA_EMU)
#include "engine/emu/cudnn_api.h"
#else
#include <cudnn.h>
#endif
