// Rotary position encodings (docs/method.md#baselines): q and k of every layer are rotated pair by pair
// (ops/rotary.h), so that q_i·k_j depends on positions only through i − j.
//   rope       1-D: pair m of a head rotates by p·base^(−2m/D); images use the raster index with
//              the class token at 0.
//   rope2d     axial (images): the first half of the pairs rotates by the column w·θ_k, the second
//              half by the row h·θ_k, θ_k = base^(−4k/D); the class token is not rotated.
//   rope_mixed RoPE-Mixed (Heo et al. 2024): learnable per-layer, per-head frequencies; pair m
//              rotates by w·f_x[m] + h·f_y[m]; the class token is not rotated.
//
//   H = heads, T = tokens, D = head dim, P = D/2 pairs, L = layers
#pragma once

#include "engine/rng.h"
#include "models/position_encoding.h"

namespace models::pe {

class Rope : public PositionEncoding {
 public:
  Rope(int64_t head_dim, double base = 10000.0, engine::Dtype dtype = engine::Dtype::f32);
  std::string name() const override { return "rope"; }
  void prepare(const Positions& positions) override;
  void transform_qk(int layer, Tensor& q, Tensor& k) override;

 private:
  int64_t head_dim_;
  double base_;
  engine::Dtype dtype_;
  Tensor angles_;                    // (T, P) for the current forward, on its device
  std::vector<int64_t> angles_ids_;  // the positions angles_ was built for
};

class Rope2d : public PositionEncoding {
 public:
  Rope2d(int64_t head_dim, double base = 10000.0, engine::Dtype dtype = engine::Dtype::f32);
  std::string name() const override { return "rope2d"; }
  void prepare(const Positions& positions) override;
  void transform_qk(int layer, Tensor& q, Tensor& k) override;

 private:
  int64_t head_dim_;
  double base_;
  engine::Dtype dtype_;
  Tensor angles_;  // (T, P)
};

class RopeMixed : public PositionEncoding {
 public:
  RopeMixed(int64_t layers, int64_t heads, int64_t head_dim, double theta, engine::Generator& init_gen,
            engine::Dtype dtype = engine::Dtype::f32);
  std::string name() const override { return "rope_mixed"; }
  void prepare(const Positions& positions) override;
  void transform_qk(int layer, Tensor& q, Tensor& k) override;

 private:
  Tensor* freqs_;      // (L, 2, H, P): f_x then f_y, learned
  Tensor rows_, cols_; // (T, 1) grid coordinates of the current forward (0 for the class token)
};

// Whether two forwards have the same grid on the same device (the 2-D tables are then reused).
bool same_grid(const Positions& a, const Positions& b);

// (T) row and column of each token of a grid forward, with (0, 0) for the class token.
std::pair<std::vector<double>, std::vector<double>> grid_coordinates(const Positions& positions);

}  // namespace models::pe
