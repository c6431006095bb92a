// matmul and linear: shape checks, the GEMM operand layouts, device dispatch and backward nodes.
// Kernels: ops/cpu/gemm.h, ops/cpu/matmul.h; on CUDA ops/cuda/gemm.h (cuBLASLt), ops/cuda/matmul.h.
// The products of f32 tensors run in the precision ops/precision.h sets (bf16: gemm_bf16 on the CPU,
// bf16 operands with f32 sums on cuBLASLt), the backward in the precision of its forward.
//
// Legend: M, K, N = matrix dims of (M, K)·(K, N); "batch" = broadcast leading dims; R = rows of a
// linear layer's input with its leading dims folded; I = in features, O = out features.
#include "ops/matmul.h"

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/strided_loop.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "ops/cuda_kernels.h"
#include "ops/fully_connected.h"
#include "ops/precision.h"

namespace ops {

namespace {

using engine::Dtype;
using engine::Shape;

// A tensor's last two dims as a row-major GEMM operand: read from `tensor`, stored transposed or not,
// with leading dimension `ld`. Transposed views need no copy; only a matrix with no unit stride is
// copied to contiguous memory.
struct MatrixOperand {
  Tensor tensor;
  bool transposed = false;
  int64_t ld = 0;
};

MatrixOperand matrix_operand(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t row_stride = t.strides()[size_t(t.dim() - 2)], col_stride = t.strides()[size_t(t.dim() - 1)];
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols))
    return {t, false, rows == 1 ? cols : row_stride};
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows))
    return {t, true, cols == 1 ? rows : col_stride};
  return {t.detach().contiguous(), false, cols};
}

Shape batch_shape(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// The gradient of a broadcast operand: `grad` summed down to `shape`.
Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor out = Tensor::empty(shape, grad.dtype(), grad.device());
  engine::backend_for(grad.device().type).sum_to(out, grad);
  return out;
}

// Element offsets of every batch matrix of `a` and `b` (as stored in their operands) for the
// broadcast batch shape `batch`, row-major over it; `a_strides`/`b_strides` are the broadcast
// batch strides.
struct BatchOffsets {
  std::vector<int64_t> a, b;
  Shape a_strides, b_strides;
};

BatchOffsets batch_offsets(const MatrixOperand& a_op, const MatrixOperand& b_op, const Shape& batch) {
  BatchOffsets offsets;
  offsets.a_strides = engine::broadcast_strides(
      batch_shape(a_op.tensor), Shape(a_op.tensor.strides().begin(), a_op.tensor.strides().end() - 2), batch);
  offsets.b_strides = engine::broadcast_strides(
      batch_shape(b_op.tensor), Shape(b_op.tensor.strides().begin(), b_op.tensor.strides().end() - 2), batch);
  const int64_t count = engine::shape_numel(batch);
  offsets.a.assign(size_t(count), 0);
  offsets.b.assign(size_t(count), 0);
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t d = int64_t(batch.size()) - 1, rest = i; d >= 0; --d) {
      const int64_t index = rest % batch[size_t(d)];
      rest /= batch[size_t(d)];
      offsets.a[size_t(i)] += index * offsets.a_strides[size_t(d)];
      offsets.b[size_t(i)] += index * offsets.b_strides[size_t(d)];
    }
  }
  return offsets;
}

// Whether products of T (of `dtype`) in `precision` run on bf16 operands (f32 only; f64 is the
// gradient checks').
template <typename T>
bool on_bf16(Precision precision) {
  return std::is_same_v<T, float> && precision == Precision::bf16;
}
bool on_bf16(engine::Dtype dtype, Precision precision) {
  return dtype == engine::Dtype::f32 && precision == Precision::bf16;
}

// C = op(A) · op(B) + beta · C, then the epilogue, on the CPU: on gemm_bf16 when `bf16` (T = f32),
// else gemm<T>. beta is 0 (C is written, not read) or 1 (a gradient accumulated in place).
template <typename T>
void cpu_gemm(bool bf16, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const cpu::GemmEpilogue& epilogue = {}) {
  if constexpr (std::is_same_v<T, float>)
    if (bf16) {
      cpu::gemm_bf16(trans_a, trans_b, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc, epilogue);
      return;
    }
  cpu::gemm<T>(trans_a, trans_b, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc, epilogue);
}

