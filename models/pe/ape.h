// Resizing a learned absolute position table to a length or grid it was not trained at
// (docs/method.md#baselines: APE "extrapolates" by interpolation only). Both follow PyTorch's
// F.interpolate with align_corners=False exactly, so that tables match the authors' code:
//   linear   (L_in, C) -> (L_out, C): src = (dst + 0.5)·L_in/L_out − 0.5, clamped at 0; the
//            upper neighbour is clamped to the last row.
//   bicubic  (g_in_h·g_in_w, C) -> (g_h·g_w, C), rows in raster order: cubic convolution with
//            A = −0.75 along each axis, source coordinate not clamped, taps clamped to the border.
// Evaluation only: computed on host data, not differentiable (the result has no grad_fn).
//
//   L = rows, C = channels, g = grid side
#pragma once

#include "engine/tensor.h"

namespace models::pe {

using engine::Tensor;

// (L_in, C) -> (rows_out, C), same dtype.
Tensor interpolate_linear(const Tensor& table, int64_t rows_out);

// (in_h·in_w, C) -> (out_h·out_w, C), same dtype.
Tensor interpolate_bicubic(const Tensor& grid_table, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w);

}  // namespace models::pe
