// The ops' CUDA entry points (ops/cuda_kernels.h) on the real CUDA build and on the kernel emulator:
// each makes the tensors' GPU current, picks the kernel for their dtype and launches it on the
// current stream. Host code only: built with the host compiler against the CUDA runtime (ops_cuda)
// or the emulator (ops_cuda_emu), beside the .cu kernels it launches.
//
// Legend: as in ops/cuda_kernels.h; N = rows, C = channels, V = classes or table rows, R = rows of a
// linear layer's input, O = its out features.
#include "ops/cuda_kernels.h"

#include <type_traits>
#include <vector>

#include "engine/cuda/device_guard.h"
#include "engine/cuda/stream.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/attention_cudnn.h"
#include "ops/cuda/cross_entropy.h"
#include "ops/cuda/device_layout.h"
#include "ops/cuda/dropout.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/embedding.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/indexing.h"
#include "ops/cuda/kl_div.h"
#include "ops/cuda/layernorm.h"
#include "ops/cuda/matmul.h"
#include "ops/cuda/mlp.h"
#include "ops/cuda/reduce.h"
#include "ops/cuda/rotary.h"
#include "ops/cuda/softmax.h"

namespace ops {

namespace {

using engine::Tensor;
using engine::cuda::current_stream;
using engine::cuda::DeviceGuard;

// The data of an optional tensor: null when it is undefined (an output that is not wanted).
template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

// ---- Elementwise ----

void cuda::binary_forward(const char* op, cpu::BinaryOp kind, const Tensor& out, const Tensor& a,
                          const Shape& a_strides, const Tensor& b, const Shape& b_strides) {
  const DeviceGuard device_guard(out.device());
  const auto layout = device_layout<3>(out.shape(), {out.strides(), a_strides, b_strides}, op);
  ENGINE_DISPATCH_FLOAT(out.dtype(), op, [&] {
    binary_forward<scalar_t>(kind, out.data<scalar_t>(), a.data<scalar_t>(), b.data<scalar_t>(), layout,
                             current_stream());
  });
}

void cuda::div_backward_divisor(const Tensor& grad_b, const Tensor& grad_out, const Tensor& a, const Shape& a_strides,
                                const Tensor& b, const Shape& b_strides) {
  const DeviceGuard device_guard(grad_b.device());
  const auto layout =
      device_layout<4>(grad_out.shape(), {grad_b.strides(), grad_out.strides(), a_strides, b_strides}, "div backward");
  ENGINE_DISPATCH_FLOAT(grad_out.dtype(), "div backward", [&] {
    div_backward_divisor<scalar_t>(grad_b.data<scalar_t>(), grad_out.data<scalar_t>(), a.data<scalar_t>(),
                                   b.data<scalar_t>(), layout, current_stream());
  });
}

void cuda::unary_forward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& out, const Tensor& x) {
  const DeviceGuard device_guard(out.device());
  const auto layout = device_layout<2>(x.shape(), {out.strides(), x.strides()}, op);
  ENGINE_DISPATCH_FLOAT(x.dtype(), op, [&] {
    unary_forward<scalar_t>(kind, scalar, out.data<scalar_t>(), x.data<scalar_t>(), layout, current_stream());
  });
}

void cuda::unary_backward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& grad_x,
                          const Tensor& grad_out, const Tensor& saved) {
  const DeviceGuard device_guard(grad_x.device());
  const auto layout = device_layout<3>(saved.shape(), {grad_x.strides(), grad_out.strides(), saved.strides()}, op);
  ENGINE_DISPATCH_FLOAT(saved.dtype(), op, [&] {
    unary_backward<scalar_t>(kind, scalar, grad_x.data<scalar_t>(), grad_out.data<scalar_t>(), saved.data<scalar_t>(),
                             layout, current_stream());
  });
}

