#include "engine/optim/clip_grad.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "engine/autograd.h"
#include "engine/optim/optimizer.h"

namespace engine::optim {

namespace {

// Sum of squares in double. The range is cut into a fixed number of chunks whatever the thread
// count, each summed in order, and the chunk sums are added in order: a deterministic result.
template <typename T>
double sum_of_squares_kernel(const T* x, int64_t n) {
  constexpr int64_t chunks = 64;
  std::array<double, chunks> partial{};
  const int64_t chunk_size = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = std::min(n, c * chunk_size), end = std::min(n, begin + chunk_size);
    double sum = 0;
    for (int64_t i = begin; i < end; ++i) sum += double(x[i]) * double(x[i]);
    partial[size_t(c)] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void scale_kernel(T* x, int64_t n, double scale_d) {
  const T scale = T(scale_d);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  ENGINE_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].device().is_cpu())  // names the parameter only when there is something to say
      check_optimizer_device("clip_grad_norm", detail::concat("params[", i, "]"), params[i]);
    const Tensor grad = params[i].grad();
    if (!grad.defined()) continue;
    ENGINE_CHECK(grad.is_contiguous(), "clip_grad_norm: gradient of params[", i, "] (", grad.describe(),
                 ") is not contiguous");
    grads.push_back(grad);
  }
  double sum_of_squares = 0;
  for (const Tensor& grad : grads)
    sum_of_squares += ENGINE_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm",
                                            [&] { return sum_of_squares_kernel(grad.data<scalar_t>(), grad.numel()); });
  const double total_norm = std::sqrt(sum_of_squares);
  const double clip_coef = max_norm / (total_norm + 1e-6);
  if (clip_coef < 1)
    for (const Tensor& grad : grads)
      ENGINE_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm",
                            [&] { scale_kernel(grad.data<scalar_t>(), grad.numel(), clip_coef); });
  return total_norm;
}

}  // namespace engine::optim
