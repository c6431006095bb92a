// One test body for ops::attention on CUDA, run by test_ops_emu (the kernel emulator) and
// test_ops_gpu (a real GPU): the CUDA op against the CPU op on fresh random inputs, forward output and
// the gradients of q, k, v and the score bias (backward(seed) on both devices, .grad() compared).
// And checks that run on any device (test_ops on the CPU, the emulator and a GPU on CUDA): the score
// bias against the widened attention it replaces, and NaN propagating as IEEE arithmetic has it.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//
// Tolerance (backend_checks::relative_error, max |got − ref| / max |ref|): f32 < 1e-5: both devices
// round each tile product and online-softmax update in f32, in different orders (the CPU tiles are 64
// keys, the GPU's 32 or 16), so they differ by a few ulps of the largest entries. f64 < 1e-12 for
// the same reason at double precision.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "common/backend_checks.h"

namespace attention_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;

struct Case {
  int64_t B, H, Tq, Tk, Dk, Dv;
  bool causal = false;
  bool alibi = false;
  bool key_mask = false;   // masks some keys, and every key of the last batch (its rows see none)
  bool strided = false;    // q and v reach the op as transposed views of (B, T, H, D) tensors
  double scale = 0.0;
  double dropout = 0.0;    // on the probabilities: both devices draw from generators in the same state
  int64_t bias_blocks = 0;  // P > 0: a score bias (P, H or 1, Tq, Tk) that requires grad
  bool bias_per_head = true;
};

inline std::string case_name(const Case& c) {
  return "B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) + " Tq=" + std::to_string(c.Tq) +
         " Tk=" + std::to_string(c.Tk) + " Dk=" + std::to_string(c.Dk) + " Dv=" + std::to_string(c.Dv) +
         (c.causal ? " causal" : "") + (c.alibi ? " alibi" : "") + (c.key_mask ? " key_mask" : "") +
         (c.strided ? " strided" : "") + (c.dropout > 0.0 ? " dropout=" + std::to_string(c.dropout) : "") +
         (c.bias_blocks > 0 ? " score_bias P=" + std::to_string(c.bias_blocks) + (c.bias_per_head ? " per head" : "")
                            : "");
}

// A leaf on each device holding the same random values, and the (B, H, T, D) view the op receives.
struct Input {
  Tensor cpu_leaf, cuda_leaf;
  Tensor cpu_view() const { return transposed ? cpu_leaf.transpose(1, 2) : cpu_leaf; }
  Tensor cuda_view() const { return transposed ? cuda_leaf.transpose(1, 2) : cuda_leaf; }
  bool transposed = false;
};

inline Input random_input(int64_t B, int64_t H, int64_t T, int64_t D, bool transposed, Dtype dtype,
                          engine::Generator& gen) {
  Input input;
  input.transposed = transposed;
  const Tensor values = Tensor::randn(transposed ? engine::Shape{B, T, H, D} : engine::Shape{B, H, T, D}, gen, dtype);
  input.cpu_leaf = values.clone().requires_grad_();
  input.cuda_leaf = values.to(kCuda).requires_grad_();
  return input;
}

// Options for both devices: the same slopes and key mask, each on its device.
inline std::pair<ops::AttentionOptions, ops::AttentionOptions> both_options(const Case& c, Dtype dtype,
                                                                           engine::Generator& gen) {
  ops::AttentionOptions cpu_options;
  cpu_options.causal = c.causal;
  cpu_options.scale = c.scale;
  if (c.alibi) {
    std::vector<double> slopes(size_t(c.H));
    for (size_t h = 0; h < slopes.size(); ++h) slopes[h] = 0.5 / double(h + 1) + 0.1 * gen.uniform();
    cpu_options.alibi_slopes = Tensor::from_vector(slopes, {c.H}, dtype);
  }
  if (c.key_mask) {
    std::vector<double> keep(size_t(c.B * c.Tk));
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 0; j < c.Tk; ++j)
        keep[size_t(b * c.Tk + j)] = (b < c.B - 1 && gen.uniform() > 0.3) ? 1.0 : 0.0;
    cpu_options.key_mask = Tensor::from_vector(keep, {c.B, c.Tk}, Dtype::f32);
  }
  ops::AttentionOptions cuda_options = cpu_options;
  if (c.alibi) cuda_options.alibi_slopes = cpu_options.alibi_slopes.to(kCuda);
  if (c.key_mask) cuda_options.key_mask = cpu_options.key_mask.to(kCuda);
  if (c.bias_blocks > 0) {
    const Tensor bias = Tensor::randn({c.bias_blocks, c.bias_per_head ? c.H : 1, c.Tq, c.Tk}, gen, dtype);
    cpu_options.score_bias = bias.clone().requires_grad_();
    cuda_options.score_bias = bias.to(kCuda).requires_grad_();
  }
  return {cpu_options, cuda_options};
}

