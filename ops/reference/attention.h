// Kernel 0 of attention: the readable version of the op (ops/attention.h), forward and backward in
// double with the whole (Tq × Tk) score matrix of a head built row by row, the oracle the tests
// compare the tiled kernels against (ops/cpu/attention.h, ops/cuda/attention.h). For one batch
// index b, head h and query row i (at absolute position i + Tk − Tq, as with a KV cache):
//   s_ij = τ·q_i·k_j + slope_h·(j − position_i)        τ = the scale, 1/√Dk by default; ALiBi
//   s_ij = −∞ where key j is masked (causal: j after position_i; key_mask: zero for key j)
//   P_ij = e^(s_ij − m_i) / Σ_l e^(s_il − m_i),  m_i = max_j s_ij    (a row with no visible key: 0)
//   out_i = Σ_j P̃_ij·v_j,  P̃_ij = P_ij·f_ij,  f_ij = M_ij / (1 − p)   (dropout; f = 1 without)
// and for an upstream gradient dO (docs/one_step.md derives it):
//   dv_j = Σ_i P̃_ij·dO_i,  dP_ij = f_ij·(dO_i·v_j),  δ_i = Σ_j P_ij·dP_ij,  dS_ij = P_ij·(dP_ij − δ_i)
//   dq_i = τ·Σ_j dS_ij·k_j,  dk_j = τ·Σ_i dS_ij·q_i
// The dropout mask M is the one the op's next call draws from options.dropout_gen (the reference
// reads the generator's state and leaves it as it is). The score bias is not covered here: its
// oracle is the widened attention it replaces (tests/common/attention_checks.h).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#pragma once

#include "engine/tensor.h"
#include "ops/attention.h"

namespace ops::reference {

using engine::Tensor;

// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv), any floating dtype and device ->
// (B, H, Tq, Dv), f64 on the CPU.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

struct AttentionGradients {
  Tensor dq;  // (B, H, Tq, Dk)
  Tensor dk;  // (B, H, Tk, Dk)
  Tensor dv;  // (B, H, Tk, Dv)
};

// The gradients of attention(q, k, v, options) for the upstream gradient dout: (B, H, Tq, Dv), f64
// on the CPU.
AttentionGradients attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionOptions& options, const Tensor& dout);

}  // namespace ops::reference