// out: (batch..., M, N) = op(a) · op(b) on the CPU.
template <typename T>
void matmul_cpu(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, int64_t M, int64_t N,
                int64_t K, const Tensor& out, Precision precision) {
  const bool bf16 = on_bf16<T>(precision);
  // A 2-D b shared by a batch of row-major a's: fold the batch into M for one large GEMM.
  if (b.dim() == 2 && a.dim() > 2 && !transpose_a) {
    const MatrixOperand a_op = matrix_operand(a.detach().reshape({-1, K}));
    const MatrixOperand b_op = matrix_operand(b);
    cpu_gemm<T>(bf16, a_op.transposed, b_op.transposed != transpose_b, a_op.tensor.size(0), N, K,
                a_op.tensor.data<T>(), a_op.ld, b_op.tensor.data<T>(), b_op.ld, T(0), out.data<T>(), N);
    return;
  }
  const MatrixOperand a_op = matrix_operand(a), b_op = matrix_operand(b);
  const BatchOffsets offsets = batch_offsets(a_op, b_op, batch_shape(out));
  cpu::batched_gemm<T>(int64_t(offsets.a.size()), offsets.a.data(), offsets.b.data(), a_op.transposed != transpose_a,
                       b_op.transposed != transpose_b, M, N, K, a_op.tensor.data<T>(), a_op.ld,
                       b_op.tensor.data<T>(), b_op.ld, out.data<T>(), bf16);
}

// The common step of offsets that form an arithmetic progression, or -1.
int64_t common_step(const std::vector<int64_t>& offsets) {
  const int64_t step = offsets.size() > 1 ? offsets[1] - offsets[0] : 0;
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] - offsets[i - 1] != step) return -1;
  return step;
}

// out: (batch..., M, N) = op(a) · op(b) on CUDA (cuBLASLt; bf16 operands when `bf16`). A batch whose
// matrices sit at constant strides (contiguous or broadcast) is one strided-batched call; otherwise
// one call per run of the innermost batch dim.
void matmul_cuda(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, int64_t M, int64_t N,
                 int64_t K, const Tensor& out, bool bf16) {
  if (K == 0) {
    Tensor(out).zero_();  // K = 0: every entry is an empty sum
    return;
  }
  if (b.dim() == 2 && a.dim() > 2 && !transpose_a) {  // as on the CPU: one GEMM with the batch folded into M
    const MatrixOperand a_op = matrix_operand(a.detach().reshape({-1, K}));
    const MatrixOperand b_op = matrix_operand(b);
    cuda::gemm(a_op.transposed, b_op.transposed != transpose_b, a_op.tensor.size(0), N, K, a_op.tensor, a_op.ld,
               b_op.tensor, b_op.ld, out, N, bf16);
    return;
  }
  const MatrixOperand a_op = matrix_operand(a), b_op = matrix_operand(b);
  const Shape batch = batch_shape(out);
  const BatchOffsets offsets = batch_offsets(a_op, b_op, batch);
  const int64_t count = int64_t(offsets.a.size());
  const bool trans_a = a_op.transposed != transpose_a, trans_b = b_op.transposed != transpose_b;
  const int64_t step_a = common_step(offsets.a), step_b = common_step(offsets.b);
  if (step_a >= 0 && step_b >= 0) {
    cuda::gemm_strided_batched(trans_a, trans_b, M, N, K, a_op.tensor, 0, a_op.ld, step_a, b_op.tensor, 0, b_op.ld,
                               step_b, out, 0, N, M * N, count, bf16);
    return;
  }
  const int64_t inner = batch.back();
  for (int64_t start = 0; start < count; start += inner)
    cuda::gemm_strided_batched(trans_a, trans_b, M, N, K, a_op.tensor, offsets.a[size_t(start)], a_op.ld,
                               offsets.a_strides.back(), b_op.tensor, offsets.b[size_t(start)], b_op.ld,
                               offsets.b_strides.back(), out, start * M * N, N, M * N, inner, bf16);
}

