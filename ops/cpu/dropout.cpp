// Dropout kernel (see ops/cpu/dropout.h): one Philox block gives the keep decisions of 4 elements;
// the blocks are made kPhiloxBlocks at a time (ops/cpu/philox_blocks.h).
#include "ops/cpu/dropout.h"

#include <algorithm>

#include "engine/philox.h"
#include "ops/cpu/philox_blocks.h"

namespace ops::cpu {

template <typename T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const double keep_probability = 1.0 - p;
  const T scale = p < 1.0 ? T(1.0 / keep_probability) : T(0);
  const int64_t blocks = (n + 3) / 4, groups = (blocks + kPhiloxBlocks - 1) / kPhiloxBlocks;
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t group = 0; group < groups; ++group) {
    uint32_t bits[4 * kPhiloxBlocks];
    const int64_t first_block = group * kPhiloxBlocks;
    philox_blocks(offset + uint64_t(first_block), seed, std::min(kPhiloxBlocks, blocks - first_block), bits);
    const int64_t begin = 4 * first_block, end = std::min(n, begin + 4 * kPhiloxBlocks);
    for (int64_t i = begin; i < end; ++i)
      out[i] = engine::philox_to_unit(bits[i - begin]) < keep_probability ? in[i] * scale : T(0);
  }
}

template void dropout_apply<float>(float*, const float*, int64_t, double, uint64_t, uint64_t);
template void dropout_apply<double>(double*, const double*, int64_t, double, uint64_t, uint64_t);

}  // namespace ops::cpu
