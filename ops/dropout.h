// Inverted dropout: in training, each element is zeroed with probability p and the rest scaled
// by 1/(1-p). The mask comes from the generator's Philox stream (engine/philox.h), so the CPU and
// CUDA draw the same mask for the same (seed, offset).
#pragma once

#include "engine/rng.h"
#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// Identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, engine::Generator& gen, bool training);

}  // namespace ops