void cuda::where_forward(const char* op, const Tensor& out, const Tensor& condition, const Shape& condition_strides,
                         const Tensor& a, const Shape& a_strides, const Tensor& b, const Shape& b_strides) {
  const DeviceGuard device_guard(out.device());
  const auto layout = device_layout<4>(out.shape(), {out.strides(), condition_strides, a_strides, b_strides}, op);
  ENGINE_DISPATCH_FLOAT(out.dtype(), op, [&] {
    using value_t = scalar_t;
    ENGINE_DISPATCH_ALL(condition.dtype(), op, [&] {
      where_forward<value_t, scalar_t>(out.data<value_t>(), condition.data<scalar_t>(), a.data<value_t>(),
                                       b.data<value_t>(), layout, current_stream());
    });
  });
}

void cuda::where_backward(const char* op, bool keep_true, const Tensor& grad, const Tensor& condition,
                          const Shape& condition_strides, const Tensor& grad_out) {
  const DeviceGuard device_guard(grad.device());
  const auto layout = device_layout<3>(grad_out.shape(), {grad.strides(), condition_strides, grad_out.strides()}, op);
  ENGINE_DISPATCH_FLOAT(grad_out.dtype(), op, [&] {
    using value_t = scalar_t;
    ENGINE_DISPATCH_ALL(condition.dtype(), op, [&] {
      where_backward<value_t, scalar_t>(keep_true, grad.data<value_t>(), condition.data<scalar_t>(),
                                        grad_out.data<value_t>(), layout, current_stream());
    });
  });
}

// ---- Reductions ----

void cuda::sum_forward(const char* op, const Tensor& out, const Tensor& x, int64_t outer, int64_t reduce, int64_t inner,
                       double divisor) {
  const DeviceGuard device_guard(out.device());
  ENGINE_DISPATCH_FLOAT(out.dtype(), op, [&] {
    sum_forward<scalar_t>(out.data<scalar_t>(), x.data<scalar_t>(), outer, reduce, inner, divisor, current_stream());
  });
}

// A broadcast times a constant: the elementwise mul_scalar kernel over grad_out's strides.
void cuda::sum_backward(const char* op, const Tensor& grad, const Tensor& grad_out, const Shape& grad_out_strides,
                        double scale) {
  const DeviceGuard device_guard(grad.device());
  const auto strided = device_layout<2>(grad.shape(), {grad.strides(), grad_out_strides}, op);
  ENGINE_DISPATCH_FLOAT(grad.dtype(), op, [&] {
    unary_forward<scalar_t>(UnaryOp::mul_scalar, scale, grad.data<scalar_t>(), grad_out.data<scalar_t>(), strided,
                            current_stream());
  });
}

void cuda::max_forward(const Tensor& values, const Tensor& argmax, const Tensor& x, int64_t outer, int64_t reduce,
                       int64_t inner) {
  const DeviceGuard device_guard(values.device());
  ENGINE_DISPATCH_FLOAT(values.dtype(), "max", [&] {
    max_forward<scalar_t>(values.data<scalar_t>(), argmax.data<int64_t>(), x.data<scalar_t>(), outer, reduce, inner,
                          current_stream());
  });
}

void cuda::max_backward(const Tensor& grad, const Tensor& grad_out, const Tensor& argmax, int64_t outer, int64_t reduce,
                        int64_t inner) {
  const DeviceGuard device_guard(grad.device());
  ENGINE_DISPATCH_FLOAT(grad.dtype(), "max", [&] {
    max_backward<scalar_t>(grad.data<scalar_t>(), grad_out.data<scalar_t>(), argmax.data<int64_t>(), outer, reduce,
                           inner, current_stream());
  });
}

// ---- Softmax ----

void cuda::softmax_forward(const char* op, const Tensor& y, const Tensor& x, int64_t outer, int64_t reduce,
                           int64_t inner, bool log) {
  const DeviceGuard device_guard(y.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), op, [&] {
    softmax_forward<scalar_t>(y.data<scalar_t>(), x.data<scalar_t>(), outer, reduce, inner, log, current_stream());
  });
}

void cuda::softmax_backward(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer,
                            int64_t reduce, int64_t inner, bool log) {
  const DeviceGuard device_guard(grad_x.device());
  ENGINE_DISPATCH_FLOAT(y.dtype(), op, [&] {
    softmax_backward<scalar_t>(grad_x.data<scalar_t>(), grad_y.data<scalar_t>(), y.data<scalar_t>(), outer, reduce,
                               inner, log, current_stream());
  });
}

