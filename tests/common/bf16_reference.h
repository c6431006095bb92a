// An independent reference for rounding to bf16 (engine/bfloat16.h), for the tests of the engine's
// conversion, the CUDA backend's copies and the conversion kernels: it rounds by comparing exact
// distances to the two neighbouring bf16 values instead of by bit arithmetic.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace bf16_reference {

// The bf16 pattern of |x| truncated toward zero (x finite): the f32 nearest x, stepped toward zero
// when it lies beyond x, then cut to its top 16 bits.
inline uint16_t truncated_bf16(double x) {
  float f = float(x);
  if (std::fabs(double(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
  return uint16_t(std::bit_cast<uint32_t>(f) >> 16);
}

inline double bf16_value(uint16_t bits) { return double(std::bit_cast<float>(uint32_t(bits) << 16)); }

// The bf16 pattern nearest to x (ties to the even pattern). The distances are exact in double: x
// and its neighbours lie within a factor of two of each other, or the lower neighbour is zero.
// NaN becomes the quiet NaN with x's sign and the top 7 bits of its payload, as an f32 NaN would.
inline uint16_t nearest_bf16(double x) {
  if (std::isnan(x)) {
    const uint64_t bits = std::bit_cast<uint64_t>(x);
    return uint16_t(((bits >> 48) & 0x8000u) | 0x7fc0u | ((bits >> 45) & 0x7fu));
  }
  if (std::isinf(x)) return x > 0 ? 0x7f80 : 0xff80;
  const uint16_t down = truncated_bf16(x);
  if (bf16_value(down) == x) return down;
  const uint16_t up = uint16_t(down + 1);  // next magnitude away from zero (may be ±inf)
  const double below = bf16_value(down);
  if (std::isinf(bf16_value(up))) {
    // Past the largest finite bf16, IEEE rounding overflows from half an ulp beyond it onwards.
    const double half_ulp = std::ldexp(1.0, 127 - 8);
    return std::fabs(x) - std::fabs(below) >= half_ulp ? up : down;
  }
  const double d_below = std::fabs(x - below), d_above = std::fabs(bf16_value(up) - x);
  if (d_below != d_above) return d_below < d_above ? down : up;
  return (down & 1u) == 0 ? down : up;
}

// Values around every rounding case, as f64: exact, ties both ways, just off ties, denormals of
// both widths, the overflow edge, infinities, NaNs (quiet and signalling, both signs).
inline std::vector<double> special_values() {
  const double inf = std::numeric_limits<double>::infinity();
  return {1.0, -1.0, 0.0, -0.0, 1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, 1.0 + 0x1p-8 + 0x1p-20, -(1.0 + 3 * 0x1p-8),
          1.0 + 0x1p-8 + 0x1p-30,  // f64 only: rounding through f32 first would make it a tie
          1e-40, -3e-42, 0x1p-133, 0x1p-134, 0x1.8p-134, 0x3p-134, 0x1p-140, 0x1p-126, 0x1.ffp-127,
          1e-300, -4.9e-324, double(std::numeric_limits<float>::max()), 0x1.fefffep127, 0x1.fe8p127,
          0x1.ff0000001p127, 1e300, inf, -inf, std::numeric_limits<double>::quiet_NaN(),
          -std::numeric_limits<double>::quiet_NaN(), double(std::bit_cast<float>(0x7f800001u))};
}

}  // namespace bf16_reference