// Runs one case forward and backward on both devices and compares output and gradients.
inline void check_case(const Case& c, Dtype dtype, engine::Generator& gen, double tolerance) {
  CAPTURE(case_name(c));
  CAPTURE(engine::dtype_name(dtype));
  const Input q = random_input(c.B, c.H, c.Tq, c.Dk, c.strided, dtype, gen);
  const Input k = random_input(c.B, c.H, c.Tk, c.Dk, false, dtype, gen);
  const Input v = random_input(c.B, c.H, c.Tk, c.Dv, c.strided, dtype, gen);
  auto [cpu_options, cuda_options] = both_options(c, dtype, gen);
  const Tensor seed = Tensor::randn({c.B, c.H, c.Tq, c.Dv}, gen, dtype);
  engine::Generator cpu_dropout(gen.seed() + 1), cuda_dropout(gen.seed() + 1);
  cpu_dropout.reserve(11);  // a nonzero offset, as later in a training run
  cuda_dropout.reserve(11);
  cpu_options.dropout_p = cuda_options.dropout_p = c.dropout;
  cpu_options.dropout_gen = &cpu_dropout;
  cuda_options.dropout_gen = &cuda_dropout;

  Tensor expected = ops::attention(q.cpu_view(), k.cpu_view(), v.cpu_view(), cpu_options);
  Tensor got = ops::attention(q.cuda_view(), k.cuda_view(), v.cuda_view(), cuda_options);
  REQUIRE(got.device() == kCuda);
  CHECK(relative_error(got, expected) < tolerance);
  CHECK(cuda_dropout.offset() == cpu_dropout.offset());

  expected.backward(seed);
  got.backward(seed.to(kCuda));
  CHECK(relative_error(q.cuda_leaf.grad(), q.cpu_leaf.grad()) < tolerance);
  CHECK(relative_error(k.cuda_leaf.grad(), k.cpu_leaf.grad()) < tolerance);
  CHECK(relative_error(v.cuda_leaf.grad(), v.cpu_leaf.grad()) < tolerance);
  if (c.bias_blocks > 0)
    CHECK(relative_error(cuda_options.score_bias.grad(), cpu_options.score_bias.grad()) < tolerance);
}

inline double tolerance_for(Dtype dtype) { return dtype == Dtype::f32 ? 1e-5 : 1e-12; }

// Odd lengths that straddle the GPU tiles (32 keys in f32, 16 in f64), every option, Tq ≠ Tk both
// ways (a KV-cache offset, and queries before the first key under the causal mask: rows with no
// visible key), Dk ≠ Dv, explicit scale and transposed views. `size` scales the lengths (1 for the
// emulator, larger on a GPU).
inline std::vector<Case> standard_cases(int64_t size) {
  return {
      {2, 3, 37 * size, 37 * size, 16, 16},
      {2, 3, 37 * size, 37 * size, 16, 16, true},
      {1, 2, 13 * size, 45 * size, 12, 20, true, true},
      {3, 2, 20 * size, 33 * size, 8, 8, true, false, true},
      {2, 2, 40 * size, 9 * size, 8, 12, true, false, false, true},
      {2, 2, 17 * size, 50 * size, 24, 8, false, true, true, true, 0.3},
  };
}

inline void check_standard_cases(Dtype dtype, int64_t size, engine::Generator& gen) {
  for (const Case& c : standard_cases(size)) check_case(c, dtype, gen, tolerance_for(dtype));
}

