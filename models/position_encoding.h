// The hooks through which a position encoding enters a transformer (docs/method.md#how-the-encoding-enters-the-model, docs/method.md#baselines).
//
// A model calls them in this order on every forward:
//   prepare(positions)               once: compute what this forward's positions need (tables,
//                                    SeqPE's encoder output)
//   input_embedding()                a tensor added to the token embeddings before the first
//                                    layer (APE, sinusoidal, SeqPE input_add), or undefined
//   transform_qk(layer, q, k)        per layer: rotate (RoPE), add or multiply position vectors
//                                    (SeqPE attn_add / attn_mul), or widen q and k with position
//                                    vectors (SeqPE attn_scalar under no grad: [q; α·pq]·[k; pk])
//   attention_options(layer, opts)   per layer: ALiBi slopes, the score scale, a score bias (SeqPE
//                                    attn_scalar in training: α·pq·pkᵀ/sqrt(d) per position block)
// A PE that does not use a hook keeps the default (no effect), so NoPE is the base class as is.
//
//   B = batch, T = sequence length (tokens, or 1 + grid cells with a class token), C = width,
//   H = heads, D = head dim
#pragma once

#include <string>

#include "engine/module.h"
#include "ops/attention.h"

namespace models {

using engine::Tensor;

// The positions of one forward pass. They are host-side metadata: a PE reads them on the CPU and
// builds what it needs on `device`, caching it while the positions and the device stay the same.
struct Positions {
  // 1-D: absolute position of each token, (T) i64 on the CPU. 2-D (images): undefined; the grid
  // below holds.
  Tensor ids;
  // 2-D: the patch grid (rows, columns), in raster order after an optional class token.
  int64_t grid_h = 0, grid_w = 0;
  bool class_token = false;
  // Sequences in the batch: the PE may depend on it only through broadcasting.
  int64_t batch = 1;
  // Where the model's activations live: every tensor a hook returns is on it.
  engine::Device device = engine::Device::cpu();

  int64_t length() const { return ids.defined() ? ids.numel() : grid_h * grid_w + (class_token ? 1 : 0); }
};

class PositionEncoding : public engine::Module {
 public:
  virtual std::string name() const { return "nope"; }
  virtual void prepare(const Positions& positions) { positions_ = positions; }
  // Added to the (B, T, C) token embeddings; (T, C) or (B, T, C); undefined for none.
  virtual Tensor input_embedding() { return Tensor(); }
  // q, k: (B, H, T, D) for this layer; may be replaced (even with a different last dim).
  virtual void transform_qk(int layer, Tensor& q, Tensor& k) {}
  virtual void attention_options(int layer, ops::AttentionOptions& options) {}

 protected:
  Positions positions_;
};

}  // namespace models
