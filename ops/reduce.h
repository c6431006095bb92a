// Reductions along dimensions. Sums accumulate in double on the CPU, in a fixed order, so results
// do not depend on the number of threads.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// Sum / mean over `dims` (negative dims count from the end; empty = all dims).
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

// Maximum along one dimension. The gradient goes to the first maximal element (as PyTorch's max
// with dim). `indices`, when given, receives the argmax as i64.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false, Tensor* indices = nullptr);

}  // namespace ops