// Dropout on the probabilities: the CUDA kernels must regenerate the CPU's mask element for element
// (a different mask errs by O(1)), with every other option on or off, odd lengths, Dk ≠ Dv.
inline std::vector<Case> dropout_cases(int64_t size) {
  return {
      {2, 3, 37 * size, 37 * size, 16, 16, true, true, false, false, 0.0, 0.2},
      {2, 2, 13 * size, 45 * size, 12, 20, false, false, true, true, 0.0, 0.5},
      {2, 2, 40 * size, 9 * size, 8, 12, true, false, false, true, 0.3, 0.1},  // rows that see no key
  };
}

inline void check_dropout_cases(Dtype dtype, int64_t size, engine::Generator& gen) {
  for (const Case& c : dropout_cases(size)) check_case(c, dtype, gen, tolerance_for(dtype));
}

// Head sizes whose tiles need more than the default 48 KiB of shared memory (the launcher raises the
// limit) or a smaller tile (the backward of Dk = Dv = 160 falls back to half tiles).
inline void check_large_heads(Dtype dtype, engine::Generator& gen) {
  check_case({1, 1, 19, 35, 160, 160, true}, dtype, gen, tolerance_for(dtype));
}

// A score bias with every option it meets: position blocks shared by 2 sequences each (P = B/2) and
// one block for the batch, a plane per head and one for all heads, causal with Tq ≠ Tk, ALiBi, key
// mask, dropout, lengths that straddle the GPU tiles, and few keys.
inline std::vector<Case> score_bias_cases(int64_t size) {
  Case per_block{4, 3, 37 * size, 37 * size, 16, 16, true};
  per_block.bias_blocks = 2;
  Case shared{3, 2, 13 * size, 45 * size, 12, 20, true, true, true};
  shared.bias_blocks = 1;
  shared.bias_per_head = false;
  Case dropped{2, 2, 40 * size, 33 * size, 8, 12, false, false, false, true, 0.3, 0.2};
  dropped.bias_blocks = 2;
  Case few_keys{6, 2, 6, 6, 8, 8, true};
  few_keys.bias_blocks = 3;
  return {per_block, shared, dropped, few_keys};
}

inline void check_score_bias_cases(Dtype dtype, int64_t size, engine::Generator& gen) {
  for (const Case& c : score_bias_cases(size)) check_case(c, dtype, gen, tolerance_for(dtype));
}

// SeqPE's attn_scalar term as a score bias against the widened attention it replaces, on `device`:
//   softmax(scale · (q_i·k_j + α pq_i·pk_j)) = attention over [q; α·pq] and [k; pk] at the same scale,
// with pq: (P, Hb, Tq, E) and pk: (P, Hb, Tk, E) tiled over the batch (sequence b reads block b mod P)
// and the heads; the bias is scale · α · pq·pkᵀ, (P, Hb, Tq, Tk). Output and the gradients of q, k,
// v, pq and pk must agree (both are exact forms of one function; only the rounding differs).
struct WidenedCase {
  int64_t B, P, H, Hb, Tq, Tk, D, E;
  bool causal = false;
  double dropout = 0.0;
};

inline void check_score_bias_against_widened(const WidenedCase& c, Dtype dtype, engine::Device device,
                                             engine::Generator& gen, double tolerance) {
  CAPTURE(c.B);
  CAPTURE(c.P);
  CAPTURE(c.Hb);
  CAPTURE(c.Tq);
  CAPTURE(c.Tk);
  CAPTURE(engine::dtype_name(dtype));
  const double alpha = 0.7, scale = 1.0 / std::sqrt(double(c.D));
  auto leaf = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype).to(device).requires_grad_(); };
  const std::vector<Tensor> bias_form = {leaf({c.B, c.H, c.Tq, c.D}), leaf({c.B, c.H, c.Tk, c.D}),
                                         leaf({c.B, c.H, c.Tk, c.D}), leaf({c.P, c.Hb, c.Tq, c.E}),
                                         leaf({c.P, c.Hb, c.Tk, c.E})};
  std::vector<Tensor> widened_form;
  for (const Tensor& x : bias_form) widened_form.push_back(x.detach().clone().requires_grad_());
  const Tensor seed = Tensor::randn({c.B, c.H, c.Tq, c.D}, gen, dtype).to(device);
  engine::Generator bias_dropout(gen.seed() + 3), widened_dropout(gen.seed() + 3);

  ops::AttentionOptions options;
  options.causal = c.causal;
  options.scale = scale;
  options.dropout_p = c.dropout;
  options.dropout_gen = &bias_dropout;
  options.score_bias = ops::matmul(bias_form[3], bias_form[4], false, true) * (scale * alpha);
  const Tensor got = ops::attention(bias_form[0], bias_form[1], bias_form[2], options);

  // (P, Hb, T, E) -> (B, H, T, E): sequence b reads block b mod P, every head plane 0 when Hb = 1.
  auto tiled = [&](const Tensor& x) {
    const Tensor blocks =
        x.unsqueeze(0).expand({c.B / c.P, c.P, c.Hb, x.size(2), c.E}).reshape({c.B, c.Hb, x.size(2), c.E});
    return blocks.expand({c.B, c.H, x.size(2), c.E});
  };
  options.score_bias = Tensor();
  options.dropout_gen = &widened_dropout;
  const Tensor expected = ops::attention(ops::concat({widened_form[0], tiled(widened_form[3]) * alpha}, 3),
                                         ops::concat({widened_form[1], tiled(widened_form[4])}, 3), widened_form[2],
                                         options);
  CHECK(relative_error(got, expected) < tolerance);
  got.backward(seed);
  expected.backward(seed);
  for (size_t i = 0; i < bias_form.size(); ++i) {
    CAPTURE(i);  // q, k, v, pq, pk
    CHECK(relative_error(bias_form[i].grad(), widened_form[i].grad()) < tolerance);
  }
}

