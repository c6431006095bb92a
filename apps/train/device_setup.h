// Where and how an app computes: the --device and --precision options of every training and
// evaluation app, and the numeric settings that go with a device (TF32 for f32 GEMMs on GPUs).
//
// "cuda" needs a CUDA backend linked into the program: the real one (engine_cuda, built with
// -DENGINE_CUDA=ON) or the kernel emulator (engine_cuda_emu, in the *_emu builds of the apps that
// the `emu` tests run). device_setup.cpp is compiled once; the program links what it reaches of the
// CUDA backend and NCCL, or the versions that refuse (apps/train/device_link.h; apps/CMakeLists.txt:
// DEVICE_SETUP or DEVICE_SETUP_EMU).
#pragma once

#include <memory>
#include <string>

#include "engine/device.h"
#include "engine/dist/communicator.h"

namespace apps::train {

struct DeviceSettings {
  std::string device = "cpu";  // "cpu" or "cuda" ("cuda:N" for GPU N)
  bool tf32 = true;            // f32 GEMMs on TF32 tensor cores (GPUs only)
  std::string precision = "fp32";  // "fp32" or "bf16" matrix products (ops/precision.h)
};

// Readies the device `settings` name (initialises the CUDA backend, sets TF32, sets the process's
// precision) and returns it. Prints one line saying what runs the matrix products (for CUDA: which
// device, whether TF32 is on and the precision); `app` starts that line.
// With `ranks` of a multi-rank job, every rank must name the same kind of device, precision and
// TF32 setting (checked first, naming the field that differs), and "cuda" is this rank's GPU, chosen
// over them before any CUDA tensor exists (engine/dist/device_select.h: a collective, so every rank
// calls it).
engine::Device setup_device(const char* app, const DeviceSettings& settings,
                            engine::dist::Communicator* ranks = nullptr);

// The communicator of the gradients' all-reduce when `ranks` train on GPUs (`device`, each rank its
// own): NCCL (engine/dist/nccl_communicator.h, bootstrapped over `ranks`); null on the CPU or on one
// rank, where `ranks` serves. A collective: every rank calls it.
std::unique_ptr<engine::dist::Communicator> gradient_communicator(engine::dist::Communicator& ranks,
                                                                  engine::Device device);

}  // namespace apps::train
