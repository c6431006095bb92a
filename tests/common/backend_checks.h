// One test body for the CUDA backend's primitives, run on whichever CUDA backend the test program
// links (the emulator in test_emu, a real GPU in test_gpu) and compared with the CPU backend on fresh
// random inputs. Outputs are poisoned (NaN) first, so an element a kernel forgets shows up.
//
// Tolerance: f32 relative error < 1e-5 (one rounding per element, or a double-accumulated sum
// rounded once; the GPU's tree order differs from the CPU's only in double rounding).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace backend_checks {

using engine::Device;
using engine::Dtype;
using engine::Tensor;

inline const Device kCuda = Device::cuda();
inline const double kNaN = std::numeric_limits<double>::quiet_NaN();

// max |a - b| / max |b| over all elements (both read back to the host as double).
inline double relative_error(const Tensor& got, const Tensor& expected) {
  REQUIRE(got.shape() == expected.shape());
  const std::vector<double> a = got.to(Dtype::f64).to_vector<double>();
  const std::vector<double> b = expected.to(Dtype::f64).to_vector<double>();
  double max_err = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    max_err = std::max(max_err, std::fabs(a[i] - b[i]));
    max_ref = std::max(max_ref, std::fabs(b[i]));
  }
  return max_ref > 0.0 ? max_err / max_ref : max_err;
}

// A random tensor on the CPU and its copy on CUDA.
struct Pair {
  Tensor cpu, cuda;
};
inline Pair random_pair(const engine::Shape& shape, engine::Generator& gen, Dtype dtype = Dtype::f32) {
  Tensor cpu = Tensor::randn(shape, gen, dtype);
  return {cpu, cpu.to(kCuda)};
}
inline Pair poisoned_pair(const engine::Shape& shape, Dtype dtype = Dtype::f32) {
  return {Tensor::full(shape, kNaN, dtype), Tensor::full(shape, kNaN, dtype, kCuda)};
}

