// --device and --precision: the CUDA backend initialised when linked in (real or emulated), each
// rank's GPU chosen, TF32 and the precision of the matrix products set and said; NCCL for the
// gradients of a multi-GPU job. Compiled once: what the program links (a CUDA backend, NCCL) is
// reached through apps/train/device_link.h.
#include "apps/train/device_setup.h"

#include <cstdio>

#include "apps/train/device_link.h"
#include "engine/dist/rank_agreement.h"
#include "engine/error.h"
#include "ops/attention.h"
#include "ops/cuda_kernels.h"
#include "ops/precision.h"

namespace apps::train {

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
  const bool emulated = init_cuda_backend();
  if (ranks != nullptr && ranks->world_size() > 1 && settings.device == "cuda")
    device = engine::Device::cuda(select_rank_gpu(*ranks));
  ops::cuda::set_allow_tf32(settings.tf32);
  ops::set_precision(precision);
  const bool cudnn_attention = ops::cudnn_attention_requested();
  std::printf("%s: device %s%s, TF32 for f32 GEMMs %s, matrix products in %s, attention on %s%s\n", app,
              device.str().c_str(), emulated ? " (kernel emulator)" : "",
              settings.tf32 ? "on (--tf32 0 turns it off)" : "off",
              precision == ops::Precision::bf16 ? "bf16 (bf16 operands, f32 sums, on cuBLASLt)" : "fp32",
              cudnn_attention ? "cuDNN (bf16 inputs; --attention kernel for the f32 kernel)" : "the f32 kernel",
              cudnn_attention && ops::attention_fallback() ? ", falling back to the kernel where cuDNN fails" : "");
  return device;
}

std::unique_ptr<engine::dist::Communicator> gradient_communicator(engine::dist::Communicator& ranks,
                                                                  engine::Device device) {
  if (device.is_cpu() || ranks.world_size() == 1) return nullptr;
  return nccl_communicator(ranks, device);
}

}  // namespace apps::train
