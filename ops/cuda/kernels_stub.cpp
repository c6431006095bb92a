// The ops' CUDA entry points (ops/cuda_kernels.h) for a program built without CUDA kernels
// (ops_cuda_stub): each throws "built without CUDA kernels: <op>". Only a CUDA tensor reaches them,
// and a program without a CUDA backend has none; a program with one links ops_cuda or ops_cuda_emu.
//
// It cannot drift from the declarations: every definition is qualified (cuda::name), which the
// compiler accepts only for a function ops/cuda_kernels.h declares with the same parameters, and
// test_ops_stub links the whole ops library against this file, so an entry point the ops call
// without a definition here fails the build (tests/CMakeLists.txt).
#include <string>

#include "engine/error.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

[[noreturn]] void throw_no_kernels(const char* op) {
  throw engine::Error(std::string("built without CUDA kernels: ") + op +
                      " on a CUDA tensor needs a program linked against ops_cuda (configure with -DENGINE_CUDA=ON, "
                      "which needs nvcc) or ops_cuda_emu (the kernel emulator)");
}

}  // namespace

void cuda::binary_forward(const char* op, cpu::BinaryOp kind, const Tensor& out, const Tensor& a,
                          const Shape& a_strides, const Tensor& b, const Shape& b_strides) {
  throw_no_kernels(op);
}
void cuda::div_backward_divisor(const Tensor& grad_b, const Tensor& grad_out, const Tensor& a, const Shape& a_strides,
                                const Tensor& b, const Shape& b_strides) {
  throw_no_kernels("div backward");
}
void cuda::unary_forward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& out, const Tensor& x) {
  throw_no_kernels(op);
}
void cuda::unary_backward(const char* op, cpu::UnaryOp kind, double scalar, const Tensor& grad_x,
                          const Tensor& grad_out, const Tensor& saved) {
  throw_no_kernels(op);
}
void cuda::where_forward(const char* op, const Tensor& out, const Tensor& condition, const Shape& condition_strides,
                         const Tensor& a, const Shape& a_strides, const Tensor& b, const Shape& b_strides) {
  throw_no_kernels(op);
}
void cuda::where_backward(const char* op, bool keep_true, const Tensor& grad, const Tensor& condition,
                          const Shape& condition_strides, const Tensor& grad_out) {
  throw_no_kernels(op);
}
void cuda::sum_forward(const char* op, const Tensor& out, const Tensor& x, int64_t outer, int64_t reduce, int64_t inner,
                       double divisor) {
  throw_no_kernels(op);
}
void cuda::sum_backward(const char* op, const Tensor& grad, const Tensor& grad_out, const Shape& grad_out_strides,
                        double scale) {
  throw_no_kernels(op);
}
void cuda::max_forward(const Tensor& values, const Tensor& argmax, const Tensor& x, int64_t outer, int64_t reduce,
                       int64_t inner) {
  throw_no_kernels("max");
}
void cuda::max_backward(const Tensor& grad, const Tensor& grad_out, const Tensor& argmax, int64_t outer, int64_t reduce,
                        int64_t inner) {
  throw_no_kernels("max");
}
void cuda::softmax_forward(const char* op, const Tensor& y, const Tensor& x, int64_t outer, int64_t reduce,
                           int64_t inner, bool log) {
  throw_no_kernels(op);
}
void cuda::softmax_backward(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& y, int64_t outer,
                            int64_t reduce, int64_t inner, bool log) {
  throw_no_kernels(op);
}
void cuda::layernorm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& residual,
                             const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias,
                             double eps) {
  throw_no_kernels("layer_norm");
}
void cuda::layernorm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_residual, const Tensor& grad_out, const Tensor& x,
                              const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  throw_no_kernels("layer_norm");
}
void cuda::set_allow_tf32(bool allow) { throw_no_kernels("set_allow_tf32"); }
bool cuda::allow_tf32() { throw_no_kernels("allow_tf32"); }
void cuda::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A, int64_t lda,
                const Tensor& B, int64_t ldb, const Tensor& C, int64_t ldc, bool bf16_operands) {
  throw_no_kernels("matmul");
}
void cuda::gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& A,
                                int64_t a_offset, int64_t lda, int64_t stride_a, const Tensor& B, int64_t b_offset,
                                int64_t ldb, int64_t stride_b, const Tensor& C, int64_t c_offset, int64_t ldc,
                                int64_t stride_c, int64_t batch, bool bf16_operands) {
  throw_no_kernels("matmul");
}
void cuda::linear_forward(const Tensor& x, int64_t ldx, bool x_transposed, const Tensor& weight, int64_t ldw,
                          bool weight_transposed, const Tensor& bias, const Tensor& y, const Tensor& pre, int64_t R,
                          int64_t I, int64_t O, bool gelu, bool bf16_operands) {
  throw_no_kernels("linear");
}
bool cuda::linear_weight_gradient(const Tensor& grad_pre, const Tensor& x, int64_t ldx, bool x_transposed,
                                  const Tensor& grad_weight, bool accumulate, const Tensor& grad_bias, int64_t R,
                                  int64_t I, int64_t O, bool bf16_operands) {
  throw_no_kernels("linear");
}
void cuda::linear_epilogue(const Tensor& y, const Tensor& pre, const Tensor& bias, bool gelu) {
  throw_no_kernels("linear");
}
void cuda::gelu_backward(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& pre) {
  throw_no_kernels("linear");
}
void cuda::column_sums(const Tensor& out, const Tensor& g) { throw_no_kernels("linear"); }
void cuda::mlp_pre_activation_gradient(const Tensor& grad_pre, const Tensor& grad_y, const Tensor& proj_weight,
                                       const Tensor& pre, bool bf16_operands) {
  throw_no_kernels("mlp");
}
void cuda::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias) {
  throw_no_kernels("attention");
}
void cuda::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout, const Tensor& q,
                              const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias) {
  throw_no_kernels("attention");
}
std::string cuda::cudnn_attention_unsupported(const cpu::AttentionSizes& sizes, const cpu::AttentionBias& bias) {
  throw_no_kernels("attention");
}
void cuda::attention_forward_cudnn(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                                   const cpu::AttentionBias& bias) {
  throw_no_kernels("attention");
}
void cuda::attention_backward_cudnn(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& alibi_slopes, const cpu::AttentionSizes& sizes,
                                    const cpu::AttentionBias& bias) {
  throw_no_kernels("attention");
}
cuda::CrossEntropySummary cuda::cross_entropy_forward(const Tensor& losses, const Tensor& row_max,
                                                      const Tensor& row_sum, const Tensor& reduced,
                                                      const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                                      double label_smoothing, bool mean) {
  throw_no_kernels("cross_entropy");
}
void cuda::cross_entropy_backward(const Tensor& grad_logits, const Tensor& logits, const Tensor& row_max,
                                  const Tensor& row_sum, const Tensor& targets, const Tensor& row_scale,
                                  int64_t row_scale_stride, double scale_divisor, int64_t ignore_index,
                                  double label_smoothing) {
  throw_no_kernels("cross_entropy");
}
cuda::CrossEntropySummary cuda::cross_entropy_with_gradient(const Tensor& losses, const Tensor& grad_logits,
                                                            const Tensor& reduced, const Tensor& logits,
                                                            const Tensor& targets, int64_t ignore_index,
                                                            double label_smoothing, bool mean) {
  throw_no_kernels("cross_entropy");
}
void cuda::scale_gradient_rows(const Tensor& grad_logits, const Tensor& targets, const Tensor& row_scale,
                               int64_t row_scale_stride, int64_t ignore_index) {
  throw_no_kernels("cross_entropy");
}
void cuda::kl_div_forward(const Tensor& loss, const Tensor& x, const Tensor& t) { throw_no_kernels("kl_div"); }
void cuda::kl_div_backward(const Tensor& grad_x, const Tensor& grad_t, const Tensor& x, const Tensor& t,
                           const Tensor& grad_loss) {
  throw_no_kernels("kl_div");
}
int64_t cuda::first_out_of_range(const Tensor& indices, int64_t V) { throw_no_kernels("embedding"); }
void cuda::embedding_forward(const Tensor& out, const Tensor& table, const Tensor& indices) {
  throw_no_kernels("embedding");
}
void cuda::embedding_backward(const Tensor& grad_table, const Tensor& grad_out, const Tensor& indices) {
  throw_no_kernels("embedding");
}
cuda::IndexCheck cuda::find_out_of_range(const char* op, const Tensor& index, int64_t size) { throw_no_kernels(op); }
void cuda::copy_rows(const Tensor& dst, int64_t dst_offset, int64_t dst_stride, const Tensor& src, int64_t src_stride,
                     int64_t rows, int64_t width) {
  throw_no_kernels("concat");
}
void cuda::index_select_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D,
                                int64_t J, int64_t inner) {
  throw_no_kernels("index_select");
}
void cuda::index_select_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer,
                                 int64_t D, int64_t J, int64_t inner) {
  throw_no_kernels("index_select");
}
void cuda::gather_forward(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t D, int64_t J,
                          int64_t inner) {
  throw_no_kernels("gather");
}
void cuda::gather_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& index, int64_t outer, int64_t D,
                           int64_t J, int64_t inner) {
  throw_no_kernels("gather");
}
void cuda::rotary_forward(const Tensor& x, const Tensor& angles, const Tensor& out, bool per_head) {
  throw_no_kernels("rotary");
}
void cuda::rotary_backward(const Tensor& grad_out, const Tensor& x, const Tensor& angles, const Tensor& grad_x,
                           const Tensor& grad_angles, bool per_head) {
  throw_no_kernels("rotary");
}
void cuda::dropout_apply(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset) {
  throw_no_kernels("dropout");
}

}  // namespace ops