// C = op(A)·op(B):  dop(A) = dC·op(B)ᵀ,  dop(B) = op(A)ᵀ·dC, written for the stored layouts and
// summed over the batch dims each operand was broadcast along.
Tensor matmul_in(Precision precision, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

class MatmulBackward final : public engine::Node {
 public:
  MatmulBackward(Tensor a, Tensor b, bool transpose_a, bool transpose_b, Precision precision)
      : a_(std::move(a)), b_(std::move(b)), transpose_a_(transpose_a), transpose_b_(transpose_b),
        precision_(precision) {}
  std::string name() const override { return "MatmulBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& grad = grads[0];  // (batch..., M, N)
    Tensor grad_a, grad_b;
    if (next_edges[0].node) {
      const Tensor full = transpose_a_ ? matmul_in(precision_, b_, grad, transpose_b_, true)
                                       : matmul_in(precision_, grad, b_, false, !transpose_b_);
      grad_a = sum_to_shape(full, a_.shape());
    }
    if (next_edges[1].node) {
      if (b_.dim() == 2 && a_.dim() > 2 && !transpose_a_) {  // folded forward: fold here too, one GEMM
        const Tensor a_rows = a_.reshape({-1, a_.size(-1)});       // (batch·M, K)
        const Tensor grad_rows = grad.reshape({-1, grad.size(-1)});  // (batch·M, N)
        grad_b = transpose_b_ ? matmul_in(precision_, grad_rows, a_rows, true, false)
                              : matmul_in(precision_, a_rows, grad_rows, true, false);
      } else {
        const Tensor full = transpose_b_ ? matmul_in(precision_, grad, a_, true, transpose_a_)
                                         : matmul_in(precision_, a_, grad, !transpose_a_, false);
        grad_b = sum_to_shape(full, b_.shape());
      }
    }
    return {grad_a, grad_b};
  }
  void release_saved() override {
    a_ = Tensor();
    b_ = Tensor();
  }

 private:
  Tensor a_, b_;  // detached inputs, as given
  bool transpose_a_, transpose_b_;
  Precision precision_;  // the forward's
};

// x_rows: (R, I), weight: (O, I) -> y: (R, O) [and pre: (R, O) when gelu] on the CPU.
template <typename T>
void linear_cpu(const Tensor& x_rows, const Tensor& weight, const Tensor& bias, bool gelu, const Tensor& y,
                const Tensor& pre, Precision precision) {
  const MatrixOperand x_op = matrix_operand(x_rows), w_op = matrix_operand(weight);
  const int64_t R = x_rows.size(0), I = x_rows.size(1), O = weight.size(0);
  const Tensor bias_c = bias.defined() ? bias.detach().contiguous() : Tensor();
  T* const y_data = y.data<T>();
  T* const pre_data = gelu ? pre.data<T>() : nullptr;
  const T* const bias_data = bias_c.defined() ? bias_c.data<T>() : nullptr;
  cpu::GemmEpilogue epilogue;  // bias and GELU on each block of y while the GEMM has it in cache
  if (bias_data || gelu)
    epilogue = [=](int64_t row, int64_t col, int64_t rows, int64_t cols) {
      cpu::linear_epilogue<T>(y_data + row * O + col, pre_data ? pre_data + row * O + col : nullptr,
                              bias_data ? bias_data + col : nullptr, rows, cols, O, gelu);
    };
  cpu_gemm<T>(on_bf16<T>(precision), x_op.transposed, !w_op.transposed, R, O, I, x_op.tensor.data<T>(), x_op.ld,
              w_op.tensor.data<T>(), w_op.ld, T(0), y_data, O, epilogue);
}

// x_rows: (R, I), weight: (O, I) -> y: (R, O) [and pre: (R, O) when gelu] on CUDA: cuBLASLt with the
// bias/GELU epilogue fused (ops/cuda/matmul.h).
void linear_cuda(const Tensor& x_rows, const Tensor& weight, const Tensor& bias, bool gelu, const Tensor& y,
                 const Tensor& pre, bool bf16) {
  const int64_t R = x_rows.size(0), I = x_rows.size(1), O = weight.size(0);
  const Tensor y_rows = y.reshape({R, O});
  const Tensor bias_c = bias.defined() ? bias.detach().contiguous() : Tensor();
  if (I == 0) {
    Tensor(y).zero_();  // I = 0: every entry is an empty sum
    cuda::linear_epilogue(y_rows, gelu ? pre : Tensor(), bias_c, gelu);
    return;
  }
  const MatrixOperand x_op = matrix_operand(x_rows), w_op = matrix_operand(weight);
  cuda::linear_forward(x_op.tensor, x_op.ld, x_op.transposed, w_op.tensor, w_op.ld, w_op.transposed, bias_c, y_rows,
                       gelu ? pre : Tensor(), R, I, O, gelu, bf16);
}

// grad_pre: (R, O) = grad_y · gelu'(pre).
Tensor gelu_grad(const Tensor& grad_y, const Tensor& pre) {
  Tensor grad_pre = Tensor::empty(grad_y.shape(), grad_y.dtype(), grad_y.device());
  if (grad_y.device().is_cuda()) {
    cuda::gelu_backward(grad_pre, grad_y, pre);
  } else {
    ENGINE_DISPATCH_FLOAT(grad_y.dtype(), "linear", [&] {
      cpu::gelu_backward<scalar_t>(grad_pre.data<scalar_t>(), grad_y.data<scalar_t>(), pre.data<scalar_t>(),
                                   grad_y.numel());
    });
  }
  return grad_pre;
}

// (O) = Σ over rows of g: (R, O), deterministic on every device.
Tensor column_sums(const Tensor& g) {
  const int64_t R = g.size(0), O = g.size(1);
  Tensor out = Tensor::empty({O}, g.dtype(), g.device());
  if (g.device().is_cuda()) {
    cuda::column_sums(out, g);
  } else {
    ENGINE_DISPATCH_FLOAT(g.dtype(), "linear",
                          [&] { cpu::column_sums<scalar_t>(out.data<scalar_t>(), g.data<scalar_t>(), R, O); });
  }
  return out;
}

// The tensor that receives a fully connected layer's weight gradient: the leaf's .grad when the
// engine hands it out for input `weight_input` of `node` (engine::leaf_grad_destination; written or
// added into in place), else a fresh (O, I) tensor. R = 0 makes every entry an empty sum: a fresh or
// overwritten gradient is zeroed here, an accumulated one keeps its value.
engine::GradDestination weight_gradient_destination(const engine::Node& node, size_t weight_input,
                                                    const Tensor& grad_pre, int64_t R, int64_t I) {
  engine::GradDestination destination = engine::leaf_grad_destination(node, weight_input);
  const int64_t O = grad_pre.size(1);
  if (!destination.grad.defined()) destination.grad = Tensor::empty({O, I}, grad_pre.dtype(), grad_pre.device());
  if (R == 0 && !destination.accumulate) destination.grad.zero_();
  return destination;
}

// grad_weight: (O, I) [+]= grad_preᵀ · x_rows on the CPU, with beta = 1 when accumulating.
template <typename T>
void weight_gradient_cpu(const Tensor& grad_pre, const Tensor& x_rows, const engine::GradDestination& destination,
                         Precision precision) {
  const int64_t R = x_rows.size(0), I = x_rows.size(1), O = grad_pre.size(1);
  if (R == 0) return;  // empty sums: weight_gradient_destination zeroed a written gradient
  const MatrixOperand x_op = matrix_operand(x_rows);
  cpu_gemm<T>(on_bf16<T>(precision), true, x_op.transposed, O, I, R, grad_pre.data<T>(), O, x_op.tensor.data<T>(),
              x_op.ld, destination.accumulate ? T(1) : T(0), destination.grad.data<T>(), I);
}

// On CUDA, grad_weight: (O, I) [+]= grad_preᵀ · x_rows (beta = 1 when accumulating) and, when with_bias,
// returns grad_bias: (O) = Σ over rows of grad_pre (undefined otherwise), both from one cuBLASLt GEMM
// with the bias-gradient epilogue where it fuses (f32 products), else the GEMM and column_sums.
Tensor weight_and_bias_gradients_cuda(const Tensor& grad_pre, const Tensor& x_rows, bool with_bias,
                                      const engine::GradDestination& destination, Precision precision) {
  const int64_t R = x_rows.size(0), I = x_rows.size(1), O = grad_pre.size(1);
  Tensor grad_bias = with_bias ? Tensor::empty({O}, grad_pre.dtype(), grad_pre.device()) : Tensor();
  bool bias_done = false;
  if (R > 0) {
    const MatrixOperand x_op = matrix_operand(x_rows);
    bias_done = cuda::linear_weight_gradient(grad_pre, x_op.tensor, x_op.ld, x_op.transposed, destination.grad,
                                             destination.accumulate, grad_bias, R, I, O,
                                             on_bf16(grad_pre.dtype(), precision));
  }
  if (with_bias && !bias_done) grad_bias = column_sums(grad_pre);
  return grad_bias;
}

// y = act(pre), pre = x·Wᵀ + b:  dpre = dy·act'(pre),  dx = dpre·W,  dW = dpreᵀ·x,  db = Σ_rows dpre.
// dW goes straight into the weight's .grad when the engine allows it (a GEMM with beta = 1 from the
// second micro-batch on, as llm.c and PyTorch's fused paths do), else into a fresh tensor.
class LinearBackward final : public engine::Node {
 public:
  LinearBackward(Tensor x_rows, Tensor weight, Tensor pre, Shape x_shape, Precision precision)
      : x_rows_(std::move(x_rows)), weight_(std::move(weight)), pre_(std::move(pre)), x_shape_(std::move(x_shape)),
        precision_(precision) {}
  std::string name() const override { return "LinearBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const int64_t O = weight_.size(0);
    Tensor grad_pre = grads[0].reshape({-1, O}).contiguous();  // (R, O)
    if (pre_.defined()) grad_pre = gelu_grad(grad_pre, pre_);
    Tensor grad_x, grad_weight, grad_bias;
    if (next_edges[0].node) grad_x = matmul_in(precision_, grad_pre, weight_, false, false).reshape(x_shape_);
    const bool bias_needs_grad = next_edges.size() > 2 && next_edges[2].node;
    std::tie(grad_weight, grad_bias) =
        linear_parameter_gradients(*this, 1, grad_pre, x_rows_, next_edges[1].node != nullptr, bias_needs_grad,
                                   precision_);
    return {grad_x, grad_weight, grad_bias};
  }
  void release_saved() override {
    x_rows_ = Tensor();
    weight_ = Tensor();
    pre_ = Tensor();
  }

 private:
  Tensor x_rows_;  // (R, I), detached
  Tensor weight_;  // (O, I), detached
  Tensor pre_;     // (R, O) pre-activation, only with GELU
  Shape x_shape_;
  Precision precision_;  // the forward's
};

// matmul in an explicit precision: the public matmul's, and its backward's.
Tensor matmul_in(Precision precision, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  ENGINE_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
  ENGINE_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 dims, got a ", a.describe(),
               " and b ", b.describe());
  engine::check_same_device("matmul", {&a, &b});
  engine::check_same_dtype("matmul", {&a, &b});
  ENGINE_CHECK(engine::is_floating(a.dtype()), "matmul: expected f32 or f64, got ", a.describe());
  const int64_t M = transpose_a ? a.size(-1) : a.size(-2), K = transpose_a ? a.size(-2) : a.size(-1);
  const int64_t K_b = transpose_b ? b.size(-1) : b.size(-2), N = transpose_b ? b.size(-2) : b.size(-1);
  ENGINE_CHECK(K == K_b, "matmul: inner dimensions differ: a ", a.describe(), transpose_a ? " (transposed)" : "",
               " has K = ", K, ", b ", b.describe(), transpose_b ? " (transposed)" : "", " has K = ", K_b);
  Shape out_shape = engine::broadcast_shapes(batch_shape(a), batch_shape(b), "matmul");
  out_shape.push_back(M);
  out_shape.push_back(N);

  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
    matmul_cuda(a, b, transpose_a, transpose_b, M, N, K, out, on_bf16(a.dtype(), precision));
  } else {
    ENGINE_DISPATCH_FLOAT(a.dtype(), "matmul",
                          [&] { matmul_cpu<scalar_t>(a, b, transpose_a, transpose_b, M, N, K, out, precision); });
  }

  if (engine::needs_grad({&a, &b}))
    engine::record(std::make_shared<MatmulBackward>(a.detach(), b.detach(), transpose_a, transpose_b, precision),
                   {&a, &b}, {&out});
  return out;
}

}  // namespace

