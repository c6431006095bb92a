// One test body for the optimizers and gradient clipping on CUDA, run on whichever CUDA backend the
// test program links (the emulator in test_emu, a real GPU in test_gpu): the same optimizer on CPU
// parameters and on their CUDA copies, fed the same random gradients, must follow the same
// trajectory step by step. Parameters of odd sizes (not multiples of the 256-thread blocks or of
// the 65536-element chunks, one of them empty, one spanning several chunks) share each launch, and
// a list of more tensors than one kernel-argument table holds takes several launches.
//
// Tolerance per step, on parameters and buffers: f32 relative error < 1e-6 (the same arithmetic in
// the same order on both devices; a GPU compiler may contract a multiply-add, one rounding of
// difference per step, ~6e-8, over a few steps); f64 < 1e-12. Norms are sums in double in
// different orders: relative 1e-12.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/backend.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/sgd.h"
#include "engine/rng.h"

namespace optim_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;
using engine::optim::NamedTensors;
using engine::optim::ParamGroup;

inline double tolerance(Dtype dtype) { return dtype == Dtype::f32 ? 1e-6 : 1e-12; }

// Element counts of the test parameters: odd sizes, an empty one, one over a 65536-element chunk;
// with `many`, 40 more small ones (more than the 36 tensors an AdamW table holds).
inline std::vector<int64_t> parameter_sizes(bool many) {
  std::vector<int64_t> sizes{257, 1, 0, 70001, 3 * 67, 1000};
  if (many)
    for (int64_t i = 0; i < 40; ++i) sizes.push_back(5 + 3 * i);
  return sizes;
}

// The same random parameters on the CPU and on CUDA, as two groups (with different lr and
// weight_decay) for each device.
struct Parameters {
  std::vector<Tensor> cpu, cuda;

  Parameters(const std::vector<int64_t>& sizes, Dtype dtype, engine::Generator& gen) {
    for (int64_t n : sizes) {
      Tensor p = Tensor::randn({n}, gen, dtype);
      Tensor q = p.to(kCuda);
      p.requires_grad_();
      q.requires_grad_();
      cpu.push_back(p);
      cuda.push_back(q);
    }
  }
  std::vector<ParamGroup> groups(bool on_cuda) const {
    const std::vector<Tensor>& params = on_cuda ? cuda : cpu;
    NamedTensors first, second;
    for (size_t i = 0; i < params.size(); ++i)
      (i % 2 ? second : first).emplace_back(engine::detail::concat("p", i), params[i]);
    return {ParamGroup{first, 0.01, 0.1}, ParamGroup{second, 0.03, 0.0}};
  }
  // Fresh random gradients, the same on both devices; parameter `skipped` gets none this step.
  void set_random_grads(engine::Generator& gen, size_t skipped) {
    for (size_t i = 0; i < cpu.size(); ++i) {
      if (i == skipped) {
        cpu[i].impl_ptr()->grad.reset();
        cuda[i].impl_ptr()->grad.reset();
        continue;
      }
      Tensor g = Tensor::randn(cpu[i].shape(), gen, cpu[i].dtype());
      cpu[i].set_grad(g);
      cuda[i].set_grad(g.to(kCuda));
    }
  }
};

// Compares every parameter and optimizer buffer of the two devices.
inline void check_same_state(const Parameters& params, const engine::optim::Optimizer& on_cpu,
                             const engine::optim::Optimizer& on_cuda, Dtype dtype) {
  for (size_t i = 0; i < params.cpu.size(); ++i) {
    CAPTURE(i);
    CHECK(relative_error(params.cuda[i], params.cpu[i]) < tolerance(dtype));
  }
  const auto cpu_state = on_cpu.state_dict(), cuda_state = on_cuda.state_dict();
  for (const auto& [key, tensor] : cpu_state) {
    if (key == "step") continue;
    CAPTURE(key);
    CHECK(cuda_state.at(key).device() == kCuda);
    CHECK(relative_error(cuda_state.at(key), tensor) < tolerance(dtype));
  }
}

// Runs `steps` steps of the optimizer made by make(groups) on both devices, comparing after each.
// A different parameter goes without a gradient at each step. A CUDA step allocates no device memory.
template <typename MakeOptimizer>
void check_trajectory(Dtype dtype, bool many, engine::Generator& gen, MakeOptimizer make) {
  CAPTURE(engine::dtype_name(dtype));
  Parameters params(parameter_sizes(many), dtype, gen);
  auto on_cpu = make(params.groups(false));
  auto on_cuda = make(params.groups(true));
  engine::Allocator& device_memory = engine::backend_for(engine::DeviceType::cuda).allocator(0);
  for (size_t step = 0; step < 4; ++step) {
    CAPTURE(step);
    params.set_random_grads(gen, step);
    on_cpu.step();
    const uint64_t allocations = device_memory.stats().allocations;
    on_cuda.step();
    CHECK(device_memory.stats().allocations == allocations);
    check_same_state(params, on_cpu, on_cuda, dtype);
  }
}

inline void check_adamw(Dtype dtype, bool many, engine::Generator& gen) {
  using engine::optim::AdamW;
  check_trajectory(dtype, many, gen, [](std::vector<ParamGroup> groups) {
    return AdamW(std::move(groups), engine::optim::AdamWOptions{.beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6});
  });
}

