// Entry point of the CUDA backend. Programs that may use CUDA tensors call engine::cuda::init()
// once: it checks for a usable device and registers the backend for DeviceType::cuda. Linked
// against engine_cuda_emu instead of engine_cuda, the same call installs the kernel emulator, and
// CUDA tensors live in tracked host memory.
#pragma once

#include <string>

namespace engine::cuda {

// Registers the CUDA backend. Throws engine::Error("CUDA requested but no usable GPU: ...") when
// no device or driver can be used. Calling it again is harmless.
void init();
// Whether init() would succeed; when not, `reason` (if given) says why.
bool available(std::string* reason = nullptr);
// True when this program is linked with the emulator (engine_cuda_emu).
bool is_emulated();

}  // namespace engine::cuda
