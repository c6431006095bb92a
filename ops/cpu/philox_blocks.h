// Consecutive Philox4x32-10 blocks for CPU kernels, computed kBlocks at a time lane by lane (structure
// of arrays) so that the compiler vectorises the rounds: the same bits as engine::philox4x32_10
// block by block (tested in tests/ops/dropout_test.cpp), at a fraction of the cost in the dropout
// masks of training steps, where one scalar block per 4 elements took 18 % of a SeqPE step.
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/philox.h"

namespace ops::cpu {

// Bits of the blocks at counters first .. first + count - 1 under `key`: lane l of block b at
// bits[4·b + l], as engine::philox4x32_10(first + b, key).v[l]. count <= kPhiloxBlocks.
inline constexpr int64_t kPhiloxBlocks = 32;

inline void philox_blocks(uint64_t first, uint64_t key, int64_t count, uint32_t* bits) {
  // Whole vectors of lanes only: 16 blocks (a 64-key row of attention dropout) cost half of 32.
  const int64_t lanes = std::min(kPhiloxBlocks, (count + 15) / 16 * 16);
  uint32_t c0[kPhiloxBlocks], c1[kPhiloxBlocks], c2[kPhiloxBlocks] = {}, c3[kPhiloxBlocks] = {};
  for (int64_t b = 0; b < lanes; ++b) {
    const uint64_t counter = first + uint64_t(b);
    c0[b] = uint32_t(counter);
    c1[b] = uint32_t(counter >> 32);
  }
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
#pragma omp simd
    for (int64_t b = 0; b < lanes; ++b) {
      const uint64_t product0 = uint64_t(0xD2511F53u) * c0[b], product1 = uint64_t(0xCD9E8D57u) * c2[b];
      const uint32_t n0 = uint32_t(product1 >> 32) ^ c1[b] ^ k0, n2 = uint32_t(product0 >> 32) ^ c3[b] ^ k1;
      c1[b] = uint32_t(product1);
      c3[b] = uint32_t(product0);
      c0[b] = n0;
      c2[b] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int64_t b = 0; b < std::min(count, kPhiloxBlocks); ++b) {
    bits[4 * b] = c0[b];
    bits[4 * b + 1] = c1[b];
    bits[4 * b + 2] = c2[b];
    bits[4 * b + 3] = c3[b];
  }
}

}  // namespace ops::cpu
