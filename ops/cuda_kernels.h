// The ops' CUDA kernels as ops/*.cpp call them: one function per kernel launch, on tensors, with no
// CUDA type in sight, so the ops are compiled once and read as plain code:
//
//   if (x.device().is_cuda()) cuda::layernorm_forward(out, mean, rstd, residual, x, branch, weight, bias, eps);
//   else ENGINE_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] { cpu::layernorm_forward<scalar_t>(...); });
//
// A program links exactly one implementation of these declarations (ops/CMakeLists.txt):
//   ops_cuda       ops/cuda/kernels.cpp + the .cu kernels built by nvcc + cuDNN (-DENGINE_CUDA=ON)
//   ops_cuda_emu   the same kernels.cpp and .cu built by the host compiler under the kernel emulator
//   ops_cuda_stub  ops/cuda/kernels_stub.cpp: every function throws "built without CUDA kernels: <op>"
// Each function makes the tensors' GPU current (engine/cuda/device_guard.h), picks the kernel for
// their dtype and launches it on the current stream; the kernels' contracts are in ops/cuda/*.h.
//
// Every tensor is on one CUDA device and, unless strides are passed beside it, contiguous. An
// undefined tensor stands for an output that is not wanted (a null pointer to the kernel). `op`
// names the public op in errors.
#pragma once

#include <cstdint>
#include <string>

#include "engine/tensor.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/elementwise.h"

namespace ops::cuda {

using engine::Shape;
using engine::Tensor;

// ---- Elementwise (ops/cuda/elementwise.h). Shapes broadcast; `*_strides` walk an operand over
// the output's shape (0 along the dims it is broadcast on); outputs use their own strides. ----

// out = a (kind) b.
void binary_forward(const char* op, cpu::BinaryOp kind, const Tensor& out, const Tensor& a, const Shape& a_strides,
                    const Tensor& b, const Shape& b_strides);
// grad_b = −grad_out · a / b², over grad_out's shape.
void div_backward_divisor(const Tensor& grad_b, const Tensor& grad_out, const Tensor& a, const Shape& a_strides,
                          const Tensor& b, const Shape& b_strides);
// out = kind(x) (with `scalar` for the scalar ops); x and out strided.
void unary_forward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& out, const Tensor& x);
// grad_x = grad_out · kind'(saved); `saved` is the input or output (cpu::unary_backward_uses_output).
void unary_backward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& grad_x, const Tensor& grad_out,
                    const Tensor& saved);
// out = condition ? a : b, for a condition of any dtype.
void where_forward(const char* op, const Tensor& out, const Tensor& condition, const Shape& condition_strides,
                   const Tensor& a, const Shape& a_strides, const Tensor& b, const Shape& b_strides);
// grad = grad_out where (condition != 0) == keep_true, zero elsewhere.
void where_backward(const char* op, bool keep_true, const Tensor& grad, const Tensor& condition,
                    const Shape& condition_strides, const Tensor& grad_out);

// ---- Reductions over the middle dim of a contiguous (outer, reduce, inner) array (ops/cuda/reduce.h). ----

// out: (outer, inner) = Σ x over the reduced dim / divisor.
void sum_forward(const char* op, const Tensor& out, const Tensor& x, int64_t outer, int64_t reduce, int64_t inner,
                 double divisor);
// grad = grad_out broadcast to grad's shape (grad_out_strides walk it there, 0 on reduced dims) · scale.
void sum_backward(const char* op, const Tensor& grad, const Tensor& grad_out, const Shape& grad_out_strides,
                  double scale);
// values, argmax (i64): (outer, inner) = the max over the reduced dim and its first position.
void max_forward(const Tensor& values, const Tensor& argmax, const Tensor& x, int64_t outer, int64_t reduce,
                 int64_t inner);
// grad: (outer, reduce, inner) = grad_out at each argmax, zero elsewhere.
void max_backward(const Tensor& grad, const Tensor& grad_out, const Tensor& argmax, int64_t outer, int64_t reduce,
                  int64_t inner);

// ---- Softmax and log-softmax over the middle dim of (outer, reduce, inner) (ops/cuda/softmax.h). ----

void softmax_forward(const char* op, const Tensor& y, const Tensor& x, int64_t outer, int64_t reduce, int64_t inner,
                     bool log);
void softmax_backward(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer,
                      int64_t reduce, int64_t inner, bool log);

// ---- Layer norm over the last dim C of x: (N, C) (ops/cuda/layernorm.h). ----

// out: (N, C); mean, rstd: (N), saved for the backward; bias may be undefined. With a branch: (N, C)
// the residual add is fused in: residual: (N, C) = x + branch, and out is its norm (else both are
// undefined).
void layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& residual,
                       const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias, double eps);
