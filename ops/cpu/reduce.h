// CPU reduction kernels. The caller views the input as a contiguous (O, R, I) array and reduces
// the middle dimension: O = outer (kept dims before the reduced ones), R = reduced, I = inner (kept
// dims after). Reducing the last dims is I = 1; reducing leading dims (the gradient of a bias) is
// O = 1. Outputs are contiguous (O, I).
//
// Sums accumulate in double in an order fixed by the shape alone, so results are bitwise the same
// whatever the number of threads.
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include <cstdint>

#include "engine/shape.h"

namespace ops::cpu {

using engine::Shape;

// out[o, i] = (Σ_r x[o, r, i]) / divisor.   x: (O, R, I)  out: (O, I)
template <typename T>
void sum_forward(T* out, const T* x, int64_t outer, int64_t reduce, int64_t inner, double divisor);

// grad_x = grad_out * scale, grad_out broadcast to `shape` (its strides are 0 on the reduced
// dimensions). grad_x: contiguous of `shape`.
template <typename T>
void sum_backward(T* grad_x, const T* grad_out, const Shape& shape, const Shape& grad_out_strides, double scale);

// out[o, i] = max_r x[o, r, i], argmax[o, i] = the first r that attains it (NaN counts as the
// maximum, as in PyTorch). x: (O, R, I) with R > 0.  out, argmax: (O, I)
template <typename T>
void max_forward(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce, int64_t inner);

// grad_x[o, r, i] = r == argmax[o, i] ? grad_out[o, i] : 0.   grad_x: (O, R, I)  grad_out, argmax: (O, I)
template <typename T>
void max_backward(T* grad_x, const T* grad_out, const int64_t* argmax, int64_t outer, int64_t reduce,
                  int64_t inner);

}  // namespace ops::cpu
