// --device and --precision: the CUDA backend initialised when linked in (real or emulated), each
// rank's GPU chosen, TF32 and the precision of the matrix products set and said; NCCL for the
// gradients of a multi-GPU job.
#include "apps/train/device_setup.h"

#include <cstdio>

#include "engine/dist/rank_agreement.h"
#include "engine/error.h"
#include "ops/attention.h"
#include "ops/cuda_kernels.h"
#include "ops/precision.h"

#if APPS_CUDA_BACKEND
#include "engine/cuda/init.h"
#endif
#if APPS_NCCL
#include "engine/dist/device_select.h"
#include "engine/dist/nccl_communicator.h"
#endif

namespace train {

namespace {

// "cpu", "cuda" or "cuda:N"; anything else is refused naming the option.
engine::Device parse_device(const std::string& name) {
  if (name == "cpu") return engine::Device::cpu();
  if (name == "cuda") return engine::Device::cuda(0);
  if (name.starts_with("cuda:") && name.size() > 5 && name.find_first_not_of("0123456789", 5) == std::string::npos &&
      name.size() < 9)
    return engine::Device::cuda(std::stoi(name.substr(5)));
  throw engine::Error("--device must be cpu, cuda or cuda:N, got '" + name + "'");
}

}  // namespace

engine::Device setup_device(const char* app, const DeviceSettings& settings, engine::dist::Communicator* ranks) {
  engine::Device device = parse_device(settings.device);
  if (ranks != nullptr && ranks->world_size() > 1) {
    // Before the GPU choice, a collective that only "cuda" ranks would enter: ranks launched with
    // different devices would hang in it. "cuda:N" may differ between ranks, the rest may not.
    const std::string kind = device.is_cpu()           ? "cpu"
                             : settings.device == "cuda" ? "cuda (each rank's GPU chosen by local rank)"
                                                         : "cuda:N (each rank's GPU named by its --device)";
    engine::dist::check_ranks_agree(*ranks,
                                    {{"--device", kind},
                                     {"--precision", settings.precision},
                                     {"--tf32", settings.tf32 ? "1" : "0"}},
                                    "device settings");
  }
  const ops::Precision precision = ops::parse_precision(settings.precision);
  if (device.is_cpu()) {
    ops::set_precision(precision);
    std::printf("%s: matrix products in %s\n", app, ops::precision_description(precision).c_str());
    return device;
  }
#if APPS_CUDA_BACKEND
  engine::cuda::init();
  if (ranks != nullptr && ranks->world_size() > 1 && settings.device == "cuda") {
#if APPS_NCCL
    device = engine::Device::cuda(engine::dist::select_cuda_device(*ranks));
#else
    throw engine::Error("--device cuda on several ranks needs NCCL, which this build lacks");
#endif
  }
  ops::cuda::set_allow_tf32(settings.tf32);
  ops::set_precision(precision);
  const bool cudnn_attention = ops::cudnn_attention_requested();
  std::printf("%s: device %s%s, TF32 for f32 GEMMs %s, matrix products in %s, attention on %s%s\n", app,
              device.str().c_str(), engine::cuda::is_emulated() ? " (kernel emulator)" : "",
              settings.tf32 ? "on (--tf32 0 turns it off)" : "off",
              precision == ops::Precision::bf16 ? "bf16 (bf16 operands, f32 sums, on cuBLASLt)" : "fp32",
              cudnn_attention ? "cuDNN (bf16 inputs; --attention kernel for the f32 kernel)" : "the f32 kernel",
              cudnn_attention && ops::attention_fallback() ? ", falling back to the kernel where cuDNN fails" : "");
  return device;
#else
  throw engine::Error("--device cuda needs the CUDA backend, which this build lacks; configure with -DENGINE_CUDA=ON");
#endif
}

std::unique_ptr<engine::dist::Communicator> gradient_communicator(engine::dist::Communicator& ranks,
                                                                  engine::Device device) {
  if (device.is_cpu() || ranks.world_size() == 1) return nullptr;
#if APPS_NCCL
  engine::dist::NcclOptions options;
  options.device = device.index;
  auto nccl = std::make_unique<engine::dist::NcclCommunicator>(ranks, options);
  std::printf("gradients all-reduced over NCCL on %d ranks\n", nccl->world_size());
  return nccl;
#else
  throw engine::Error("a multi-rank job on " + device.str() + " needs NCCL, which this build lacks");
#endif
}

}  // namespace train
