// One test body for bf16 on a CUDA backend, run by test_emu (the kernel emulator) and test_gpu (a
// real GPU): conversions to and from bf16 (Tensor::to(Dtype) and copy_, through the backend's copy
// kernel), bf16 fills, and the cast's backward with bf16 gradient accumulation, each compared with
// the CPU backend bit for bit (both devices round by engine/bfloat16.h). Destinations are poisoned
// first, so an element a kernel forgets shows up.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "common/bf16_reference.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace cast_checks {

using backend_checks::kCuda;
using backend_checks::kNaN;
using engine::Dtype;
using engine::Tensor;

// The bytes of a tensor's elements in row-major order, read back to the host.
inline std::string element_bytes(const Tensor& t) {
  const Tensor host = t.to(engine::Device::cpu()).contiguous();
  std::string bytes(size_t(host.numel()) * engine::dtype_size(host.dtype()), '\0');
  if (!bytes.empty()) std::memcpy(bytes.data(), host.raw_data(), bytes.size());
  return bytes;
}

// Fresh random values over many magnitudes with every rounding edge case among them, as f64.
inline std::vector<double> test_values(engine::Generator& gen, int64_t n) {
  std::vector<double> values = bf16_reference::special_values();
  const std::vector<double> noise = Tensor::randn({n - int64_t(values.size())}, gen, Dtype::f64).to_vector<double>();
  for (size_t i = 0; i < noise.size(); ++i) values.push_back(noise[i] * std::ldexp(1.0, int(i % 281) - 140));
  return values;
}

// Every conversion into and out of bf16, into a poisoned strided destination with broadcasting.
inline void check_conversions(engine::Generator& gen) {
  const int64_t n = 6 * 1031;  // not a multiple of the block size
  const std::vector<double> values = test_values(gen, n);
  for (Dtype src_dtype : {Dtype::f32, Dtype::f64, Dtype::bf16, Dtype::i32, Dtype::i64})
    for (Dtype dst_dtype : {Dtype::f32, Dtype::f64, Dtype::bf16, Dtype::i32, Dtype::i64}) {
      if (src_dtype != Dtype::bf16 && dst_dtype != Dtype::bf16) continue;  // backend_checks covers these
      CAPTURE(engine::dtype_name(src_dtype));
      CAPTURE(engine::dtype_name(dst_dtype));
      // Integers take the finite values in i32 range; out-of-range float -> integer is undefined.
      std::vector<double> source = values;
      if (src_dtype == Dtype::i32 || src_dtype == Dtype::i64 || dst_dtype == Dtype::i32 || dst_dtype == Dtype::i64)
        for (double& v : source) v = std::isfinite(v) ? std::fmod(v, 1e9) : 7.0;
      const Tensor src_cpu = Tensor::from_vector(source, {6, 1, 1031}, src_dtype);
      const Tensor src_cuda = src_cpu.to(kCuda);
      const double poison = engine::is_floating(dst_dtype) ? kNaN : -77.0;
      Tensor dst_cpu = Tensor::full({6, 2, 1033}, poison, dst_dtype);
      Tensor dst_cuda = Tensor::full({6, 2, 1033}, poison, dst_dtype, kCuda);
      dst_cpu.narrow(2, 1, 1031).copy_(src_cpu);
      dst_cuda.narrow(2, 1, 1031).copy_(src_cuda);
      CHECK(element_bytes(dst_cuda) == element_bytes(dst_cpu));
      // Tensor::to(Dtype) from a non-contiguous view.
      const Tensor view_cpu = src_cpu.transpose(0, 2), view_cuda = src_cuda.transpose(0, 2);
      CHECK(element_bytes(view_cuda.to(dst_dtype)) == element_bytes(view_cpu.to(dst_dtype)));
    }
  // And the device against the reference, so that the comparisons above anchor on the right rule.
  const Tensor rounded = Tensor::from_vector(values, {n}, Dtype::f64).to(kCuda).to(Dtype::bf16);
  const std::string bytes = element_bytes(rounded);
  std::vector<uint16_t> patterns(static_cast<size_t>(n));
  std::memcpy(patterns.data(), bytes.data(), bytes.size());
  int mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) mismatches += patterns[i] != bf16_reference::nearest_bf16(values[i]);
  CHECK(mismatches == 0);
}

// fill and random fill of bf16 tensors, through strides.
inline void check_fills() {
  Tensor cpu = Tensor::full({9, 7}, kNaN, Dtype::bf16), cuda = Tensor::full({9, 7}, kNaN, Dtype::bf16, kCuda);
  cpu.transpose(0, 1).narrow(0, 2, 3).fill_(1.0 + 3 * 0x1p-8);
  cuda.transpose(0, 1).narrow(0, 2, 3).fill_(1.0 + 3 * 0x1p-8);
  CHECK(element_bytes(cuda) == element_bytes(cpu));
  engine::Generator gen_cpu(77), gen_cuda(77);
  CHECK(element_bytes(Tensor::randn({1031}, gen_cuda, Dtype::bf16, kCuda)) ==
        element_bytes(Tensor::randn({1031}, gen_cpu, Dtype::bf16)));
}

// The cast's backward on the device: the gradient cast back, accumulated in bf16 through a
// broadcast (sum_to) and a second use (add_into), as on the CPU.
inline void check_cast_backward(engine::Generator& gen) {
  const Tensor leaf_values = Tensor::randn({33, 1}, gen).to(Dtype::bf16);
  const Tensor seed = Tensor::randn({33, 65}, gen, Dtype::f64), seed2 = Tensor::randn({33, 1}, gen);
  std::string grads[2];
  for (int device = 0; device < 2; ++device) {
    const engine::Device where = device == 0 ? engine::Device::cpu() : kCuda;
    const Tensor leaf = leaf_values.to(where).detach().requires_grad_();
    leaf.expand({33, 65}).to(Dtype::f64).backward(seed.to(where));
    leaf.to(Dtype::f32).backward(seed2.to(where));
    REQUIRE(leaf.grad().dtype() == Dtype::bf16);
    grads[device] = element_bytes(leaf.grad());
  }
  CHECK(grads[1] == grads[0]);
}

}  // namespace cast_checks
