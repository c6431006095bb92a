// The emulated GPUs of this process: how many there are (ENGINE_EMU_DEVICES, default 1) and which
// one each host thread is using (cudaSetDevice), as the CUDA runtime keeps it.
//
// Every allocation belongs to the device that was current when it was made (device_memory.h); a
// kernel launch, copy, memset or cuBLAS call that touches memory of another device is refused, as it
// would read the wrong GPU's memory or fault on hardware. Each emulated device has a UUID derived
// from the host name and its index, so two processes of one machine that pick the same device
// index are seen to share one GPU (engine/dist/device_select.h refuses that).
#pragma once

#include <array>
#include <cstdint>

namespace engine::emu {

// ENGINE_EMU_DEVICES, read once: 1 to 16 emulated devices (an invalid value throws engine::Error).
int device_count();
// The calling host thread's current device (0 until set).
int current_device();
// Throws engine::Error for an index outside [0, device_count()).
void set_current_device(int device);
// 16 bytes naming device `device` of this machine, the same in every process on it.
std::array<uint8_t, 16> device_uuid(int device);

}  // namespace engine::emu