// ---- Layer norm ----

void cuda::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& residual,
                             const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias,
                             double eps) {
  const DeviceGuard device_guard(x.device());
  const int64_t C = x.size(-1), N = mean.numel();
  ENGINE_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    layernorm_forward<scalar_t>(out.data<scalar_t>(), mean.data<scalar_t>(), rstd.data<scalar_t>(),
                                data_or_null<scalar_t>(residual), x.data<scalar_t>(), data_or_null<scalar_t>(branch),
                                weight.data<scalar_t>(), data_or_null<scalar_t>(bias), N, C, eps, current_stream());
  });
}

// The parameter gradients are column sums in two fixed-order passes over a scratch of partial sums.
void cuda::layernorm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_residual, const Tensor& grad_out, const Tensor& x,
                              const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  const DeviceGuard device_guard(x.device());
  const int64_t C = x.size(-1), N = mean.numel();
  const bool param_grads = grad_weight.defined() || grad_bias.defined();
  const Tensor scratch =
      param_grads ? Tensor::empty({layernorm_backward_scratch_size(N, C)}, engine::Dtype::f64, x.device()) : Tensor();
  ENGINE_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    layernorm_backward<scalar_t>(data_or_null<scalar_t>(grad_x), data_or_null<scalar_t>(grad_weight),
                                 data_or_null<scalar_t>(grad_bias), data_or_null<double>(scratch),
                                 data_or_null<scalar_t>(grad_residual), grad_out.data<scalar_t>(), x.data<scalar_t>(),
                                 weight.data<scalar_t>(), mean.data<scalar_t>(), rstd.data<scalar_t>(), N, C,
                                 current_stream());
  });
}

// ---- Matrix products ----

void cuda::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A, int64_t lda,
                const Tensor& B, int64_t ldb, const Tensor& C, int64_t ldc, bool bf16_operands) {
  const DeviceGuard device_guard(C.device());
  ENGINE_DISPATCH_FLOAT(C.dtype(), "matmul", [&] {
    gemm<scalar_t>(trans_a, trans_b, M, N, K, scalar_t(1), A.data<scalar_t>(), lda, B.data<scalar_t>(), ldb,
                   scalar_t(0), C.data<scalar_t>(), ldc, current_stream(), bf16_operands);
  });
}

void cuda::gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A,
                                int64_t a_offset, int64_t lda, int64_t stride_a, const Tensor& B, int64_t b_offset,
                                int64_t ldb, int64_t stride_b, const Tensor& C, int64_t c_offset, int64_t ldc,
                                int64_t stride_c, int64_t batch, bool bf16_operands) {
  const DeviceGuard device_guard(C.device());
  ENGINE_DISPATCH_FLOAT(C.dtype(), "matmul", [&] {
    gemm_strided_batched<scalar_t>(trans_a, trans_b, M, N, K, scalar_t(1), A.data<scalar_t>() + a_offset, lda, stride_a,
                                   B.data<scalar_t>() + b_offset, ldb, stride_b, scalar_t(0),
                                   C.data<scalar_t>() + c_offset, ldc, stride_c, batch, current_stream(),
                                   bf16_operands);
  });
}

void cuda::linear_forward(const Tensor& x, int64_t ldx, bool x_transposed, const Tensor& weight, int64_t ldw,
                          bool weight_transposed, const Tensor& bias, const Tensor& y, const Tensor& pre, int64_t R,
                          int64_t I, int64_t O, bool gelu, bool bf16_operands) {
  const DeviceGuard device_guard(y.device());
  ENGINE_DISPATCH_FLOAT(y.dtype(), "linear", [&] {
    linear_forward<scalar_t>(x.data<scalar_t>(), ldx, x_transposed, weight.data<scalar_t>(), ldw, weight_transposed,
                             data_or_null<scalar_t>(bias), y.data<scalar_t>(), data_or_null<scalar_t>(pre), R, I, O,
                             gelu, bf16_operands, current_stream());
  });
}