// grad_x: (N, C), grad_weight, grad_bias: (C); any of them may be undefined (not wanted). x is the
// normalised input (the residual of the fused op); with grad_residual: (N, C), grad_x is it plus
// the norm's input gradient.
void layernorm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                        const Tensor& grad_residual, const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                        const Tensor& mean, const Tensor& rstd);

// ---- Matrix products (ops/cuda/gemm.h, ops/cuda/matmul.h). Row-major operands given by a tensor,
// the element offset of the first matrix in its data, and the leading dimension. ----

// Whether f32 GEMMs may run on TF32 tensor cores (off by default; the apps' --tf32 sets it).
void set_allow_tf32(bool allow);
bool allow_tf32();
// C = op(A) · op(B): (M, N), K the inner dim; bf16_operands: A and B rounded to bf16 for the
// product, f32 sums (ops/precision.h; f32 tensors only).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A, int64_t lda, const Tensor& B,
          int64_t ldb, const Tensor& C, int64_t ldc, bool bf16_operands);
// `batch` products C_i = op(A_i) · op(B_i), matrix i of X at offset x_offset + i · stride_x.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A,
                          int64_t a_offset, int64_t lda, int64_t stride_a, const Tensor& B, int64_t b_offset,
                          int64_t ldb, int64_t stride_b, const Tensor& C, int64_t c_offset, int64_t ldc,
                          int64_t stride_c, int64_t batch, bool bf16_operands);
// linear's forward on cuBLASLt, its epilogue fused where it can be: y: (R, O) = x · weightᵀ + bias
// (bias may be undefined), and with gelu pre = that, y = gelu(pre). x: (R, I) with leading dimension
// ldx, or (I, R) when x_transposed; weight: (O, I) with ldw, or (I, O) when weight_transposed; I >= 1.
void linear_forward(const Tensor& x, int64_t ldx, bool x_transposed, const Tensor& weight, int64_t ldw,
                    bool weight_transposed, const Tensor& bias, const Tensor& y, const Tensor& pre, int64_t R,
                    int64_t I, int64_t O, bool gelu, bool bf16_operands);
// grad_weight: (O, I) = grad_preᵀ · x, or += with `accumulate` (beta = 1; x as in linear_forward;
// R >= 1) and, where cuBLASLt fuses it, grad_bias: (O) = Σ over rows of grad_pre in the same GEMM:
// returns whether grad_bias (when defined) was written.
bool linear_weight_gradient(const Tensor& grad_pre, const Tensor& x, int64_t ldx, bool x_transposed,
                            const Tensor& grad_weight, bool accumulate, const Tensor& grad_bias, int64_t R,
                            int64_t I, int64_t O, bool bf16_operands);
// y: (R, O) += bias, then pre = y and y = gelu(pre) when gelu; bias and pre may be undefined.
void linear_epilogue(const Tensor& y, const Tensor& pre, const Tensor& bias, bool gelu);
// grad_pre = grad_y · gelu'(pre), all (R, O).
void gelu_backward(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& pre);
// out: (O) = Σ over the rows of g: (R, O), in a fixed order (deterministic).
void column_sums(const Tensor& out, const Tensor& g);
// The fused MLP's hidden gradient (ops/mlp.h): grad_pre: (R, F) = (grad_y: (R, O) · proj_weight: (O, F))
// ⊙ gelu'(pre: (R, F)), through cuBLASLt's DGELU epilogue where it has an algorithm; O >= 1.
void mlp_pre_activation_gradient(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& proj_weight,
                                 const Tensor& pre, bool bf16_operands);

// ---- Attention: the hand-written kernels (ops/cuda/attention.h) on dense (B, H, T, D) tensors, and
// cuDNN (ops/cuda/attention_cudnn.h) on f32 views whose head rows are contiguous. ----

// out: (B, H, Tq, Dv), lse: (B, H, Tq).
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                       const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias);
// dq, dk, dv from dout and the forward's out and lse.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias);
// Why cuDNN's graph cannot express the call, "" when it can (ops/cuda/attention_cudnn.h).
std::string cudnn_attention_unsupported(const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias);
// The same through cuDNN on f32 views (out, dq, dk, dv views of dense buffers); alibi_slopes (H) f32
// on the device for ALiBi calls. Throw engine::Error naming the cause when cuDNN cannot run the call.
void attention_forward_cudnn(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                             const cpu::AttentionBias& bias);
void attention_backward_cudnn(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                              const cpu::AttentionBias& bias);

// ---- Cross-entropy over the last dim V of logits: (N, V), targets: (N) i32 or i64 (ops/cuda/cross_entropy.h). ----

