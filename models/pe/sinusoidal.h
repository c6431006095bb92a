// Fixed sinusoidal positions (Vaswani et al. 2017), added to the input: for position p and pair j,
//   table[p, 2j] = sin(p / base^(2j/C)),  table[p, 2j+1] = cos(p / base^(2j/C))
// (sin in even dims, cos in odd, interleaved, as the authors' code). Images use the raster index
// with the class token at 0 and patches at 1..g² (docs/method.md#baselines). The PE adds the table times
// `scale`: the authors add it at amplitude 1 (scale 1) to GPT-2 token embeddings of std 0.02, where
// it drowns the tokens (at width 128 a table row is 35 times a token row) and the model does not
// train in a short run; a GPT therefore scales it to its token embeddings' size by default
// (models/model_config.h), as the original Transformer matched the two sizes by multiplying its
// embeddings by sqrt(C).
//
//   T = positions, C = channels
#pragma once

#include "models/position_encoding.h"

namespace models::pe {

// (rows, C) table for positions 0..rows-1.
Tensor sinusoidal_table(int64_t rows, int64_t channels, double base, engine::Dtype dtype = engine::Dtype::f32);

// The 1-D index of every token of a forward: the ids for text, 0..(class + g²)-1 for a grid.
Tensor raster_positions(const Positions& positions);

class Sinusoidal : public PositionEncoding {
 public:
  // max_position: the largest position any forward may use (the table holds max_position + 1 rows);
  // scale: the factor on the table.
  Sinusoidal(int64_t max_position, int64_t channels, double base = 10000.0, double scale = 1.0,
             engine::Dtype dtype = engine::Dtype::f32);
  std::string name() const override { return "sin"; }
  Tensor input_embedding() override;  // (T, C)

 private:
  Tensor* table_;  // (max_position + 1, C), a buffer: saved, not trained, moved by to_()
};

}  // namespace models::pe
