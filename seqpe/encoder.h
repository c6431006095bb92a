// The sequential position encoder (docs/method.md#the-position-encoder): a small pre-LN transformer that reads a position's
// digit sequence (position_tokenizer.h) and returns one vector per position. Because it reads
// digits rather than looking a position up in a table, it produces embeddings for positions never
// seen in training, which is what lets SeqPE extrapolate.
//
// Legend: N = number of positions, n = dims, M = max_digits, T = n * M (digit slots),
// C = D_pe (encoder width), O = D_out (output width), V = base (digit vocabulary).
//
//   x_t  = E_digit[d_t] + E_slot[t] + (n > 1 ? E_dim[t div M] : 0)      t = 0..T-1
//   x_T  = readout                         (appended last, no slot or dim embedding)
//   h    = blocks(x)                       (N, T+1, C), causal: the readout, last, sees every digit
//   out  = out_proj(LN_f(h[:, T])) / temperature                         (N, O)
//
// Init (text, docs/method.md#the-position-encoder): every weight, embedding table and the readout ~ N(0, 0.02), zero biases,
// LayerNorms at 1 / 0, and no 1/sqrt(2L) rescaling of the residual projections.
#pragma once

#include <memory>
#include <vector>

#include "engine/module.h"
#include "engine/module_list.h"
#include "engine/rng.h"
#include "models/layers.h"
#include "models/transformer_block.h"

namespace seqpe {

using engine::Tensor;

struct SeqPeEncoderConfig {
  int64_t dims = 1;         // n
  int64_t max_digits = 5;   // M: 5 for text (PE_MAX_POSITION 20000), 2 for the 100 x 100 image grid
  int64_t base = 10;        // V
  int64_t channels = 768;   // D_pe: 768 for text, 384 for ViT
  int64_t heads = 12;       // D_pe / 64
  int64_t layers = 2;       // SEQPE_LAYER_NUM
  int64_t out_features = 768;  // D_out: the main model's width (input_add, multi-head attn_*)
  bool causal = true;       // SEQPE_ATTN_DIRECTION; false gives the unused bidirectional option
  double residual_dropout = 0.1;  // SEQPE_RESID_PDROP (0.3 for ViT-B)
  double layer_norm_eps = 1e-5;
  double temperature = 1.0;  // SEQPE_TEMPERATURE
  double init_std = 0.02;
  engine::Dtype dtype = engine::Dtype::f32;

  int64_t sequence_length() const { return dims * max_digits; }
};

class SeqPeEncoder : public engine::Module {
 public:
  SeqPeEncoder(const SeqPeEncoderConfig& config, engine::Generator& init_gen);

  // digits: (N, T) i64 in [0, V) -> (N, O) on the parameters' device. `dropout_gen` draws the
  // residual dropout masks in training mode. Digits are read on the host (host digits save a copy).
  // The first block's LayerNorm and QKV projection run on the V·T + 1 distinct token inputs,
  // gathered per token, and the last block on the readout's row only (seqpe/encoder_block.h).
  Tensor forward(const Tensor& digits, engine::Generator& dropout_gen) const;

  const SeqPeEncoderConfig& config() const { return config_; }

 private:
  SeqPeEncoderConfig config_;
  std::shared_ptr<models::Embedding> digit_embedding_;  // (V, C)
  std::shared_ptr<models::Embedding> slot_embedding_;   // (T, C)
  std::shared_ptr<models::Embedding> dim_embedding_;    // (n, C), only when n > 1
  Tensor* readout_;                                     // (1, C)
  std::shared_ptr<engine::ModuleList<models::TransformerBlock>> blocks_;  // h
  std::shared_ptr<models::LayerNorm> ln_f_;
  std::shared_ptr<models::Linear> out_proj_;
  // (T) i64: the coordinate t div M that slot t belongs to; moved to the device of the latest forward.
  mutable Tensor slot_dims_;
};

}  // namespace seqpe