bool cuda::linear_weight_gradient(const Tensor& grad_pre, const Tensor& x, int64_t ldx, bool x_transposed,
                                  const Tensor& grad_weight, bool accumulate, const Tensor& grad_bias, int64_t R,
                                  int64_t I, int64_t O, bool bf16_operands) {
  const DeviceGuard device_guard(grad_pre.device());
  return ENGINE_DISPATCH_FLOAT(grad_pre.dtype(), "linear", [&] {
    return linear_weight_gradient<scalar_t>(grad_pre.data<scalar_t>(), x.data<scalar_t>(), ldx, x_transposed,
                                            grad_weight.data<scalar_t>(), accumulate, data_or_null<scalar_t>(grad_bias),
                                            R, I, O, bf16_operands, current_stream());
  });
}

void cuda::linear_epilogue(const Tensor& y, const Tensor& pre, const Tensor& bias, bool gelu) {
  const DeviceGuard device_guard(y.device());
  ENGINE_DISPATCH_FLOAT(y.dtype(), "linear", [&] {
    linear_epilogue<scalar_t>(y.data<scalar_t>(), data_or_null<scalar_t>(pre), data_or_null<scalar_t>(bias), y.size(0),
                              y.size(1), gelu, current_stream());
  });
}

void cuda::gelu_backward(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& pre) {
  const DeviceGuard device_guard(grad_pre.device());
  ENGINE_DISPATCH_FLOAT(grad_y.dtype(), "linear", [&] {
    gelu_backward<scalar_t>(grad_pre.data<scalar_t>(), grad_y.data<scalar_t>(), pre.data<scalar_t>(), grad_y.numel(),
                            current_stream());
  });
}

// Two fixed-order passes: row chunks into f64 partials (chunks, O), then the chunks in order.
void cuda::column_sums(const Tensor& out, const Tensor& g) {
  const DeviceGuard device_guard(g.device());
  const int64_t R = g.size(0), O = g.size(1);
  const Tensor partials = Tensor::empty({column_sum_chunks(R), O}, engine::Dtype::f64, g.device());
  ENGINE_DISPATCH_FLOAT(g.dtype(), "linear", [&] {
    column_sums<scalar_t>(out.data<scalar_t>(), partials.data<double>(), g.data<scalar_t>(), R, O, current_stream());
  });
}

void cuda::mlp_pre_activation_gradient(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& proj_weight,
                                       const Tensor& pre, bool bf16_operands) {
  const DeviceGuard device_guard(grad_pre.device());
  const int64_t R = grad_y.size(0), O = grad_y.size(1), F = proj_weight.size(1);
  ENGINE_DISPATCH_FLOAT(grad_y.dtype(), "mlp", [&] {
    mlp_pre_activation_gradient<scalar_t>(grad_pre.data<scalar_t>(), grad_y.data<scalar_t>(),
                                          proj_weight.data<scalar_t>(), pre.data<scalar_t>(), R, F, O, bf16_operands,
                                          current_stream());
  });
}

// ---- Attention: the hand-written kernels, or cuDNN (the op chooses, ops/attention.cpp);
// cuda::cudnn_attention_unsupported is defined in ops/cuda/attention_cudnn.cpp. ----

void cuda::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias) {
  const DeviceGuard device_guard(q.device());
  ENGINE_DISPATCH_FLOAT(q.dtype(), "attention", [&] {
    attention_forward<scalar_t>(out.data<scalar_t>(), lse.data<scalar_t>(), q.data<scalar_t>(), k.data<scalar_t>(),
                                v.data<scalar_t>(), sizes, bias, current_stream());
  });
}