// What the forward reads back to the host: the non-ignored targets, and the first target out of
// [0, V) (position −1 when none) with its value.
struct CrossEntropySummary {
  int64_t count = 0;
  int64_t bad_position = -1;
  int64_t bad_value = 0;
};
// losses: (N); row_max, row_sum: (N) saved for the backward; `reduced` (a scalar, the sum or with
// `mean` the mean of the losses) may be undefined.
CrossEntropySummary cross_entropy_forward(const Tensor& losses, const Tensor& row_max, const Tensor& row_sum,
                                          const Tensor& reduced, const Tensor& logits, const Tensor& targets,
                                          int64_t ignore_index, double label_smoothing, bool mean);
// grad_logits: (N, V); row i scaled by row_scale[i · row_scale_stride] / scale_divisor.
void cross_entropy_backward(const Tensor& grad_logits, const Tensor& logits, const Tensor& row_max,
                            const Tensor& row_sum, const Tensor& targets, const Tensor& row_scale,
                            int64_t row_scale_stride, double scale_divisor, int64_t ignore_index,
                            double label_smoothing);
// The fused classifier: losses and `reduced` as cross_entropy_forward, and grad_logits: (N, V), which
// may share the logits' storage, = ∂loss/∂logits for an upstream gradient of 1, in the same pass.
CrossEntropySummary cross_entropy_with_gradient(const Tensor& losses, const Tensor& grad_logits,
                                                const Tensor& reduced, const Tensor& logits, const Tensor& targets,
                                                int64_t ignore_index, double label_smoothing, bool mean);
// grad_logits: (N, V) row i *= row_scale[i · row_scale_stride], ignored rows and scales of 1 untouched.
void scale_gradient_rows(const Tensor& grad_logits, const Tensor& targets, const Tensor& row_scale,
                         int64_t row_scale_stride, int64_t ignore_index);

// ---- KL divergence mean(exp(t) · (t − x)) over n elements (ops/cuda/kl_div.h). ----

// loss: a scalar.
void kl_div_forward(const Tensor& loss, const Tensor& x, const Tensor& t);
// grad_x, grad_t (either may be undefined) from the scalar grad_loss, which stays on the device.
void kl_div_backward(const Tensor& grad_x, const Tensor& grad_t, const Tensor& x, const Tensor& t,
                     const Tensor& grad_loss);

// ---- Embedding lookups: table (V, C), indices (N) i32 or i64 (ops/cuda/embedding.h). ----

// The position of the first index outside [0, V), or −1 (a small synchronising read-back).
int64_t first_out_of_range(const Tensor& indices, int64_t V);
// out: (N, C) = table[indices].
void embedding_forward(const Tensor& out, const Tensor& table, const Tensor& indices);
// grad_table: (V, C) = Σ of the grad_out: (N, C) rows that each table row was looked up by.
void embedding_backward(const Tensor& grad_table, const Tensor& grad_out, const Tensor& indices);

// ---- Indexing (ops/cuda/indexing.h): x viewed as (outer, D, inner), index of J entries. ----

// The first entry of `index` outside [0, size): its position (−1 when none) and value.
struct IndexCheck {
  int64_t position = -1;
  int64_t value = 0;
};
IndexCheck find_out_of_range(const char* op, const Tensor& index, int64_t size);
// `rows` rows of `width` elements from src (src_stride apart) to dst from element dst_offset on
// (dst_stride apart); any dtype.
void copy_rows(const Tensor& dst, int64_t dst_offset, int64_t dst_stride, const Tensor& src, int64_t src_stride,
               int64_t rows, int64_t width);
// out: (outer, J, inner) = x: (outer, D, inner) at index: (J) along the middle dim, and its gradient.
void index_select_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D, int64_t J,
                          int64_t inner);
void index_select_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer, int64_t D,
                           int64_t J, int64_t inner);
// out: (outer, J, inner) = x: (outer, D, inner) at index: (outer, J, inner) along the middle dim, and its gradient.
void gather_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D, int64_t J,
                    int64_t inner);
void gather_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer, int64_t D,
                     int64_t J, int64_t inner);

// ---- Rotary position embedding of x: (B, H, T, D) by angles: ([H,] T, P) (ops/cuda/rotary.h). ----

void rotary_forward(const Tensor& x, const Tensor& angles, const Tensor& out, bool per_head);
// grad_angles may be undefined (the angles need no gradient).
void rotary_backward(const Tensor& grad_out, const Tensor& x, const Tensor& angles, const Tensor& grad_x,
                     const Tensor& grad_angles, bool per_head);

// ---- Dropout (ops/cuda/dropout.h): out = in ⊙ mask / (1 − p), the mask from Philox (seed, offset). ----

void dropout_apply(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset);

}  // namespace ops::cuda