inline void check_round_trip(engine::Generator& gen) {
  Tensor x = Tensor::randn({3, 5, 7}, gen);
  Tensor on_device = x.to(kCuda);
  CHECK(on_device.device() == kCuda);
  CHECK(on_device.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  Tensor ids = Tensor::from_indices({4, -2, 9}, {3}, Dtype::i64, kCuda);
  CHECK(ids.to_vector<int64_t>() == std::vector<int64_t>{4, -2, 9});
  // A non-contiguous view is made contiguous on the device before the copy.
  CHECK(relative_error(x.to(kCuda).transpose(0, 2).to(Device::cpu()), x.transpose(0, 2).contiguous()) == 0.0);
}

inline void check_fill_and_copy(engine::Generator& gen) {
  engine::NoGradGuard no_grad;
  // fill into a non-contiguous view of a random tensor: untouched elements keep their values.
  Pair base = random_pair({6, 9}, gen, Dtype::f64);
  base.cpu.transpose(0, 1).narrow(0, 2, 4).fill_(-3.25);
  base.cuda.transpose(0, 1).narrow(0, 2, 4).fill_(-3.25);
  CHECK(relative_error(base.cuda, base.cpu) == 0.0);

  // copy with broadcasting and dtype conversion (including float -> integer truncation) into a
  // strided destination.
  std::vector<double> values(20);
  for (double& v : values) v = 20.0 * gen.uniform() - 10.0;
  for (Dtype src_dtype : {Dtype::f32, Dtype::f64, Dtype::i32, Dtype::i64})
    for (Dtype dst_dtype : {Dtype::f32, Dtype::f64, Dtype::i32, Dtype::i64}) {
      CAPTURE(engine::dtype_name(src_dtype));
      CAPTURE(engine::dtype_name(dst_dtype));
      Tensor src_cpu = Tensor::from_vector(values, {5, 1, 4}, src_dtype);
      Tensor src_cuda = src_cpu.to(kCuda);
      Pair dst{Tensor::full({3, 5, 7, 4}, -77.0, dst_dtype), Tensor::full({3, 5, 7, 4}, -77.0, dst_dtype, kCuda)};
      dst.cpu.narrow(2, 1, 6).copy_(src_cpu);
      dst.cuda.narrow(2, 1, 6).copy_(src_cuda);
      CHECK(relative_error(dst.cuda, dst.cpu) == 0.0);
    }
}

inline void check_add_into(engine::Generator& gen, Dtype dtype) {
  Pair dst = random_pair({4, 3, 5}, gen, dtype);
  Pair src = random_pair({3, 1}, gen, dtype);
  engine::backend_for(engine::DeviceType::cpu).add_into(dst.cpu.transpose(1, 2).narrow(1, 1, 4).transpose(1, 2),
                                                        src.cpu.narrow(1, 0, 1));
  engine::backend_for(engine::DeviceType::cuda).add_into(dst.cuda.transpose(1, 2).narrow(1, 1, 4).transpose(1, 2),
                                                         src.cuda.narrow(1, 0, 1));
  CHECK(relative_error(dst.cuda, dst.cpu) < 1e-5);
}

// Both reduction kernels: few summed elements per output (one thread each) and many (one block each).
inline void check_sum_to(engine::Generator& gen, Dtype dtype) {
  struct Case {
    engine::Shape src, dst;
  };
  for (const Case& c : {Case{{2, 3, 4}, {3, 1}}, Case{{5, 1, 7}, {7}}, Case{{300, 6}, {6}}, Case{{40, 9, 50}, {9, 1}},
                        Case{{3, 4}, {}}, Case{{4, 5, 6}, {4, 5, 6}}}) {
    CAPTURE(engine::shape_str(c.src));
    Pair src = random_pair(c.src, gen, dtype);
    Pair dst = poisoned_pair(c.dst, dtype);
    engine::backend_for(engine::DeviceType::cpu).sum_to(dst.cpu, src.cpu);
    engine::backend_for(engine::DeviceType::cuda).sum_to(dst.cuda, src.cuda);
    CHECK(relative_error(dst.cuda, dst.cpu) < 1e-5);
  }
  // A non-contiguous source.
  Pair src = random_pair({70, 8}, gen, dtype);
  Pair dst = poisoned_pair({70, 1}, dtype);
  engine::backend_for(engine::DeviceType::cpu).sum_to(dst.cpu, src.cpu.transpose(0, 1).contiguous().transpose(0, 1));
  engine::backend_for(engine::DeviceType::cuda).sum_to(dst.cuda, src.cuda.transpose(0, 1).contiguous().transpose(0, 1));
  CHECK(relative_error(dst.cuda, dst.cpu) < 1e-5);
}

// Random draws give the same numbers on both devices: bitwise when the device's math library is the
// host's (the emulator), to the last bit of f32 rounding otherwise.
inline void check_fill_random(bool bitwise) {
  using engine::RandomDistribution;
  for (Dtype dtype : {Dtype::f32, Dtype::f64})
    for (RandomDistribution dist : {RandomDistribution::uniform, RandomDistribution::normal,
                                    RandomDistribution::truncated_normal, RandomDistribution::bernoulli}) {
      CAPTURE(int(dist));
      const engine::RandomSpec spec{dist, dist == RandomDistribution::bernoulli ? 0.3 : 0.5, 2.0, -1.0, 3.0};
      engine::Generator gen_cpu(1234), gen_cuda(1234);
      gen_cpu.reserve(17);
      gen_cuda.reserve(17);
      Pair out = poisoned_pair({1031}, dtype);
      engine::fill_random_(out.cpu, gen_cpu, spec);
      engine::fill_random_(out.cuda, gen_cuda, spec);
      CHECK(gen_cpu.offset() == gen_cuda.offset());
      if (bitwise) {
        CHECK(relative_error(out.cuda, out.cpu) == 0.0);
      } else {
        CHECK(relative_error(out.cuda, out.cpu) < 1e-6);
      }
    }
}

}  // namespace backend_checks
