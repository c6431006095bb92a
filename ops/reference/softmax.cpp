// Kernel 0 of softmax and log-softmax (ops/reference/softmax.h): one line at a time, in double.
#include "ops/reference/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/shape.h"

namespace ops::reference {

namespace {

// The tensor seen as (outer, n, inner) around dim; each (outer, inner) pair is one line of n values.
Tensor softmax_lines(const Tensor& x, int64_t dim, bool log) {
  dim = engine::wrap_dim(dim, x.dim(), "reference::softmax");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  const int64_t n = x.size(dim);
  if (n == 0) return Tensor::zeros(x.shape(), engine::Dtype::f64);  // no lines
  const std::vector<double> in = x.to_vector<double>();
  std::vector<double> out(in.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t r) { return size_t((o * n + r) * inner + i); };
      double max = in[at(0)];
      for (int64_t r = 1; r < n; ++r) max = std::max(max, in[at(r)]);
      double sum = 0.0;
      for (int64_t r = 0; r < n; ++r) sum += std::exp(in[at(r)] - max);
      for (int64_t r = 0; r < n; ++r)
        out[at(r)] = log ? in[at(r)] - max - std::log(sum) : std::exp(in[at(r)] - max) / sum;
    }
  return Tensor::from_vector(out, x.shape(), engine::Dtype::f64);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_lines(x, dim, false); }

Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_lines(x, dim, true); }

}  // namespace ops::reference
