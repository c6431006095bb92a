// RoPE, axial 2-D RoPE and RoPE-Mixed (models/pe/rope.h): their angles per position and the
// rotation of q and k.
#include "models/pe/rope.h"

#include <cmath>

#include "ops/elementwise.h"
#include "ops/rotary.h"

namespace models::pe {

std::pair<std::vector<double>, std::vector<double>> grid_coordinates(const Positions& positions) {
  ENGINE_CHECK(positions.grid_h > 0 && positions.grid_w > 0, "2-D rotary PE needs a grid forward (images)");
  std::vector<double> rows, cols;
  if (positions.class_token) {
    rows.push_back(0);
    cols.push_back(0);
  }
  for (int64_t h = 0; h < positions.grid_h; ++h)
    for (int64_t w = 0; w < positions.grid_w; ++w) {
      rows.push_back(double(h));
      cols.push_back(double(w));
    }
  return {rows, cols};
}

Rope::Rope(int64_t head_dim, double base, engine::Dtype dtype) : head_dim_(head_dim), base_(base), dtype_(dtype) {
  ENGINE_CHECK(head_dim % 2 == 0, "rope: head dim must be even, got ", head_dim);
}

bool same_grid(const Positions& a, const Positions& b) {
  return a.grid_h == b.grid_h && a.grid_w == b.grid_w && a.class_token == b.class_token && a.device == b.device;
}

// The table is rebuilt (on the host, then copied to the device once) only when the positions or
// the device change: a training loop at a fixed length reuses it.
void Rope::prepare(const Positions& positions) {
  positions_ = positions;
  // Text: the ids; images: the raster index with the class token at 0.
  std::vector<int64_t> ids = positions.ids.defined() ? positions.ids.to_vector<int64_t>() : std::vector<int64_t>{};
  if (!positions.ids.defined())
    for (int64_t i = 0; i < positions.length(); ++i) ids.push_back(i);
  if (angles_.defined() && ids == angles_ids_ && angles_.device() == positions.device) return;
  angles_ids_ = ids;
  const int64_t P = head_dim_ / 2;
  std::vector<double> angles;
  for (int64_t p : ids)
    for (int64_t m = 0; m < P; ++m) angles.push_back(double(p) * std::pow(base_, -2.0 * double(m) / double(head_dim_)));
  angles_ = Tensor::from_vector(angles, {int64_t(ids.size()), P}, dtype_, positions.device);
}

void Rope::transform_qk(int, Tensor& q, Tensor& k) {
  q = ops::rotary(q, angles_);
  k = ops::rotary(k, angles_);
}

Rope2d::Rope2d(int64_t head_dim, double base, engine::Dtype dtype) : head_dim_(head_dim), base_(base), dtype_(dtype) {
  ENGINE_CHECK(head_dim % 4 == 0, "rope2d: head dim must be a multiple of 4, got ", head_dim);
}

void Rope2d::prepare(const Positions& positions) {
  const bool cached = angles_.defined() && same_grid(positions, positions_);
  positions_ = positions;
  if (cached) return;
  auto [rows, cols] = grid_coordinates(positions);
  const int64_t half = head_dim_ / 4;  // pairs per axis
  std::vector<double> angles;
  for (size_t t = 0; t < rows.size(); ++t) {
    for (int64_t k = 0; k < half; ++k) angles.push_back(cols[t] * std::pow(base_, -4.0 * double(k) / double(head_dim_)));
    for (int64_t k = 0; k < half; ++k) angles.push_back(rows[t] * std::pow(base_, -4.0 * double(k) / double(head_dim_)));
  }
  angles_ = Tensor::from_vector(angles, {int64_t(rows.size()), 2 * half}, dtype_, positions.device);
}

void Rope2d::transform_qk(int, Tensor& q, Tensor& k) {
  q = ops::rotary(q, angles_);
  k = ops::rotary(k, angles_);
}

RopeMixed::RopeMixed(int64_t layers, int64_t heads, int64_t head_dim, double theta, engine::Generator& init_gen,
                     engine::Dtype dtype) {
  ENGINE_CHECK(head_dim % 4 == 0, "rope_mixed: head dim must be a multiple of 4, got ", head_dim);
  const int64_t P = head_dim / 2, quarter = head_dim / 4;
  std::vector<double> values(size_t(layers * 2 * heads * P));
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h) {
      // A random direction per head; magnitudes θ^(−4k/D); the second half turned by 90°.
      const double phi = init_gen.uniform() * 2.0 * M_PI;
      for (int64_t k = 0; k < quarter; ++k) {
        const double mag = std::pow(theta, -4.0 * double(k) / double(head_dim));
        const int64_t fx = ((l * 2 + 0) * heads + h) * P, fy = ((l * 2 + 1) * heads + h) * P;
        values[size_t(fx + k)] = mag * std::cos(phi);
        values[size_t(fx + quarter + k)] = mag * std::cos(phi + M_PI / 2);
        values[size_t(fy + k)] = mag * std::sin(phi);
        values[size_t(fy + quarter + k)] = mag * std::sin(phi + M_PI / 2);
      }
    }
  freqs_ = &register_parameter("freqs", Tensor::from_vector(values, {layers, 2, heads, P}, dtype));
}

void RopeMixed::prepare(const Positions& positions) {
  const bool cached = rows_.defined() && same_grid(positions, positions_);
  positions_ = positions;
  if (cached) return;
  auto [rows, cols] = grid_coordinates(positions);
  const int64_t T = int64_t(rows.size());
  rows_ = Tensor::from_vector(rows, {T, 1}, freqs_->dtype(), positions.device);
  cols_ = Tensor::from_vector(cols, {T, 1}, freqs_->dtype(), positions.device);
}

void RopeMixed::transform_qk(int layer, Tensor& q, Tensor& k) {
  Tensor layer_freqs = freqs_->select(0, layer);                          // (2, H, P)
  Tensor fx = layer_freqs.select(0, 0).unsqueeze(1);                       // (H, 1, P)
  Tensor fy = layer_freqs.select(0, 1).unsqueeze(1);
  Tensor angles = ops::add(ops::mul(cols_, fx), ops::mul(rows_, fy));      // (H, T, P)
  q = ops::rotary(q, angles);
  k = ops::rotary(k, angles);
}

}  // namespace models::pe