void cuda::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                              const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias) {
  const DeviceGuard device_guard(q.device());
  const Tensor delta = Tensor::empty(lse.shape(), lse.dtype(), lse.device());  // (B, H, Tq) rowsum(dout ⊙ out)
  ENGINE_DISPATCH_FLOAT(q.dtype(), "attention backward", [&] {
    attention_backward<scalar_t>(dq.data<scalar_t>(), dk.data<scalar_t>(), dv.data<scalar_t>(), delta.data<scalar_t>(),
                                 dout.data<scalar_t>(), q.data<scalar_t>(), k.data<scalar_t>(), v.data<scalar_t>(),
                                 out.data<scalar_t>(), lse.data<scalar_t>(), sizes, bias, current_stream());
  });
}

void cuda::attention_forward_cudnn(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                                   const cpu::AttentionBias& bias) {
  const DeviceGuard device_guard(q.device());
  cudnn_attention_forward(out, lse, q, k, v, alibi_slopes, sizes, bias, current_stream());
}

void cuda::attention_backward_cudnn(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                                    const cpu::AttentionBias& bias) {
  const DeviceGuard device_guard(q.device());
  cudnn_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, alibi_slopes, sizes, bias, current_stream());
}

// ---- Cross-entropy: the reduction stays on the device; the host reads back only the summary. ----

namespace {
// Both cross-entropy forwards: row_max and row_sum, or grad_logits (the fused classifier).
cuda::CrossEntropySummary launch_cross_entropy(const Tensor& losses, const Tensor& row_max, const Tensor& row_sum,
                                               const Tensor& grad_logits, const Tensor& reduced, const Tensor& logits,
                                               const Tensor& targets, int64_t ignore_index, double label_smoothing,
                                               bool mean) {
  const DeviceGuard device_guard(logits.device());
  const int64_t V = logits.size(-1), N = targets.numel();
  const Tensor summary = Tensor::empty({3}, engine::Dtype::i64, logits.device());  // count, bad position, value
  ENGINE_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
      cuda::cross_entropy_forward<scalar_t, index_t>(
          losses.data<scalar_t>(), data_or_null<scalar_t>(row_max), data_or_null<scalar_t>(row_sum),
          data_or_null<scalar_t>(grad_logits), data_or_null<scalar_t>(reduced), summary.data<int64_t>(),
          logits.data<scalar_t>(), targets.data<index_t>(), N, V, ignore_index, label_smoothing, mean,
          current_stream());
    });
  });
  const std::vector<int64_t> host = summary.to_vector<int64_t>();
  return {host[0], host[1], host[2]};
}
}  // namespace

cuda::CrossEntropySummary cuda::cross_entropy_forward(const Tensor& losses, const Tensor& row_max,
                                                      const Tensor& row_sum, const Tensor& reduced,
                                                      const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                                      double label_smoothing, bool mean) {
  return launch_cross_entropy(losses, row_max, row_sum, Tensor(), reduced, logits, targets, ignore_index,
                              label_smoothing, mean);
}

void cuda::cross_entropy_backward(const Tensor& grad_logits, const Tensor& logits, const Tensor& row_max,
                                  const Tensor& row_sum, const Tensor& targets, const Tensor& row_scale,
                                  int64_t row_scale_stride, double scale_divisor, int64_t ignore_index,
                                  double label_smoothing) {
  const DeviceGuard device_guard(logits.device());
  const int64_t V = logits.size(-1), N = row_max.numel();
  ENGINE_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
      cross_entropy_backward<scalar_t, index_t>(grad_logits.data<scalar_t>(), logits.data<scalar_t>(),
                                                row_max.data<scalar_t>(), row_sum.data<scalar_t>(),
                                                targets.data<index_t>(), row_scale.data<scalar_t>(), row_scale_stride,
                                                scale_divisor, N, V, ignore_index, label_smoothing, current_stream());
    });
  });
}

cuda::CrossEntropySummary cuda::cross_entropy_with_gradient(const Tensor& losses, const Tensor& grad_logits,
                                                            const Tensor& reduced, const Tensor& logits,
                                                            const Tensor& targets, int64_t ignore_index,
                                                            double label_smoothing, bool mean) {
  return launch_cross_entropy(losses, Tensor(), Tensor(), grad_logits, reduced, logits, targets, ignore_index,
                              label_smoothing, mean);
}

