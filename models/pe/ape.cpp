// Linear and bicubic resizing of learned position tables, as PyTorch's F.interpolate
// (models/pe/ape.h).
#include "models/pe/ape.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/autograd.h"

namespace models::pe {

namespace {

// The table as row-major doubles on the host, shape (rows, C).
std::vector<double> host_rows(const Tensor& table) {
  return table.contiguous().to(engine::Device::cpu()).to(engine::Dtype::f64).to_vector<double>();
}

// PyTorch's cubic convolution weights (A = −0.75) of the taps at floor(src) − 1 .. floor(src) + 2,
// for the fractional part t of the source coordinate.
std::array<double, 4> cubic_weights(double t) {
  constexpr double A = -0.75;
  auto near = [](double x) { return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0; };           // |x| <= 1
  auto far = [](double x) { return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A; };      // 1 < |x| < 2
  return {far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)};
}

// One output index along an axis of bicubic resizing: the 4 clamped source taps and their weights.
struct CubicTaps {
  std::array<int64_t, 4> index;
  std::array<double, 4> weight;
};

std::vector<CubicTaps> cubic_axis(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  std::vector<CubicTaps> taps(static_cast<size_t>(out));
  for (int64_t d = 0; d < out; ++d) {
    const double src = (double(d) + 0.5) * scale - 0.5;
    const double base = std::floor(src);
    CubicTaps& tap = taps[size_t(d)];
    tap.weight = cubic_weights(src - base);
    for (int64_t k = 0; k < 4; ++k) tap.index[size_t(k)] = std::clamp(int64_t(base) - 1 + k, int64_t(0), in - 1);
  }
  return taps;
}

}  // namespace

Tensor interpolate_linear(const Tensor& table, int64_t rows_out) {
  ENGINE_CHECK(table.dim() == 2 && table.size(0) > 0, "interpolate_linear: table must be (L, C), got ",
               table.describe());
  ENGINE_CHECK(rows_out > 0, "interpolate_linear: rows_out must be positive, got ", rows_out);
  engine::NoGradGuard no_grad;
  const int64_t rows_in = table.size(0), C = table.size(1);
  const std::vector<double> in = host_rows(table);
  std::vector<double> out(size_t(rows_out * C));
  const double scale = double(rows_in) / double(rows_out);
  for (int64_t d = 0; d < rows_out; ++d) {
    const double src = std::max((double(d) + 0.5) * scale - 0.5, 0.0);
    const int64_t lo = int64_t(src), hi = lo < rows_in - 1 ? lo + 1 : lo;
    const double w_hi = src - double(lo), w_lo = 1.0 - w_hi;
    for (int64_t c = 0; c < C; ++c)
      out[size_t(d * C + c)] = w_lo * in[size_t(lo * C + c)] + w_hi * in[size_t(hi * C + c)];
  }
  return Tensor::from_vector(out, {rows_out, C}, table.dtype(), table.device());
}

Tensor interpolate_bicubic(const Tensor& grid_table, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
  ENGINE_CHECK(grid_table.dim() == 2 && in_h > 0 && in_w > 0 && grid_table.size(0) == in_h * in_w,
               "interpolate_bicubic: table must be (in_h·in_w = ", in_h * in_w, ", C), got ", grid_table.describe());
  ENGINE_CHECK(out_h > 0 && out_w > 0, "interpolate_bicubic: output grid must be positive, got ", out_h, "x", out_w);
  engine::NoGradGuard no_grad;
  const int64_t C = grid_table.size(1);
  const std::vector<double> in = host_rows(grid_table);
  const std::vector<CubicTaps> rows = cubic_axis(in_h, out_h), cols = cubic_axis(in_w, out_w);
  std::vector<double> out(size_t(out_h * out_w * C), 0.0);
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t x = 0; x < out_w; ++x) {
      double* dst = &out[size_t((y * out_w + x) * C)];
      const CubicTaps &ry = rows[size_t(y)], &cx = cols[size_t(x)];
      for (size_t i = 0; i < 4; ++i)
        for (size_t j = 0; j < 4; ++j) {
          const double w = ry.weight[i] * cx.weight[j];
          const double* src = &in[size_t((ry.index[i] * in_w + cx.index[j]) * C)];
          for (int64_t c = 0; c < C; ++c) dst[c] += w * src[c];
        }
    }
  return Tensor::from_vector(out, {out_h * out_w, C}, grid_table.dtype(), grid_table.device());
}

}  // namespace models::pe
