// Shape and stride arithmetic (engine/shape.h): element counts, contiguous strides, dimension
// wrapping, broadcasting.
#include "engine/shape.h"

#include <algorithm>

#include "engine/checked_size.h"
#include "engine/error.h"

namespace engine {

int64_t shape_numel(const Shape& shape) {
  uint64_t n = 1;
  for (int64_t s : shape) {
    uint64_t product = 0;
    if (s < 0 || size_product_overflows(n, uint64_t(s), &product))
      throw Error(detail::concat("shape ", shape_str(shape), s < 0 ? " has a negative size" : " has more elements than ",
                                 s < 0 ? "" : "2^63 - 1: a size is corrupt or far too large"));
    n = product;
  }
  return int64_t(n);
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t wrapped = dim < 0 ? dim + rank : dim;
  ENGINE_CHECK(wrapped >= 0 && wrapped < rank, op, ": dimension ", dim, " is out of range for a tensor of rank ",
               rank);
  return wrapped;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    ENGINE_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace engine
