// One check body for linear's weight gradient accumulated in place (engine::leaf_grad_destination:
// the weight-gradient GEMM writes .grad with beta = 0 on the first micro-batch and adds into it with
// beta = 1 on later ones), run on the CPU (tests/ops) and on CUDA (tests/ops_emu, tests/ops_gpu).
//
// The reference is the engine's own add: the same weight reached through a view (a non-leaf, so
// linear gets no destination and returns a fresh gradient that the engine adds into .grad). Both
// runs see the same inputs, so the first micro-batch is the same GEMM and must agree bit for bit;
// later ones add the product to .grad inside the GEMM instead of after it, a different summation
// order, bounded below. A weight used twice (tied embeddings and lm head, or two linear layers) is
// the engine's add on both sides and must agree bit for bit.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/precision.h"
#include "ops/reduce.h"

namespace grad_in_place_checks {

using backend_checks::relative_error;
using engine::Device;
using engine::Dtype;
using engine::Tensor;

// The bound on the accumulated gradients: f32 sums of up to a few hundred products added to .grad
// before or after the GEMM's own sum differ by a few roundings of the running value (2^-24 each,
// relative to the largest entry); f64 likewise at 2^-53.
inline double accumulation_tolerance(Dtype dtype) { return dtype == Dtype::f32 ? 1e-6 : 1e-14; }

// Three micro-batches through `model(weight, micro_batch)` (which returns a scalar loss), backward
// after each; returns the weight's gradient after the first and after the last.
struct Gradients {
  Tensor first, last;
};
inline Gradients accumulate_three(const std::function<Tensor(const Tensor&, int)>& model, Tensor weight) {
  Gradients out;
  for (int micro_batch = 0; micro_batch < 3; ++micro_batch) {
    model(weight, micro_batch).backward();
    if (micro_batch == 0) out.first = weight.grad().to(Device::cpu()).clone();
  }
  out.last = weight.grad().to(Device::cpu());
  return out;
}

inline void check_linear_weight_gradient_in_place(engine::Generator& gen, Device device, Dtype dtype) {
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype).to(device); };
  const double tolerance = accumulation_tolerance(dtype);
  const int64_t I = 24, O = 40;
  const Tensor weight_values = random({O, I}), bias = random({O});
  std::vector<Tensor> inputs, seeds;  // one per micro-batch
  for (int m = 0; m < 3; ++m) {
    inputs.push_back(random({3, 37, I}));
    seeds.push_back(random({3, 37, O}));
  }
  // x transposed in memory (linear reads it as a transposed GEMM operand), with bias and GELU.
  const auto loss = [&](const Tensor& weight, int m) {
    const Tensor x = inputs[size_t(m)].transpose(0, 1).contiguous().transpose(0, 1);
    return ops::sum(ops::mul(ops::linear(x, weight, bias, ops::Activation::gelu), seeds[size_t(m)]));
  };
  const auto in_place = [&] {
    return accumulate_three(loss, weight_values.clone().requires_grad_());
  };
  const auto engine_add = [&] {
    Tensor leaf = weight_values.clone().requires_grad_();
    accumulate_three([&](const Tensor&, int m) { return loss(leaf.view({O, I}), m); }, leaf);
    return Gradients{Tensor(), leaf.grad().to(Device::cpu())};
  };
  for (ops::Precision precision : {ops::Precision::fp32, ops::Precision::bf16}) {
    if (precision == ops::Precision::bf16 && dtype != Dtype::f32) continue;
    const std::string products = ops::precision_name(precision);
    CAPTURE(products);
    const ops::PrecisionScope scope(precision);
    const Gradients got = in_place();
    // The first micro-batch alone: the same GEMM writing .grad, bit for bit.
    Tensor reference_leaf = weight_values.clone().requires_grad_();
    loss(reference_leaf.view({O, I}), 0).backward();
    CHECK(relative_error(got.first, reference_leaf.grad().to(Device::cpu())) == 0.0);
    const double error = relative_error(got.last, engine_add().last);
    CHECK(error <= tolerance);
    MESSAGE("in-place accumulation over 3 micro-batches vs the engine's add: relative error ", error);
  }

  // No rows: the first micro-batch writes zeros, a later one leaves .grad as it was.
  Tensor weight = weight_values.clone().requires_grad_();
  ops::sum(ops::linear(Tensor::zeros({0, I}, dtype, device), weight)).backward();
  CHECK(relative_error(weight.grad().to(Device::cpu()), Tensor::zeros({O, I}, dtype)) == 0.0);
  loss(weight, 0).backward();
  const Tensor after_one = weight.grad().to(Device::cpu()).clone();
  ops::sum(ops::linear(Tensor::zeros({0, I}, dtype, device), weight)).backward();
  CHECK(relative_error(weight.grad().to(Device::cpu()), after_one) == 0.0);

  // Tied weights: an embedding table that is also the output layer (GPT-2's wte and lm head), and
  // one matrix in two linear layers. The engine adds the uses on both sides: bit for bit.
  const Tensor ids = Tensor::from_indices({3, 0, 7, 7, 12, 5}, {2, 3}).to(device);
  const auto tied = [&](const Tensor& table, int m) {
    const Tensor h = ops::embedding(ids, table);                         // (2, 3, I) with table (O, I)
    const Tensor logits = ops::linear(h, table);                         // (2, 3, O)
    const Tensor again = ops::linear(ops::linear(logits, table.transpose(0, 1)), table);  // (2, 3, O)
    return ops::sum(ops::mul(again, seeds[size_t(m)].narrow(0, 0, 2).narrow(1, 0, 3)));
  };
  Tensor table = weight_values.clone().requires_grad_();
  const Gradients tied_got = accumulate_three(tied, table);
  Tensor table_ref = weight_values.clone().requires_grad_();
  accumulate_three([&](const Tensor&, int m) { return tied(table_ref.view({O, I}), m); }, table_ref);
  CHECK(relative_error(tied_got.last, table_ref.grad().to(Device::cpu())) == 0.0);
}

}  // namespace grad_in_place_checks
