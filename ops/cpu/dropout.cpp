// Dropout kernel (see ops/cpu/dropout.h): one Philox block gives the keep decisions of 4 elements.
#include "ops/cpu/dropout.h"

#include <algorithm>

#include "engine/philox.h"

namespace ops::cpu {

template <typename T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const double keep_probability = 1.0 - p;
  const T scale = p < 1.0 ? T(1.0 / keep_probability) : T(0);
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t b = 0; b < blocks; ++b) {
    const engine::PhiloxBlock bits = engine::philox4x32_10(offset + uint64_t(b), seed);
    for (int64_t lane = 0, i = b * 4; lane < 4 && i < n; ++lane, ++i)
      out[i] = engine::philox_to_unit(bits.v[lane]) < keep_probability ? in[i] * scale : T(0);
  }
}

template void dropout_apply<float>(float*, const float*, int64_t, double, uint64_t, uint64_t);
template void dropout_apply<double>(double*, const double*, int64_t, double, uint64_t, uint64_t);

}  // namespace ops::cpu
