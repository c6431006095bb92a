// Fixed sinusoidal positions (Vaswani et al. 2017), added to the input: for position p and pair j,
//   table[p, 2j] = sin(p / base^(2j/C)),  table[p, 2j+1] = cos(p / base^(2j/C))
// (sin in even dims, cos in odd, interleaved, as the authors' code). Images use the raster index
// with the class token at 0 and patches at 1..g² (SEQPE_SPEC.md §8).
//
//   T = positions, C = channels
#pragma once

#include "models/position_encoding.h"

namespace models {

// (rows, C) table for positions 0..rows-1.
Tensor sinusoidal_table(int64_t rows, int64_t channels, double base, engine::DType dtype = engine::DType::f32);

// The 1-D index of every token of a forward: the ids for text, 0..(class + g²)-1 for a grid.
Tensor raster_positions(const Positions& positions);

class Sinusoidal : public PositionEncoding {
 public:
  // max_position: the largest position any forward may use (the table holds max_position + 1 rows).
  Sinusoidal(int64_t max_position, int64_t channels, double base = 10000.0, engine::DType dtype = engine::DType::f32);
  std::string name() const override { return "sin"; }
  Tensor input_embedding() override;  // (T, C)

 private:
  Tensor* table_;  // (max_position + 1, C), a buffer: saved, not trained, moved by to_()
};

}  // namespace models
