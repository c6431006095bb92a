// Kernel 0 of softmax and log-softmax: the readable version of the ops (ops/softmax.h), in double,
// the oracle the tests compare the fast kernels against. Along dim, for each line x_1..x_n:
//   softmax(x)_r = e^(x_r − m) / Σ_s e^(x_s − m),   log_softmax(x)_r = x_r − m − log Σ_s e^(x_s − m)
// with m = max_s x_s subtracted so that no exponential overflows (the value does not change).
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace ops::reference {

using engine::Tensor;

// x: any shape, floating, any device -> the same shape, f64 on the CPU.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace ops::reference
