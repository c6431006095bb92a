// Where an app computes: the --device option of every training and evaluation app, and the
// numeric settings that go with a device (TF32 for f32 GEMMs on GPUs; a precision setting belongs
// here too).
//
// "cuda" needs a CUDA backend linked into the program: the real one (engine_cuda, built with
// -DENGINE_CUDA=ON) or the kernel emulator (engine_cuda_emu, in the *_emu builds of the apps that
// the `emu` tests run). The sources are the same; the build defines APPS_CUDA_BACKEND when either is
// linked.
#pragma once

#include <string>

#include "engine/device.h"

namespace train {

struct DeviceSettings {
  std::string device = "cpu";  // "cpu" or "cuda" ("cuda:N" for GPU N)
  bool tf32 = true;            // f32 GEMMs on TF32 tensor cores (GPUs only)
};

// Readies the device `settings` name (initialises the CUDA backend, sets TF32) and returns it.
// For CUDA prints one line saying which device and whether TF32 is on; `app` starts errors and that line.
engine::Device setup_device(const char* app, const DeviceSettings& settings);

}  // namespace train
