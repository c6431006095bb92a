// Linear, LayerNorm and Embedding (models/layers.h): their parameters and initialisation, and the
// ops they call.
#include "models/layers.h"

#include "engine/autograd.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"

namespace models {

namespace {
Tensor normal_tensor(const engine::Shape& shape, double std, engine::Generator& gen, engine::Dtype dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  engine::fill_random_(t, gen, {engine::RandomDistribution::normal, 0.0, std});
  return t;
}
}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, double init_std, engine::Generator& gen,
               engine::Dtype dtype) {
  weight_ = &register_parameter("weight", normal_tensor({out_features, in_features}, init_std, gen, dtype));
  if (bias) bias_ = &register_parameter("bias", Tensor::zeros({out_features}, dtype));
}

Tensor Linear::forward(const Tensor& x, ops::Activation activation) const {
  return ops::linear(x, *weight_, bias_ ? *bias_ : Tensor(), activation);
}

Tensor Linear::forward_outputs(const Tensor& x, int64_t first, int64_t count) const {
  return ops::linear(x, weight_->narrow(0, first, count), bias_ ? bias_->narrow(0, first, count) : Tensor());
}

LayerNorm::LayerNorm(int64_t channels, double eps, engine::Dtype dtype) : eps_(eps) {
  weight_ = &register_parameter("weight", Tensor::ones({channels}, dtype));
  bias_ = &register_parameter("bias", Tensor::zeros({channels}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) const { return ops::layer_norm(x, *weight_, *bias_, eps_); }

ops::ResidualLayerNorm LayerNorm::forward(const Tensor& x, const Tensor& branch) const {
  if (!branch.defined()) return {x, forward(x)};
  return ops::residual_layer_norm(x, branch, *weight_, *bias_, eps_);
}

Embedding::Embedding(int64_t rows, int64_t channels, double init_std, engine::Generator& gen, engine::Dtype dtype) {
  weight_ = &register_parameter("weight", normal_tensor({rows, channels}, init_std, gen, dtype));
}

Tensor Embedding::forward(const Tensor& indices) const { return ops::embedding(indices, *weight_); }

}  // namespace models
