// Kernel 0 of layer_norm (ops/reference/layernorm.h): one row at a time, in double, every quantity
// of the formulas computed as written.
#include "ops/reference/layernorm.h"

#include <cmath>
#include <vector>

#include "engine/error.h"

namespace ops::reference {

namespace {

// One row's mean μ and reciprocal standard deviation r = 1/√(σ² + ε).
struct RowStatistics {
  double mean, rstd;
};

RowStatistics statistics(const double* x, int64_t C, double eps) {
  double mean = 0.0;
  for (int64_t c = 0; c < C; ++c) mean += x[c];
  mean /= double(C);
  double variance = 0.0;
  for (int64_t c = 0; c < C; ++c) variance += (x[c] - mean) * (x[c] - mean);
  variance /= double(C);
  return {mean, 1.0 / std::sqrt(variance + eps)};
}

void check_shapes(const Tensor& x, const Tensor& weight, const char* op) {
  ENGINE_CHECK(x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1), op, ": x ", x.describe(),
               " and weight ", weight.describe(), " must be (..., C) and (C)");
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_shapes(x, weight, "reference::layer_norm");
  const int64_t C = x.size(-1), N = C == 0 ? 0 : x.numel() / C;
  const std::vector<double> X = x.to_vector<double>(), gamma = weight.to_vector<double>();
  const std::vector<double> beta = bias.defined() ? bias.to_vector<double>() : std::vector<double>(size_t(C), 0.0);
  std::vector<double> Y(X.size());
  for (int64_t n = 0; n < N; ++n) {
    const double* x_row = X.data() + n * C;
    const RowStatistics s = statistics(x_row, C, eps);
    for (int64_t c = 0; c < C; ++c) {
      const double x_hat = (x_row[c] - s.mean) * s.rstd;
      Y[size_t(n * C + c)] = gamma[size_t(c)] * x_hat + beta[size_t(c)];
    }
  }
  return Tensor::from_vector(Y, x.shape(), engine::Dtype::f64);
}

LayerNormGradients layer_norm_backward(const Tensor& x, const Tensor& weight, double eps, const Tensor& dy) {
  check_shapes(x, weight, "reference::layer_norm_backward");
  ENGINE_CHECK(dy.shape() == x.shape(), "reference::layer_norm_backward: dy ", dy.describe(), " must have x's shape ",
               x.shape_string());
  const int64_t C = x.size(-1), N = C == 0 ? 0 : x.numel() / C;
  const std::vector<double> X = x.to_vector<double>(), gamma = weight.to_vector<double>(), G = dy.to_vector<double>();
  std::vector<double> dX(X.size()), dgamma(size_t(C), 0.0), dbeta(size_t(C), 0.0);
  std::vector<double> x_hat(static_cast<size_t>(C)), n_grad(static_cast<size_t>(C));
  for (int64_t n = 0; n < N; ++n) {
    const double* x_row = X.data() + n * C;
    const double* g_row = G.data() + n * C;
    const RowStatistics s = statistics(x_row, C, eps);
    double mean_n = 0.0, mean_n_x_hat = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      x_hat[size_t(c)] = (x_row[c] - s.mean) * s.rstd;
      n_grad[size_t(c)] = g_row[c] * gamma[size_t(c)];  // ∂L/∂x̂_c
      mean_n += n_grad[size_t(c)] / double(C);
      mean_n_x_hat += n_grad[size_t(c)] * x_hat[size_t(c)] / double(C);
      dgamma[size_t(c)] += g_row[c] * x_hat[size_t(c)];
      dbeta[size_t(c)] += g_row[c];
    }
    for (int64_t c = 0; c < C; ++c)
      dX[size_t(n * C + c)] = s.rstd * (n_grad[size_t(c)] - mean_n - x_hat[size_t(c)] * mean_n_x_hat);
  }
  return {Tensor::from_vector(dX, x.shape(), engine::Dtype::f64), Tensor::from_vector(dgamma, {C}, engine::Dtype::f64),
          Tensor::from_vector(dbeta, {C}, engine::Dtype::f64)};
}

// The residual in double: x + branch as written, checked to be of one shape.
Tensor residual_of(const Tensor& x, const Tensor& branch) {
  ENGINE_CHECK(branch.shape() == x.shape(), "reference::residual_layer_norm: branch ", branch.describe(),
               " must have x's shape ", x.shape_string());
  const std::vector<double> X = x.to_vector<double>(), A = branch.to_vector<double>();
  std::vector<double> R(X.size());
  for (size_t i = 0; i < X.size(); ++i) R[i] = X[i] + A[i];
  return Tensor::from_vector(R, x.shape(), engine::Dtype::f64);
}

ResidualLayerNormOutputs residual_layer_norm(const Tensor& x, const Tensor& branch, const Tensor& weight,
                                             const Tensor& bias, double eps) {
  const Tensor residual = residual_of(x, branch);
  return {residual, layer_norm(residual, weight, bias, eps)};
}

LayerNormGradients residual_layer_norm_backward(const Tensor& x, const Tensor& branch, const Tensor& weight,
                                                double eps, const Tensor& d_residual, const Tensor& dy) {
  LayerNormGradients g = layer_norm_backward(residual_of(x, branch), weight, eps, dy);
  ENGINE_CHECK(d_residual.shape() == x.shape(), "reference::residual_layer_norm_backward: d_residual ",
               d_residual.describe(), " must have x's shape ", x.shape_string());
  std::vector<double> dX = g.dx.to_vector<double>();
  const std::vector<double> dR = d_residual.to_vector<double>();
  for (size_t i = 0; i < dX.size(); ++i) dX[i] += dR[i];
  g.dx = Tensor::from_vector(dX, x.shape(), engine::Dtype::f64);
  return g;
}

}  // namespace ops::reference
