// The fixed sinusoidal table and its raster indices for images (models/pe/sinusoidal.h).
#include "models/pe/sinusoidal.h"

#include <cmath>

#include "engine/autograd.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"

namespace models::pe {

Tensor sinusoidal_table(int64_t rows, int64_t channels, double base, engine::Dtype dtype) {
  ENGINE_CHECK(channels % 2 == 0, "sinusoidal_table: channels must be even, got ", channels);
  std::vector<double> values(size_t(rows * channels));
  for (int64_t p = 0; p < rows; ++p)
    for (int64_t j = 0; j < channels / 2; ++j) {
      const double angle = double(p) / std::pow(base, double(2 * j) / double(channels));
      values[size_t(p * channels + 2 * j)] = std::sin(angle);
      values[size_t(p * channels + 2 * j + 1)] = std::cos(angle);
    }
  return Tensor::from_vector(values, {rows, channels}, dtype);
}

Tensor raster_positions(const Positions& positions) {
  if (positions.ids.defined()) return positions.ids;
  return Tensor::arange(positions.length());
}

Sinusoidal::Sinusoidal(int64_t max_position, int64_t channels, double base, double scale, engine::Dtype dtype) {
  Tensor table = sinusoidal_table(max_position + 1, channels, base, engine::Dtype::f64);
  if (scale != 1.0) {
    engine::NoGradGuard no_grad;
    table = ops::mul_scalar(table, scale);
  }
  table_ = &register_buffer("table", table.to(dtype));
}

// The ids are on the host (Positions): checked there; 0..T-1 is a view of the table's first rows,
// other ids are copied to the table's device and gathered.
Tensor Sinusoidal::input_embedding() {
  Tensor ids = raster_positions(positions_);
  const auto range = ids.to_vector<int64_t>();
  bool is_prefix = true;
  for (size_t i = 0; i < range.size(); ++i) {
    const int64_t p = range[i];
    ENGINE_CHECK(p >= 0 && p < table_->size(0), "sinusoidal PE: position ", p, " is beyond the table's ",
                 table_->size(0) - 1, "; raise max_position");
    is_prefix = is_prefix && p == int64_t(i);
  }
  if (is_prefix) return table_->narrow(0, 0, int64_t(range.size()));
  return ops::index_select(*table_, 0, ids.to(table_->device()));
}

}  // namespace models::pe
