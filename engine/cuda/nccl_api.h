// The one include for code that calls NCCL: the real library in the CUDA build, the emulated NCCL
// (engine/emu/nccl_api.h, ranks are MPI processes) in the emulated build (ENGINE_CUDA_EMU).
#pragma once

#if defined(ENGINE_CUDA_EMU)
#include "engine/emu/nccl_api.h"
#else
#include <nccl.h>
#endif
