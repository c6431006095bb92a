// Rotary position embedding (Su et al., RoFormer) as one op: each adjacent pair (2m, 2m+1) of the
// last dimension is rotated by its angle,
//   out[2m]   = x[2m]·cos θ − x[2m+1]·sin θ
//   out[2m+1] = x[2m]·sin θ + x[2m+1]·cos θ
// Differentiable in x and in the angles (RoPE-Mixed learns its frequencies).
//
//   B = batch, H = heads, T = time, D = head dim (even)
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// x: (B, H, T, D); angles: (T, D/2) shared by all heads, or (H, T, D/2) per head -> (B, H, T, D).
// Only the first 2·angles.size(-1) dims are rotated; the rest pass through (partial rotary).
Tensor rotary(const Tensor& x, const Tensor& angles);

}  // namespace ops
