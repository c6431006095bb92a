// --device: the CUDA backend initialised when linked in (real or emulated), TF32 set and said.
#include "apps/train/device_setup.h"

#include <cstdio>

#include "engine/error.h"

#if APPS_CUDA_BACKEND
#include "engine/cuda/init.h"
#include "ops/cuda/gemm.h"
#endif

namespace train {

namespace {

// "cpu", "cuda" or "cuda:N"; anything else is refused naming the option.
engine::Device parse_device(const char* app, const std::string& name) {
  if (name == "cpu") return engine::Device::cpu();
  if (name == "cuda") return engine::Device::cuda(0);
  if (name.starts_with("cuda:") && name.size() > 5 && name.find_first_not_of("0123456789", 5) == std::string::npos &&
      name.size() < 9)
    return engine::Device::cuda(std::stoi(name.substr(5)));
  throw engine::Error(std::string(app) + ": --device must be cpu, cuda or cuda:N, got '" + name + "'");
}

}  // namespace

engine::Device setup_device(const char* app, const DeviceSettings& settings) {
  const engine::Device device = parse_device(app, settings.device);
  if (device.is_cpu()) return device;
#if APPS_CUDA_BACKEND
  engine::cuda::init();
  ops::cuda::set_allow_tf32(settings.tf32);
  std::printf("%s: device %s%s, TF32 for f32 GEMMs %s\n", app, device.str().c_str(),
              engine::cuda::is_emulated() ? " (kernel emulator)" : "",
              settings.tf32 ? "on (--tf32 0 turns it off)" : "off");
  return device;
#else
  throw engine::Error(std::string(app) + ": --device cuda needs the CUDA backend, which this build lacks; "
                                        "configure with -DENGINE_CUDA=ON");
#endif
}

}  // namespace train