inline void check_sgd(Dtype dtype, bool many, engine::Generator& gen) {
  using engine::optim::Sgd;
  using engine::optim::SgdOptions;
  for (const SgdOptions options :
       {SgdOptions{}, SgdOptions{.momentum = 0.9}, SgdOptions{.momentum = 0.8, .nesterov = true}}) {
    CAPTURE(options.momentum);
    CAPTURE(options.nesterov);
    check_trajectory(dtype, many, gen, [&](std::vector<ParamGroup> groups) { return Sgd(std::move(groups), options); });
  }
}

// clip_grad_norm over f32 and f64 gradients together: the same norm on both devices (and the same
// norm twice on CUDA: deterministic), gradients scaled alike when clipped, untouched otherwise.
inline void check_clip_grad_norm(bool many, engine::Generator& gen) {
  Parameters f32(parameter_sizes(many), Dtype::f32, gen);
  Parameters f64(parameter_sizes(false), Dtype::f64, gen);
  f32.set_random_grads(gen, 1);
  f64.set_random_grads(gen, 4);
  std::vector<Tensor> cpu = f32.cpu, cuda = f32.cuda;
  cpu.insert(cpu.begin() + 2, f64.cpu.begin(), f64.cpu.end());  // the dtypes interleaved
  cuda.insert(cuda.begin() + 2, f64.cuda.begin(), f64.cuda.end());
  auto check_grads = [&] {
    for (size_t i = 0; i < cpu.size(); ++i) {
      CAPTURE(i);
      if (!cpu[i].grad().defined()) continue;
      CHECK(relative_error(cuda[i].grad(), cpu[i].grad()) < tolerance(cpu[i].dtype()));
    }
  };

  const double norm = engine::optim::clip_grad_norm(cpu, 1e9).item();
  const double cuda_norm = engine::optim::clip_grad_norm(cuda, 1e9).item();
  CHECK(std::fabs(cuda_norm - norm) <= 1e-12 * norm);
  CHECK(engine::optim::clip_grad_norm(cuda, 1e9).item() == cuda_norm);
  check_grads();

  const double max_norm = 0.25 * norm;
  CHECK(engine::optim::clip_grad_norm(cpu, max_norm).item() == norm);
  CHECK(std::fabs(engine::optim::clip_grad_norm(cuda, max_norm).item() - norm) <= 1e-12 * norm);
  check_grads();
  CHECK(std::fabs(engine::optim::clip_grad_norm(cuda, 1e9).item() - max_norm) <= 1e-6 * max_norm);

  // Parameters without gradients have norm 0, on their device.
  std::vector<Tensor> no_grads{Tensor::zeros({3}, Dtype::f32, cuda[0].device())};
  const Tensor zero_norm = engine::optim::clip_grad_norm(no_grads, 1.0);
  CHECK(zero_norm.device() == cuda[0].device());
  CHECK(zero_norm.item() == 0.0);

  // The norm stays on the gradients' device (nothing is read back until the caller asks), and a NaN
  // gradient gives a NaN norm and leaves every gradient as it was, on both devices.
  std::vector<size_t> with_grad;  // the parameters that have a gradient
  for (size_t i = 0; i < cpu.size(); ++i)
    if (cpu[i].grad().defined()) with_grad.push_back(i);
  REQUIRE(with_grad.size() >= 2);
  const size_t poisoned = with_grad[0], kept = with_grad[1];
  CHECK(engine::optim::clip_grad_norm(cuda, 1e9).device() == cuda[kept].grad().device());
  cpu[poisoned].grad().fill_(std::nan(""));
  cuda[poisoned].grad().fill_(std::nan(""));
  const std::vector<double> cpu_before = cpu[kept].grad().to_vector<double>();
  const std::vector<double> cuda_before = cuda[kept].grad().to_vector<double>();
  CHECK(std::isnan(engine::optim::clip_grad_norm(cpu, max_norm).item()));
  CHECK(std::isnan(engine::optim::clip_grad_norm(cuda, max_norm).item()));
  CHECK(cpu[kept].grad().to_vector<double>() == cpu_before);
  CHECK(cuda[kept].grad().to_vector<double>() == cuda_before);
}

// A tensor of more chunks than one table holds (320) continues into the next launch: AdamW and
// the norm over one such tensor between two small ones. About 21M elements per tensor, too many
// for the emulator: run on real GPUs only.
inline void check_table_overflow(engine::Generator& gen) {
  const std::vector<int64_t> sizes{333, 321 * 65536 + 77, 1001};
  Parameters params(sizes, Dtype::f32, gen);
  engine::optim::AdamW on_cpu(params.groups(false)), on_cuda(params.groups(true));
  for (size_t step = 0; step < 2; ++step) {
    params.set_random_grads(gen, sizes.size());
    on_cpu.step();
    on_cuda.step();
    check_same_state(params, on_cpu, on_cuda, Dtype::f32);
  }
  const double norm = engine::optim::clip_grad_norm(params.cpu, 1e9).item();
  CHECK(std::fabs(engine::optim::clip_grad_norm(params.cuda, 1e9).item() - norm) <= 1e-12 * norm);
}

}  // namespace optim_checks
