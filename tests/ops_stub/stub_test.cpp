// A program linked against the stub CUDA kernels (ops_cuda_stub) with a CUDA backend (the emulator's,
// so that CUDA tensors exist): every op on a CUDA tensor throws the stub's error naming the op, and
// the CPU ops are untouched. CMake links the whole ops archive into this test, so it also proves
// that every CUDA entry point the ops call has a stub definition.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"

using engine::Tensor;

TEST_CASE("ops on CUDA tensors throw the stub's error; the CPU ops run") {
  if (!cuda_ready()) return;
  engine::Generator gen(5);
  const Tensor x = Tensor::randn({3, 4}, gen), weight = Tensor::randn({4}, gen), bias = Tensor::randn({4}, gen);
  const engine::Device cuda = engine::Device::cuda(0);
  const Tensor x_cuda = x.to(cuda), weight_cuda = weight.to(cuda), bias_cuda = bias.to(cuda);
  CHECK_THROWS_WITH_AS(ops::layer_norm(x_cuda, weight_cuda, bias_cuda, 1e-5),
                       doctest::Contains("built without CUDA kernels: layer_norm"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::add(x_cuda, x_cuda), doctest::Contains("built without CUDA kernels: add"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::matmul(x_cuda, x_cuda, false, true), doctest::Contains("built without CUDA kernels: matmul"),
                       engine::Error);
  const Tensor q = Tensor::randn({1, 2, 3, 4}, gen).to(cuda);
  CHECK_THROWS_WITH_AS(ops::attention(q, q, q), doctest::Contains("built without CUDA kernels: attention"),
                       engine::Error);
  CHECK(ops::layer_norm(x, weight, bias, 1e-5).shape() == x.shape());
}
