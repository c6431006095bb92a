// Shapes and strides: the index arithmetic shared by tensors, views and kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// Row-major strides (in elements) of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);
// Wraps a possibly negative dimension index into [0, rank); throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);
// The shape two operands broadcast to under NumPy rules; throws naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace engine
