// CPU kernel for inverted dropout with a Philox mask (engine/philox.h).
//
// Legend: n = number of elements. Element i is kept when random_element(bernoulli(1 − p), seed,
// offset, i) is 1, i.e. when its Philox uniform is below 1 − p: the same mask fill_random_ would
// draw for a bernoulli tensor at the same (seed, offset), on any device. The backward applies the
// same function to the output gradient, regenerating the mask instead of storing it.
#pragma once

#include <cstdint>

namespace ops::cpu {

// out: (n) = in: (n) · keep_i / (1 − p), keep_i from (seed, offset) as above; out may alias in.
template <typename T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t offset);

}  // namespace ops::cpu
