// The tests' bf16 rounding, bit by bit and independent of the kernels' conversion instructions.
#pragma once

#include <cstdint>
#include <cstring>

// x rounded to the nearest bf16, ties to even (finite x), as a double.
inline double bf16_round(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  float rounded;
  std::memcpy(&rounded, &bits, 4);
  return rounded;
}
