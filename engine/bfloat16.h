// bfloat16: the upper 16 bits of an IEEE f32 (sign, the same 8-bit exponent, 7 mantissa bits), so
// it covers f32's range with 8 significant bits. The engine stores bf16 tensors (Dtype::bf16) and
// converts to and from them; arithmetic happens in f32 or wider.
//
// One rounding rule for every device: these functions are ENGINE_HOST_DEVICE, so the CPU backend,
// the CUDA backend's copy kernels and the conversion kernels of ops/cuda/bfloat16.h all call them.
//   - f32 -> bf16 and f64 -> bf16 round to nearest, ties to even, from the source value directly
//     (f64 is not rounded to f32 first: that double rounding would break some ties);
//   - values past the largest finite bf16 by half an ulp or more become ±inf, as IEEE rounding does;
//   - denormals are rounded like any other value (bf16 has the same denormal range as f32), using
//     integer arithmetic only, so a CPU thread that flushes denormals (engine/denormals.h) converts
//     them the same as the GPU;
//   - a NaN stays a quiet NaN with its sign and the top of its payload (rounding its payload could
//     otherwise carry into the exponent and make an infinity);
//   - bf16 -> f32 and bf16 -> f64 are exact.
#pragma once

#include <cstdint>
#include <cstring>

#include "engine/host_device.h"

namespace engine {

// The same bits as another type of the same size (memcpy, which nvcc also compiles to a register
// move in device code; std::bit_cast is not usable in kernels).
template <typename To, typename From>
ENGINE_HOST_DEVICE inline To same_bits(From x) {
  static_assert(sizeof(To) == sizeof(From), "same_bits reinterprets, it does not convert");
  To out;
  memcpy(&out, &x, sizeof(out));
  return out;
}

// f32 -> bf16 pattern. Adding 0x7fff plus the lowest kept bit carries into the kept half exactly
// when the dropped half is above one half ulp, or equal to it with an odd kept half; a carry out of
// the largest finite value lands on the infinity pattern.
ENGINE_HOST_DEVICE inline uint16_t bf16_bits_from_f32(float x) {
  const uint32_t bits = same_bits<uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);  // NaN, kept quiet
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

// f64 -> bf16 pattern, rounded once from the f64 value: the 53-bit significand is shifted down to
// the 8 bits a normal bf16 keeps (fewer for a bf16 denormal) and rounded to nearest even on the
// dropped bits.
ENGINE_HOST_DEVICE inline uint16_t bf16_bits_from_f64(double x) {
  const uint64_t bits = same_bits<uint64_t>(x);
  const uint16_t sign = uint16_t((bits >> 48) & 0x8000u);
  const int exponent_field = int((bits >> 52) & 0x7ff);
  const uint64_t mantissa = bits & ((uint64_t(1) << 52) - 1);
  if (exponent_field == 0x7ff)  // inf, or NaN (quiet, with the top of its payload)
    return mantissa == 0 ? uint16_t(sign | 0x7f80u) : uint16_t(sign | 0x7fc0u | uint16_t(mantissa >> 45));
  if (exponent_field == 0) return sign;  // f64 zero or denormal: far below half the least bf16 denormal
  const int exponent = exponent_field - 1023;
  if (exponent > 127) return uint16_t(sign | 0x7f80u);
  // A normal bf16 keeps 8 significant bits (shift 45); below 2^-126 each halving loses one more.
  const int shift = 45 + (exponent < -126 ? -126 - exponent : 0);
  if (shift >= 54) return sign;  // below half the least bf16 denormal (2^-133): rounds to zero
  const uint64_t significand = mantissa | (uint64_t(1) << 52);
  uint64_t kept = significand >> shift;
  const uint64_t dropped = significand & ((uint64_t(1) << shift) - 1), half = uint64_t(1) << (shift - 1);
  if (dropped > half || (dropped == half && (kept & 1u))) ++kept;
  // A normal: biased exponent above the 7 stored bits; kept holds the implicit 1 (128), which the
  // sum absorbs, and a rounding carry to 256 steps into the next exponent (or into inf) by itself.
  if (exponent >= -126) return uint16_t(sign | ((uint32_t(exponent + 127) << 7) + uint32_t(kept) - 128u));
  return uint16_t(sign | kept);  // a denormal (or, after a carry to 128, the least normal)
}

ENGINE_HOST_DEVICE inline float f32_from_bf16_bits(uint16_t bits) { return same_bits<float>(uint32_t(bits) << 16); }

// The element type of Dtype::bf16 tensors: a bf16 bit pattern. Constructed from a number it rounds
// (rules above); read as a float it widens exactly. It has no arithmetic of its own beyond +=,
// which gradient accumulation needs, computed in f32 and rounded once.
struct bf16 {
  uint16_t bits = 0;

  bf16() = default;
  ENGINE_HOST_DEVICE explicit bf16(float x) : bits(bf16_bits_from_f32(x)) {}
  ENGINE_HOST_DEVICE explicit bf16(double x) : bits(bf16_bits_from_f64(x)) {}
  // Integers (index tensors converted to bf16) through f64, which holds any i32 exactly and rounds
  // an i64 once more only past 2^53, far beyond bf16's 8 significant bits.
  ENGINE_HOST_DEVICE explicit bf16(int32_t x) : bf16(double(x)) {}
  ENGINE_HOST_DEVICE explicit bf16(int64_t x) : bf16(double(x)) {}

  // The pattern itself, unrounded.
  ENGINE_HOST_DEVICE static bf16 from_bits(uint16_t bits) {
    bf16 b;
    b.bits = bits;
    return b;
  }

  ENGINE_HOST_DEVICE operator float() const { return f32_from_bf16_bits(bits); }

  ENGINE_HOST_DEVICE bf16& operator+=(bf16 other) { return *this = bf16(float(*this) + float(other)); }
};

static_assert(sizeof(bf16) == 2, "bf16 tensors are arrays of 16-bit patterns");

}  // namespace engine
