// One test body for the f32 <-> bf16 conversion kernels (ops/cuda/bfloat16.h), run by test_ops_emu
// (the kernel emulator) and test_ops_gpu (a real GPU): the device conversion against the host
// reference of tests/common/bf16_reference.h. Exact (bitwise), on the whole buffers and on views that
// start 1 and 3 elements in (off the 16-byte grid: the kernels' scalar tail throughout).
#pragma once

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "common/backend_checks.h"
#include "common/bf16_reference.h"
// Last: under the emulator, the CUDA headers define keywords (__noinline__) that standard headers use.
#include "engine/cuda/stream.h"
#include "ops/cuda/bfloat16.h"

namespace bfloat16_checks {

using engine::Dtype;
using engine::Tensor;

// Values around every rounding case: exact, ties both ways, just off ties, denormals, the overflow
// edge, infinities, NaN; then random values over many magnitudes. N is odd, so not a block multiple.
inline std::vector<float> test_values(engine::Generator& gen) {
  std::vector<float> values = {1.0f, -1.0f, 0.0f, -0.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f,
                               -(1.0f + 3 * 0x1p-8f), 1e-40f, -3e-42f, std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(), 0x1.fefffep127f, 0x1.fe8p127f};
  const std::vector<float> noise = Tensor::randn({2001}, gen).to_vector<float>();
  for (size_t i = 0; i < noise.size(); ++i) values.push_back(noise[i] * std::ldexp(1.0f, int(i % 61) - 30));
  return values;
}

// Converts values[first..] from element `first` of each buffer on and checks them.
inline void check_conversions_from(const std::vector<float>& values, int64_t first) {
  CAPTURE(first);
  const int64_t n = int64_t(values.size());
  std::vector<double> as_double(values.begin(), values.end());
  const Tensor input = Tensor::from_vector(as_double, {n}, Dtype::f32).to(backend_checks::kCuda);
  // bf16 patterns in an i32 buffer of half the count (poisoned), and the f32 round trip (poisoned).
  const Tensor packed = Tensor::full({(n + 1) / 2}, -1.0, Dtype::i32, backend_checks::kCuda);
  const Tensor round_trip = Tensor::full({n}, backend_checks::kNaN, Dtype::f32, backend_checks::kCuda);
  auto* bf16 = reinterpret_cast<uint16_t*>(packed.data<int32_t>());
  const cudaStream_t stream = engine::cuda::current_stream();
  ops::cuda::f32_to_bf16(bf16 + first, input.data<float>() + first, n - first, stream);
  ops::cuda::bf16_to_f32(round_trip.data<float>() + first, bf16 + first, n - first, stream);

  const std::vector<int32_t> packed_host = packed.to_vector<int32_t>();
  std::vector<uint16_t> got(static_cast<size_t>(n));
  std::memcpy(got.data(), packed_host.data(), got.size() * sizeof(uint16_t));
  const std::vector<float> back = round_trip.to_vector<float>();
  int mismatches = 0;
  for (size_t i = size_t(first); i < values.size(); ++i) {
    const uint16_t expected = bf16_reference::nearest_bf16(double(values[i]));
    const float expected_back = std::bit_cast<float>(uint32_t(expected) << 16);
    const bool same_back = std::bit_cast<uint32_t>(back[i]) == std::bit_cast<uint32_t>(expected_back);
    if (got[i] != expected || !same_back) {
      if (++mismatches <= 5) {
        CAPTURE(values[i]);
        CAPTURE(got[i]);
        CAPTURE(expected);
        CHECK(got[i] == expected);
        CHECK(same_back);
      }
    }
  }
  CHECK(mismatches == 0);
}

inline void check_conversions(engine::Generator& gen) {
  const std::vector<float> values = test_values(gen);
  for (int64_t first : {0, 1, 3}) check_conversions_from(values, first);
}

}  // namespace bfloat16_checks
