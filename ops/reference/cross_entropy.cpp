// Kernel 0 of cross_entropy (ops/reference/cross_entropy.h): one row at a time, in double.
#include "ops/reference/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"

namespace ops::reference {

namespace {

// The rows of logits and their targets, as dense arrays, checked.
struct Rows {
  int64_t N, V;
  std::vector<double> logits;   // (N, V)
  std::vector<int64_t> targets;  // (N)
};

Rows rows_of(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const char* op) {
  ENGINE_CHECK(logits.dim() >= 1 && targets.numel() * logits.size(-1) == logits.numel(), op, ": logits ",
               logits.describe(), " and targets ", targets.describe(), " must be (..., V) and (...)");
  Rows rows{targets.numel(), logits.size(-1), logits.to_vector<double>(), targets.to_vector<int64_t>()};
  for (int64_t n = 0; n < rows.N; ++n) {
    const int64_t t = rows.targets[size_t(n)];
    ENGINE_CHECK(t == ignore_index || (t >= 0 && t < rows.V), op, ": target ", t, " at row ", n,
                 " is out of range for V = ", rows.V);
  }
  return rows;
}

// log Σ_j e^(x_j) of one row, with the maximum subtracted first.
double log_sum_exp(const double* x, int64_t V) {
  const double m = *std::max_element(x, x + V);
  double sum = 0.0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(x[j] - m);
  return m + std::log(sum);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing) {
  const Rows rows = rows_of(logits, targets, ignore_index, "reference::cross_entropy");
  const double eps = label_smoothing;
  std::vector<double> losses(size_t(rows.N), 0.0);
  for (int64_t n = 0; n < rows.N; ++n) {
    const int64_t t = rows.targets[size_t(n)];
    if (t == ignore_index) continue;
    const double* x = rows.logits.data() + n * rows.V;
    const double lse = log_sum_exp(x, rows.V);
    double mean_x = 0.0;
    for (int64_t j = 0; j < rows.V; ++j) mean_x += x[j] / double(rows.V);
    losses[size_t(n)] = (1.0 - eps) * (lse - x[t]) + eps * (lse - mean_x);
  }
  return Tensor::from_vector(losses, targets.shape(), engine::Dtype::f64);
}

Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                              double label_smoothing) {
  const Rows rows = rows_of(logits, targets, ignore_index, "reference::cross_entropy_backward");
  const double eps = label_smoothing;
  std::vector<double> grad(rows.logits.size(), 0.0);
  for (int64_t n = 0; n < rows.N; ++n) {
    const int64_t t = rows.targets[size_t(n)];
    if (t == ignore_index) continue;
    const double* x = rows.logits.data() + n * rows.V;
    const double lse = log_sum_exp(x, rows.V);
    for (int64_t j = 0; j < rows.V; ++j) {
      const double softmax = std::exp(x[j] - lse);
      const double target_probability = (j == t ? 1.0 - eps : 0.0) + eps / double(rows.V);
      grad[size_t(n * rows.V + j)] = softmax - target_probability;
    }
  }
  return Tensor::from_vector(grad, logits.shape(), engine::Dtype::f64);
}

}  // namespace ops::reference
