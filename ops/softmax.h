// Softmax and log-softmax along one dimension, numerically stable (max subtracted), so inputs of
// any magnitude give finite results.
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace ops
