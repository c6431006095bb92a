// Parameterised layers as modules: thin owners of weights around the ops, with PyTorch's names
// ("weight", "bias") and initialisations given by the model that builds them.
//
//   N = any leading dims, C = channels (in), O = out features, V = table rows
#pragma once

#include "engine/module.h"
#include "engine/rng.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"

namespace models {

using engine::Tensor;

// y = act(x · weightᵀ + bias). weight: (O, C), bias: (O). Initialised N(0, init_std), zero bias.
class Linear : public engine::Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, double init_std, engine::Generator& gen,
         engine::Dtype dtype = engine::Dtype::f32);
  // x: (N..., C) -> (N..., O)
  Tensor forward(const Tensor& x, ops::Activation activation = ops::Activation::none) const;
  // x: (N..., C) -> (N..., count): outputs [first, first + count) of forward only, the same values.
  Tensor forward_outputs(const Tensor& x, int64_t first, int64_t count) const;
  Tensor& weight() { return *weight_; }
  Tensor* bias() { return bias_; }

 private:
  Tensor* weight_;
  Tensor* bias_ = nullptr;
};

// LayerNorm over the last dim, weight 1 and bias 0 at start.
class LayerNorm : public engine::Module {
 public:
  LayerNorm(int64_t channels, double eps, engine::Dtype dtype = engine::Dtype::f32);
  Tensor forward(const Tensor& x) const;  // (N..., C) -> (N..., C)
  // x, branch: (N..., C) -> {x + branch, its norm}: a pending residual add done by the norm that
  // reads it, in one op (ops::residual_layer_norm). branch undefined: {x, forward(x)}.
  ops::ResidualLayerNorm forward(const Tensor& x, const Tensor& branch) const;

 private:
  Tensor* weight_;
  Tensor* bias_;
  double eps_;
};

// Lookup table (V, C), initialised N(0, init_std).
class Embedding : public engine::Module {
 public:
  Embedding(int64_t rows, int64_t channels, double init_std, engine::Generator& gen,
            engine::Dtype dtype = engine::Dtype::f32);
  Tensor forward(const Tensor& indices) const;  // (N...) -> (N..., C)
  Tensor& weight() { return *weight_; }

 private:
  Tensor* weight_;
};

}  // namespace models
