// Table lookup. The backward scatter-adds rows of the output gradient into the table's gradient
// in a fixed order (deterministic; no float atomics).
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// indices: (...) i32/i64 in [0, V), table: (V, C) -> (..., C). An index out of range throws,
// naming the index and V.
Tensor embedding(const Tensor& indices, const Tensor& table);

}  // namespace ops
