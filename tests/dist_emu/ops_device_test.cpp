// Ops on a CUDA tensor run on that tensor's GPU whatever device is current (each op's CUDA branch
// holds a DeviceGuard): the small MLP of tests/common/data_parallel_checks.h, forward and backward
// on emulated GPU 1 while GPU 0 is current, against the CPU. The emulator would refuse any kernel
// that ran on GPU 0 with GPU 1's memory. Here because this test program links the ops' emulated
// kernels and starts with two emulated GPUs.
#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

#include "common/data_parallel_checks.h"
#include "engine/tensor.h"

#include "engine/cuda/device_guard.h"
#include "engine/cuda/init.h"
#include "engine/emu/devices.h"

using engine::Device;
using engine::Tensor;

TEST_CASE("ops run on their tensors' GPU, not the current one") {
  setenv("ENGINE_EMU_DEVICES", "2", /*overwrite=*/0);
  engine::cuda::init();
  if (engine::emu::device_count() < 2) return;
  const engine::cuda::DeviceGuard current(Device::cuda(0));
  const Device gpu1 = Device::cuda(1);
  data_parallel_checks::Mlp on_gpu(3, gpu1), on_cpu(3);
  engine::Generator gen(4);
  const Tensor x = Tensor::randn({6, data_parallel_checks::kInputs}, gen);
  const Tensor targets = Tensor::randn({6, data_parallel_checks::kOutputs}, gen);
  const Tensor loss_gpu = on_gpu.loss(x.to(gpu1), targets.to(gpu1));
  const Tensor loss_cpu = on_cpu.loss(x, targets);
  CHECK(loss_gpu.device() == gpu1);
  loss_gpu.backward();
  loss_cpu.backward();
  CHECK(engine::cuda::current_device() == 0);
  CHECK(loss_gpu.to(Device::cpu()).item() == doctest::Approx(loss_cpu.item()).epsilon(1e-5));
  std::vector<Tensor> grads_gpu, grads_cpu;
  for (const Tensor& p : on_gpu.parameters()) grads_gpu.push_back(p.grad());
  for (const Tensor& p : on_cpu.parameters()) grads_cpu.push_back(p.grad());
  data_parallel_checks::check_close(grads_gpu, grads_cpu, 1e-5);
}
