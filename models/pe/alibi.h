// ALiBi (Press et al. 2022): no position vectors; each head h adds slope_h · (j − i) to the score
// of query i for key j, penalising distance linearly.
#pragma once

#include <vector>

#include "models/position_encoding.h"

namespace models::pe {

// The published slopes for any head count: for a power of two n, 2^(−8/n)·(1, 2, ..., n) in the
// exponent; otherwise the slopes of the largest power of two below n, then every other slope of
// twice that count until n are filled.
std::vector<double> alibi_slopes(int64_t heads);

class Alibi : public PositionEncoding {
 public:
  // The authors' GPT-2 code adds slope·j to q·k *before* the 1/sqrt(D) scaling (docs/method.md#baselines),
  // so the effective slopes are slope/sqrt(D): scaled_by_attention_scale reproduces that.
  Alibi(int64_t heads, bool scaled_by_attention_scale, engine::Dtype dtype = engine::Dtype::f32);
  std::string name() const override { return "alibi"; }
  void attention_options(int layer, ops::AttentionOptions& options) override;

 private:
  Tensor slopes_;  // (H), moved to the device of the latest forward
  bool scaled_;
};

}  // namespace models::pe
