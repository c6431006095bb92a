// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator. The numbers at a counter depend only on (key, counter), so any element
// of a random tensor can be computed independently, in any order, on any device: the CPU and the
// CUDA kernels produce the same streams from the same (seed, offset).
//
// Convention used by every random op: element i of a draw that starts at `offset` uses the
// counter block (offset + i / per_block) and lane i % per_block, where per_block = 4 for uniforms
// and 2 for normals (Box-Muller consumes two uniforms per output).
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/host_device.h"

namespace engine {

struct PhiloxBlock {
  uint32_t v[4];
};

ENGINE_HOST_DEVICE inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t product = uint64_t(a) * uint64_t(b);
  hi = uint32_t(product >> 32);
  lo = uint32_t(product);
}

// Ten rounds of Philox4x32 on the 128-bit counter (block index as 64 bits, zero high words).
ENGINE_HOST_DEVICE inline PhiloxBlock philox4x32_10(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

// Uniform in the open interval (0, 1), from 32 random bits.
ENGINE_HOST_DEVICE inline double philox_to_unit(uint32_t bits) { return (double(bits) + 0.5) * (1.0 / 4294967296.0); }

// Element i of a uniform (0, 1) draw starting at counter block `offset`.
ENGINE_HOST_DEVICE inline double philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  PhiloxBlock block = philox4x32_10(offset + i / 4, seed);
  return philox_to_unit(block.v[i % 4]);
}

// Element i of a standard normal draw (Box-Muller, cosine branch) starting at block `offset`.
ENGINE_HOST_DEVICE inline double philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  PhiloxBlock block = philox4x32_10(offset + i / 2, seed);
  double u1 = philox_to_unit(block.v[2 * (i % 2)]);
  double u2 = philox_to_unit(block.v[2 * (i % 2) + 1]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

enum class RandomDistribution {
  uniform,           // U(a, b)
  normal,            // N(mean a, std b)
  truncated_normal,  // N(mean a, std b) restricted to [low, high] (inverse-CDF, as timm's trunc_normal_)
  bernoulli,         // 1 with probability a, else 0
};

// One random draw's distribution and parameters.
struct RandomSpec {
  RandomDistribution dist = RandomDistribution::uniform;
  double a = 0.0, b = 1.0;
  double low = -2.0, high = 2.0;  // truncated_normal only: absolute bounds, as timm's defaults
};

// Inverse error function to double precision: Giles' single-precision approximation refined by
// two Newton steps on erf.
ENGINE_HOST_DEVICE inline double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w; p = -3.5233877e-06 + p * w; p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w; p = -0.00125372503 + p * w; p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w; p = 1.50140941 + p * w;
    x = p * y;
  } else {
    w = sqrt(w) - 3.0;
    double p = -0.000200214257;
    p = 0.000100950558 + p * w; p = 0.00134934322 + p * w; p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w; p = -0.0076224613 + p * w; p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w; p = 2.83297682 + p * w;
    x = p * y;
  }
  for (int step = 0; step < 2; ++step)  // Newton: d/dx erf(x) = 2/sqrt(pi) exp(-x^2)
    x -= (erf(x) - y) / (1.1283791670955126 * exp(-x * x));
  return x;
}

// Element i of a draw that starts at counter block `offset`.
ENGINE_HOST_DEVICE inline double random_element(const RandomSpec& spec, uint64_t seed, uint64_t offset, uint64_t i) {
  switch (spec.dist) {
    case RandomDistribution::uniform: return spec.a + (spec.b - spec.a) * philox_uniform(seed, offset, i);
    case RandomDistribution::normal: return spec.a + spec.b * philox_normal(seed, offset, i);
    case RandomDistribution::truncated_normal: {
      const double inv_sqrt2 = 0.7071067811865476;
      double lo = 0.5 * (1.0 + erf((spec.low - spec.a) / spec.b * inv_sqrt2));
      double hi = 0.5 * (1.0 + erf((spec.high - spec.a) / spec.b * inv_sqrt2));
      double u = lo + (hi - lo) * philox_uniform(seed, offset, i);
      double x = spec.a + spec.b * 1.4142135623730951 * erfinv(2.0 * u - 1.0);
      return x < spec.low ? spec.low : (x > spec.high ? spec.high : x);
    }
    case RandomDistribution::bernoulli: return philox_uniform(seed, offset, i) < spec.a ? 1.0 : 0.0;
  }
  return 0.0;
}

// Counter blocks a draw of n elements consumes.
ENGINE_HOST_DEVICE inline uint64_t random_blocks(RandomDistribution dist, uint64_t n) {
  return dist == RandomDistribution::normal ? (n + 1) / 2 : (n + 3) / 4;
}

}  // namespace engine
