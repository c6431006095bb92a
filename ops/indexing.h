// Joining, splitting and indexing.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// Joins tensors of equal shape except along `dim`.
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);
// Splits along `dim` into pieces of the given sizes (they must add up to x.size(dim)).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
// Joins tensors of equal shape along a new dimension `dim`.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// out = x taken at `index` (1-D i32/i64) along `dim`; out.size(dim) = index.numel().
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (PyTorch's gather); index has x's rank.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace ops
