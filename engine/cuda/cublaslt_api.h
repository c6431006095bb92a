// cuBLASLt for the code that calls it (ops/cuda/gemm.cu): the toolkit's <cublasLt.h> in the real
// build, the emulator's engine/emu/cublaslt_api.h in the emulated one (ENGINE_CUDA_EMU defined),
// beside engine/cuda/cuda_api.h (the runtime and cuBLAS) so that only its callers include it.
#pragma once

#include "engine/cuda/cuda_api.h"

#if defined(ENGINE_CUDA_EMU)
#include "engine/emu/cublaslt_api.h"
#else
#include <cublasLt.h>
#endif