void fully_connected_forward(const Tensor& x_rows, const Tensor& weight, const Tensor& bias, bool gelu,
                             const Tensor& y, const Tensor& pre, Precision precision) {
  if (x_rows.device().is_cuda()) {
    linear_cuda(x_rows, weight, bias, gelu, y, pre, on_bf16(x_rows.dtype(), precision));
    return;
  }
  ENGINE_DISPATCH_FLOAT(x_rows.dtype(), "linear",
                        [&] { linear_cpu<scalar_t>(x_rows, weight, bias, gelu, y, pre, precision); });
}

std::pair<Tensor, Tensor> linear_parameter_gradients(const engine::Node& node, size_t weight_input,
                                                     const Tensor& grad_pre, const Tensor& x_rows, bool want_weight,
                                                     bool want_bias, Precision precision) {
  Tensor grad_weight, grad_bias;
  if (want_weight) {
    const engine::GradDestination destination =
        weight_gradient_destination(node, weight_input, grad_pre, x_rows.size(0), x_rows.size(1));
    if (grad_pre.device().is_cuda()) {  // one GEMM for both where cuBLASLt fuses them
      grad_bias = weight_and_bias_gradients_cuda(grad_pre, x_rows, want_bias, destination, precision);
    } else {
      ENGINE_DISPATCH_FLOAT(grad_pre.dtype(), "linear",
                            [&] { weight_gradient_cpu<scalar_t>(grad_pre, x_rows, destination, precision); });
    }
    grad_weight = destination.grad;
  }
  if (want_bias && !grad_bias.defined()) grad_bias = column_sums(grad_pre);
  return {grad_weight, grad_bias};
}

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  return matmul_in(precision(), a, b, transpose_a, transpose_b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation) {
  ENGINE_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  ENGINE_CHECK(weight.dim() == 2, "linear: weight must be (out, in), got ", weight.describe());
  ENGINE_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", x.describe(),
               " does not end in in_features = ", weight.size(1), " of weight ", weight.describe());
  ENGINE_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear: bias ",
               bias.describe(), " must be (", weight.size(0), ") for weight ", weight.describe());
  engine::check_same_device("linear", {&x, &weight});
  engine::check_same_dtype("linear", {&x, &weight});
  if (bias.defined()) {
    engine::check_same_device("linear", {&x, &bias});
    engine::check_same_dtype("linear", {&x, &bias});
  }
  ENGINE_CHECK(engine::is_floating(x.dtype()), "linear: expected f32 or f64, got ", x.describe());
  const int64_t I = weight.size(1), O = weight.size(0);
  const bool gelu = activation == Activation::gelu;
  Shape out_shape = x.shape();
  out_shape.back() = O;

  const Precision products = precision();  // the forward's and the backward's
  const Tensor x_rows = x.detach().reshape({-1, I});  // (R, I), a view when the layout allows
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor pre = gelu ? Tensor::empty({x_rows.size(0), O}, x.dtype(), x.device()) : Tensor();
  fully_connected_forward(x_rows, weight, bias, gelu, y, pre, products);

  const bool has_bias = bias.defined();
  if (has_bias ? engine::needs_grad({&x, &weight, &bias}) : engine::needs_grad({&x, &weight})) {
    auto node = std::make_shared<LinearBackward>(x_rows, weight.detach(), pre, x.shape(), products);
    if (has_bias) engine::record(node, {&x, &weight, &bias}, {&y});
    else engine::record(node, {&x, &weight}, {&y});
  }
  return y;
}

}  // namespace ops