void cuda::scale_gradient_rows(const Tensor& grad_logits, const Tensor& targets, const Tensor& row_scale,
                               int64_t row_scale_stride, int64_t ignore_index) {
  const DeviceGuard device_guard(grad_logits.device());
  const int64_t V = grad_logits.size(-1), N = targets.numel();
  ENGINE_DISPATCH_FLOAT(grad_logits.dtype(), "cross_entropy", [&] {
    ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
      scale_gradient_rows<scalar_t, index_t>(grad_logits.data<scalar_t>(), targets.data<index_t>(),
                                             row_scale.data<scalar_t>(), row_scale_stride, N, V, ignore_index,
                                             current_stream());
    });
  });
}

// ---- KL divergence ----

void cuda::kl_div_forward(const Tensor& loss, const Tensor& x, const Tensor& t) {
  const DeviceGuard device_guard(x.device());
  const int64_t n = x.numel();
  const Tensor partials = Tensor::empty({kl_div_partials(n)}, engine::Dtype::f64, x.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), "kl_div", [&] {
    kl_div_forward<scalar_t>(loss.data<scalar_t>(), partials.data<double>(), x.data<scalar_t>(), t.data<scalar_t>(), n,
                             current_stream());
  });
}

void cuda::kl_div_backward(const Tensor& grad_x, const Tensor& grad_t, const Tensor& x, const Tensor& t,
                           const Tensor& grad_loss) {
  const DeviceGuard device_guard(x.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), "kl_div", [&] {
    kl_div_backward<scalar_t>(data_or_null<scalar_t>(grad_x), data_or_null<scalar_t>(grad_t), x.data<scalar_t>(),
                              t.data<scalar_t>(), grad_loss.data<scalar_t>(), x.numel(), current_stream());
  });
}

// ---- Embedding ----

int64_t cuda::first_out_of_range(const Tensor& indices, int64_t V) {
  const DeviceGuard device_guard(indices.device());
  const Tensor result = Tensor::empty({1}, engine::Dtype::i64, indices.device());
  ENGINE_DISPATCH_INDEX(indices.dtype(), "embedding", [&] {
    first_out_of_range<index_t>(result.data<int64_t>(), indices.data<index_t>(), indices.numel(), V, current_stream());
  });
  return int64_t(result.item());
}

void cuda::embedding_forward(const Tensor& out, const Tensor& table, const Tensor& indices) {
  const DeviceGuard device_guard(table.device());
  ENGINE_DISPATCH_FLOAT(table.dtype(), "embedding", [&] {
    ENGINE_DISPATCH_INDEX(indices.dtype(), "embedding", [&] {
      embedding_forward<scalar_t, index_t>(out.data<scalar_t>(), table.data<scalar_t>(), indices.data<index_t>(),
                                           indices.numel(), table.size(1), current_stream());
    });
  });
}

void cuda::embedding_backward(const Tensor& grad_table, const Tensor& grad_out, const Tensor& indices) {
  const DeviceGuard device_guard(grad_table.device());
  ENGINE_DISPATCH_FLOAT(grad_table.dtype(), "embedding", [&] {
    ENGINE_DISPATCH_INDEX(indices.dtype(), "embedding", [&] {
      embedding_backward<scalar_t, index_t>(grad_table.data<scalar_t>(), grad_out.data<scalar_t>(),
                                            indices.data<index_t>(), indices.numel(), grad_table.size(0),
                                            grad_table.size(1), current_stream());
    });
  });
}

// ---- Indexing ----

cuda::IndexCheck cuda::find_out_of_range(const char* op, const Tensor& index, int64_t size) {
  const DeviceGuard device_guard(index.device());
  const Tensor summary = Tensor::empty({2}, engine::Dtype::i64, index.device());
  ENGINE_DISPATCH_INDEX(index.dtype(), op, [&] {
    find_out_of_range<index_t>(summary.data<int64_t>(), index.data<index_t>(), index.numel(), size, current_stream());
  });
  const std::vector<int64_t> host = summary.to_vector<int64_t>();
  return {host[0], host[1]};
}