// Blocks of 2 sequences and one block for all, a plane per head and one shared, causal with Tq ≠ Tk,
// dropout (the mask of element (b, h, i, j) is the same in both forms), few keys and lengths past the
// CPU kernels' tiles (`long_keys`: 300, for the CPU only; the emulator takes 45).
inline std::vector<WidenedCase> widened_cases(int64_t long_keys) {
  return {{4, 2, 3, 3, 37, 37, 16, 16, true},
          {3, 1, 2, 1, 13, long_keys, 12, 12, true},
          {2, 2, 2, 2, 40, 33, 8, 8, false, 0.2},
          {6, 3, 2, 2, 6, 6, 8, 8, true}};
}

inline void check_widened_cases(Dtype dtype, engine::Device device, int64_t long_keys, engine::Generator& gen) {
  // f32: the two forms round differently (a bias added after the scale, against a wider dot product),
  // by a few ulps of the largest entries: the f32 tolerance of the rest of these checks.
  for (const WidenedCase& c : widened_cases(long_keys))
    check_score_bias_against_widened(c, dtype, device, gen, tolerance_for(dtype));
}

// One NaN in a key: the rows that see it (queries at or after it under the causal mask) are NaN in
// the output and in their query gradients; the output rows before it and of the other heads and
// sequences stay finite. (Their gradients may be NaN: a masked key's zero score gradient times its
// NaN is NaN, as in any dS·K product.) At lengths of the few-keys kernel and of the tiled ones.
inline void check_nan_propagates(Dtype dtype, engine::Device device, int64_t T, engine::Generator& gen) {
  CAPTURE(T);
  CAPTURE(engine::dtype_name(dtype));
  const int64_t B = 2, H = 2, D = 8, poisoned_key = T / 3;
  Tensor k_values = Tensor::randn({B, H, T, D}, gen, dtype);
  std::vector<double> k_host = k_values.to_vector<double>();
  k_host[size_t(poisoned_key * D + 2)] = std::numeric_limits<double>::quiet_NaN();  // batch 0, head 0
  const Tensor q = Tensor::randn({B, H, T, D}, gen, dtype).to(device).requires_grad_();
  const Tensor k = Tensor::from_vector(k_host, {B, H, T, D}, dtype).to(device).requires_grad_();
  const Tensor v = Tensor::randn({B, H, T, D}, gen, dtype).to(device).requires_grad_();
  ops::AttentionOptions options;
  options.causal = true;
  const Tensor out = ops::attention(q, k, v, options);
  ops::sum(out).backward();
  const std::vector<double> values = out.to_vector<double>(), dq = q.grad().to_vector<double>();
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < T; ++i) {
      const bool sees_nan = bh == 0 && i >= poisoned_key;
      CAPTURE(bh);
      CAPTURE(i);
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = size_t((bh * T + i) * D + d);
        CHECK(std::isnan(values[at]) == sees_nan);
        if (sees_nan) CHECK(std::isnan(dq[at]));
      }
    }
}

}  // namespace attention_checks
