// Kernel 0 of matmul (ops/reference/matmul.h): the triple loop.
#include "ops/reference/matmul.h"

#include <vector>

#include "engine/error.h"
#include "engine/shape.h"

namespace ops::reference {

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  ENGINE_CHECK(a.dim() >= 2 && b.dim() >= 2, "reference::matmul: operands must have at least 2 dims, got ",
               a.describe(), " and ", b.describe());
  const Tensor op_a = transpose_a ? a.transpose(-1, -2) : a, op_b = transpose_b ? b.transpose(-1, -2) : b;
  const int64_t M = op_a.size(-2), K = op_a.size(-1), N = op_b.size(-1);
  ENGINE_CHECK(op_b.size(-2) == K, "reference::matmul: op(a) is ", op_a.shape_string(), " but op(b) is ",
               op_b.shape_string());
  // Broadcast the batch dims, then read both operands as dense row-major arrays in double.
  engine::Shape batch = engine::broadcast_shapes(engine::Shape(op_a.shape().begin(), op_a.shape().end() - 2),
                                                 engine::Shape(op_b.shape().begin(), op_b.shape().end() - 2),
                                                 "reference::matmul");
  engine::Shape a_shape = batch, b_shape = batch, c_shape = batch;
  a_shape.insert(a_shape.end(), {M, K});
  b_shape.insert(b_shape.end(), {K, N});
  c_shape.insert(c_shape.end(), {M, N});
  const std::vector<double> A = op_a.expand(a_shape).to_vector<double>();
  const std::vector<double> B = op_b.expand(b_shape).to_vector<double>();
  const int64_t batches = engine::shape_numel(batch);
  std::vector<double> C(size_t(batches * M * N));
  for (int64_t i = 0; i < batches; ++i) {
    const double* A_i = A.data() + i * M * K;
    const double* B_i = B.data() + i * K * N;
    double* C_i = C.data() + i * M * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) sum += A_i[m * K + k] * B_i[k * N + n];
        C_i[m * N + n] = sum;
      }
  }
  return Tensor::from_vector(C, c_shape, engine::Dtype::f64);
}

}  // namespace ops::reference