void cuda::copy_rows(const Tensor& dst, int64_t dst_offset, int64_t dst_stride, const Tensor& src, int64_t src_stride,
                     int64_t rows, int64_t width) {
  const DeviceGuard device_guard(dst.device());
  ENGINE_DISPATCH_ALL(dst.dtype(), "concat", [&] {
    copy_rows<scalar_t>(dst.data<scalar_t>() + dst_offset, dst_stride, src.data<scalar_t>(), src_stride, rows, width,
                        current_stream());
  });
}

void cuda::index_select_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D,
                                int64_t J, int64_t inner) {
  const DeviceGuard device_guard(out.device());
  ENGINE_DISPATCH_FLOAT(out.dtype(), "index_select", [&] {
    ENGINE_DISPATCH_INDEX(index.dtype(), "index_select", [&] {
      index_select_forward<scalar_t, index_t>(out.data<scalar_t>(), x.data<scalar_t>(), index.data<index_t>(), outer, D,
                                              J, inner, current_stream());
    });
  });
}

void cuda::index_select_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer,
                                 int64_t D, int64_t J, int64_t inner) {
  const DeviceGuard device_guard(grad_x.device());
  ENGINE_DISPATCH_FLOAT(grad_x.dtype(), "index_select", [&] {
    ENGINE_DISPATCH_INDEX(index.dtype(), "index_select", [&] {
      index_select_backward<scalar_t, index_t>(grad_x.data<scalar_t>(), grad_out.data<scalar_t>(),
                                               index.data<index_t>(), outer, D, J, inner, current_stream());
    });
  });
}

void cuda::gather_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D, int64_t J,
                          int64_t inner) {
  const DeviceGuard device_guard(out.device());
  ENGINE_DISPATCH_FLOAT(out.dtype(), "gather", [&] {
    ENGINE_DISPATCH_INDEX(index.dtype(), "gather", [&] {
      gather_forward<scalar_t, index_t>(out.data<scalar_t>(), x.data<scalar_t>(), index.data<index_t>(), outer, D, J,
                                        inner, current_stream());
    });
  });
}

void cuda::gather_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer, int64_t D,
                           int64_t J, int64_t inner) {
  const DeviceGuard device_guard(grad_x.device());
  ENGINE_DISPATCH_FLOAT(grad_x.dtype(), "gather", [&] {
    ENGINE_DISPATCH_INDEX(index.dtype(), "gather", [&] {
      gather_backward<scalar_t, index_t>(grad_x.data<scalar_t>(), grad_out.data<scalar_t>(), index.data<index_t>(),
                                         outer, D, J, inner, current_stream());
    });
  });
}

// ---- Rotary ----

void cuda::rotary_forward(const Tensor& x, const Tensor& angles, const Tensor& out, bool per_head) {
  const DeviceGuard device_guard(x.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), "rotary", [&] {
    rotary_forward<scalar_t>(x.data<scalar_t>(), angles.data<scalar_t>(), out.data<scalar_t>(), x.size(0), x.size(1),
                             x.size(2), x.size(3), angles.size(-1), per_head, current_stream());
  });
}

void cuda::rotary_backward(const Tensor& grad_out, const Tensor& x, const Tensor& angles, const Tensor& grad_x,
                           const Tensor& grad_angles, bool per_head) {
  const DeviceGuard device_guard(x.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), "rotary backward", [&] {
    rotary_backward<scalar_t>(grad_out.data<scalar_t>(), x.data<scalar_t>(), angles.data<scalar_t>(),
                              grad_x.data<scalar_t>(), data_or_null<scalar_t>(grad_angles), x.size(0), x.size(1),
                              x.size(2), x.size(3), angles.size(-1), per_head, current_stream());
  });
}

// ---- Dropout ----

void cuda::dropout_apply(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset) {
  const DeviceGuard device_guard(in.device());
  ENGINE_DISPATCH_FLOAT(in.dtype(), "dropout", [&] {
    dropout_apply<scalar_t>(out.data<scalar_t>(), in.data<scalar_t>(), in.numel(), p, seed, offset, current_stream());
  });
}

}  // namespace ops
