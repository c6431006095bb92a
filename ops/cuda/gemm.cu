// cuBLASLt GEMM wrappers (see ops/cuda/gemm.h): the row-major to column-major mapping, the bf16
// operand copies, the epilogues, the handle, workspace and heuristic caches, and the TF32 switch.
// Host code only; under the emulator the same calls reach the emulated cuBLASLt
// (engine/emu/cublaslt_api.h).
//
// The standard headers and engine/tensor.h come before any CUDA header: under the emulator those
// define CUDA's keywords as macros, and __noinline__ would break libstdc++'s <memory>.
#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "engine/tensor.h"
#include "ops/cuda/gemm.h"

#include "engine/cuda/check.h"
#include "engine/cuda/cublaslt_api.h"
#include "engine/cuda/stream.h"
#include "engine/error.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

using engine::Tensor;

std::atomic<bool> tf32_allowed{false};

// What cuBLASLt's Hopper kernels may use (NVIDIA's recommendation for sm_90; 4 MiB would do for sm_80).
constexpr int64_t kWorkspaceBytes = int64_t(32) << 20;

int current_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

// The cuBLASLt handle of `device` (current), created on first use and kept until exit.
cublasLtHandle_t lt_handle(int device) {
  static std::mutex mutex;
  static auto* handles = new std::map<int, cublasLtHandle_t>();  // kept until exit
  const std::lock_guard<std::mutex> lock(mutex);
  cublasLtHandle_t& handle = (*handles)[device];
  if (handle == nullptr) CUBLAS_CHECK(cublasLtCreate(&handle));
  return handle;
}

// The workspace of (`device`, `stream`): GEMMs on one stream run in order, so they can share it.
void* workspace(int device, cudaStream_t stream) {
  static std::mutex mutex;
  static auto* buffers = new std::map<std::pair<int, cudaStream_t>, Tensor>();  // kept until exit
  const std::lock_guard<std::mutex> lock(mutex);
  Tensor& buffer = (*buffers)[{device, stream}];
  if (!buffer.defined())
    buffer = Tensor::empty({kWorkspaceBytes / 4}, engine::Dtype::i32, engine::Device::cuda(device));
  return buffer.raw_data();
}

// The largest power of two up to 256 that divides the address: what cuBLASLt's heuristic must assume.
uint32_t alignment_of(const void* pointer) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  if (address == 0) return 256;
  const uintptr_t lowest_bit = address & (~address + 1);
  return lowest_bit < 256 ? uint32_t(lowest_bit) : 256u;
}

// A matrix as cuBLASLt sees it: column-major, stored rows x cols (before op), with the batch stride.
struct LtMatrix {
  const void* data = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  int64_t rows = 0, cols = 0, ld = 0, stride = 0;
};

// One cuBLASLt matmul: D = C = alpha · op(a) · op(b) + beta · C, then `epilogue`.
struct LtProblem {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  bool trans_a = false, trans_b = false;
  LtMatrix a, b, c;
  int64_t batch = 1;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // BIAS and GELU_AUX_BIAS read it, BGRADB writes it
  void* aux = nullptr;         // GELU_AUX_BIAS writes it, DGELU reads it; leading dimension c.ld
};

// What the heuristic's answer depends on: everything but the data, pointer alignments included.
using ProblemKey = std::array<int64_t, 27>;

ProblemKey key_of(int device, const LtProblem& p) {
  return {device,   p.compute,  p.scale,    p.trans_a,  p.trans_b,  p.epilogue, p.batch,
          p.a.type, p.a.rows,   p.a.cols,   p.a.ld,     p.a.stride, alignment_of(p.a.data),
          p.b.type, p.b.rows,   p.b.cols,   p.b.ld,     p.b.stride, alignment_of(p.b.data),
          p.c.type, p.c.rows,   p.c.cols,   p.c.ld,     p.c.stride, alignment_of(p.c.data),
          alignment_of(p.bias), alignment_of(p.aux)};
}

// The descriptors of one call, destroyed when it returns (they are host objects; the matmul they
// describe is already queued).
struct LtDescriptors {
  cublasLtMatmulDesc_t matmul = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;

  LtDescriptors() = default;
  LtDescriptors(const LtDescriptors&) = delete;
  LtDescriptors& operator=(const LtDescriptors&) = delete;
  // A destructor cannot throw: a failed destroy (only a bad descriptor can fail) is reported instead.
  ~LtDescriptors() {
    report(matmul ? cublasLtMatmulDescDestroy(matmul) : CUBLAS_STATUS_SUCCESS, __LINE__);
    for (cublasLtMatrixLayout_t layout : {a, b, c})
      report(layout ? cublasLtMatrixLayoutDestroy(layout) : CUBLAS_STATUS_SUCCESS, __LINE__);
  }
  static void report(cublasStatus_t status, int line) {
    if (status != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "cuBLAS error at %s:%d: destroying a cuBLASLt descriptor failed: %s\n", __FILE__, line,
                   cublasGetStatusString(status));
  }
};

template <typename Value>
void set_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const Value& value) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
}

cublasLtMatrixLayout_t make_layout(const LtMatrix& m, int64_t batch) {
  cublasLtMatrixLayout_t layout = nullptr;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, m.type, uint64_t(m.rows), uint64_t(m.cols), m.ld));
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &m.stride,
                                                  sizeof(m.stride)));
  }
  return layout;
}

// The heuristic's best algorithm for `p` with the descriptors `d`, asked once per problem key. Any
// status but success (cuBLASLt says NOT_SUPPORTED, or INVALID_VALUE for an epilogue operand it
// refuses) means there is none: it is returned, and the callers say or work around it.
cublasStatus_t find_algorithm(cublasLtHandle_t handle, int device, const LtProblem& p, const LtDescriptors& d,
                              cublasLtMatmulAlgo_t& algo) {
  struct Cached {
    cublasStatus_t status = CUBLAS_STATUS_NOT_SUPPORTED;
    cublasLtMatmulAlgo_t algo{};
  };
  static std::mutex mutex;
  static auto* cache = new std::map<ProblemKey, Cached>();  // kept until exit
  const ProblemKey key = key_of(device, p);
  {
    const std::lock_guard<std::mutex> lock(mutex);
    const auto it = cache->find(key);
    if (it != cache->end()) {
      algo = it->second.algo;
      return it->second.status;
    }
  }
  cublasLtMatmulPreference_t preference = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const uint64_t max_workspace = uint64_t(kWorkspaceBytes);
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &max_workspace, sizeof(max_workspace)));
  // cuBLASLt assumes 256-byte aligned matrices unless told: views and batch offsets are less aligned.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, const void*> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p.a.data},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p.b.data},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p.c.data},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p.c.data}};
  for (const auto& [attribute, data] : alignments) {
    const uint32_t bytes = alignment_of(data);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof(bytes)));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle, d.matmul, d.a, d.b, d.c, d.c, preference, 1, &result, &returned);
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(preference));
  Cached entry;
  entry.status = status != CUBLAS_STATUS_SUCCESS ? status
                 : returned == 0                 ? CUBLAS_STATUS_NOT_SUPPORTED
                                                 : result.state;
  entry.algo = result.algo;
  const std::lock_guard<std::mutex> lock(mutex);
  cache->emplace(key, entry);
  algo = entry.algo;
  return entry.status;
}

// Queues `p` on `stream`; alpha and beta point at host values of the scale type. Returns the
// heuristic's status, having queued nothing, when cuBLASLt has no algorithm for it.
cublasStatus_t run(const LtProblem& p, const void* alpha, const void* beta, cudaStream_t stream) {
  const int device = current_device();
  const cublasLtHandle_t handle = lt_handle(device);
  LtDescriptors d;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.matmul, p.compute, p.scale));
  set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_TRANSA, int32_t(p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N));
  set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_TRANSB, int32_t(p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N));
  set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t(p.epilogue));
  if (p.bias != nullptr) set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias);
  if (p.aux != nullptr) {
    set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, p.aux);
    set_attribute(d.matmul, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, p.c.ld);
  }
  d.a = make_layout(p.a, p.batch);
  d.b = make_layout(p.b, p.batch);
  d.c = make_layout(p.c, p.batch);
  cublasLtMatmulAlgo_t algo{};
  const cublasStatus_t found = find_algorithm(handle, device, p, d, algo);
  if (found != CUBLAS_STATUS_SUCCESS) return found;
  void* const C = const_cast<void*>(p.c.data);
  CUBLAS_CHECK(cublasLtMatmul(handle, d.matmul, alpha, p.a.data, d.a, p.b.data, d.b, beta, C, d.c, C, d.c, &algo,
                              workspace(device, stream), size_t(kWorkspaceBytes), stream));
  return CUBLAS_STATUS_SUCCESS;
}

int64_t checked_size(int64_t value, const char* what) {
  ENGINE_CHECK(value >= 0 && value <= INT32_MAX, "gemm: ", what, " = ", value, " does not fit cuBLASLt's int32");
  return value;
}

// A row-major operand's matrices rounded to bf16 (nearest even) into a scratch copy of every element
// from the first to the last they span; the copy keeps the operand's leading dimension and strides.
Tensor bf16_copy(const float* data, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                 cudaStream_t stream) {
  ENGINE_CHECK(stream == engine::cuda::current_stream(),
               "gemm: bf16 operands need the current stream (their scratch copies are ordered on it)");
  const int64_t span = (batch - 1) * stride + (rows - 1) * ld + cols;
  Tensor copy = Tensor::empty({span}, engine::Dtype::bf16, engine::Device::cuda(current_device()));
  f32_to_bf16(static_cast<uint16_t*>(copy.raw_data()), data, span, stream);
  return copy;
}

// The row-major product of gemm.h as a column-major LtProblem without epilogue: cuBLASLt's A is our
// B (stored (K, N) row-major = (N, K) column-major, or transposed), its B is our A, D is Cᵀ (N, M).
template <typename T>
LtProblem problem_of(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda,
                     int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, T* C, int64_t ldc,
                     int64_t stride_c, int64_t batch, bool bf16_operands) {
  LtProblem p;
  const cudaDataType_t value_type = std::is_same_v<T, double> ? CUDA_R_64F : CUDA_R_32F;
  const cudaDataType_t operand_type = bf16_operands ? CUDA_R_16BF : value_type;
  if constexpr (std::is_same_v<T, double>) {
    p.compute = CUBLAS_COMPUTE_64F;
  } else {
    p.compute = !bf16_operands && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  }
  p.scale = value_type;
  p.trans_a = trans_b;
  p.trans_b = trans_a;
  // Row-major stored (rows, cols) is column-major (cols, rows).
  p.a = {B, operand_type, checked_size(trans_b ? K : N, "rows of B"), checked_size(trans_b ? N : K, "columns of B"),
         checked_size(ldb, "ldb"), stride_b};
  p.b = {A, operand_type, checked_size(trans_a ? M : K, "rows of A"), checked_size(trans_a ? K : M, "columns of A"),
         checked_size(lda, "lda"), stride_a};
  p.c = {C, value_type, checked_size(N, "N"), checked_size(M, "M"), checked_size(ldc, "ldc"), stride_c};
  p.batch = checked_size(batch, "batch");
  return p;
}

// Runs `p` (the operands f32 as given, or rounded to bf16 copies when bf16_operands); the status of
// run().
template <typename T>
cublasStatus_t run_gemm(LtProblem p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
              int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, int64_t batch,
              cudaStream_t stream, bool bf16_operands) {
  Tensor a_copy, b_copy;  // alive until the matmul is queued; their blocks are reused in stream order
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_operands) {
      a_copy = bf16_copy(A, trans_a ? K : M, trans_a ? M : K, lda, stride_a, batch, stream);
      b_copy = bf16_copy(B, trans_b ? N : K, trans_b ? K : N, ldb, stride_b, batch, stream);
      p.b.data = a_copy.raw_data();
      p.a.data = b_copy.raw_data();
    }
  } else {
    ENGINE_CHECK(!bf16_operands, "gemm: bf16 operands are for f32 tensors, not f64");
  }
  return run(p, &alpha, &beta, stream);
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }

template <typename T>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                          int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                          int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream, bool bf16_operands) {
  if (M == 0 || N == 0 || batch == 0) return;
  ENGINE_CHECK(K >= 1, "gemm: K = 0 reaches cuBLASLt; fill the empty product instead");
  const LtProblem p = problem_of<T>(trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c,
                                    batch, bf16_operands);
  const cublasStatus_t status = run_gemm<T>(p, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                                           beta, batch, stream, bf16_operands);
  ENGINE_CHECK(status == CUBLAS_STATUS_SUCCESS, "gemm: cuBLASLt has no algorithm (", cublasGetStatusName(status),
               ") for ", bf16_operands ? "bf16" : sizeof(T) == 8 ? "f64" : "f32",
               " operands, (M, N, K) = (", M, ", ", N, ", ", K, "), trans_a ", trans_a, ", trans_b ", trans_b,
               ", lda ", lda, ", ldb ", ldb, ", ldc ", ldc, ", batch ", batch);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, cudaStream_t stream, bool bf16_operands) {
  gemm_strided_batched<T>(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, stream,
                          bf16_operands);
}

template <typename T>
bool gemm_fused(const GemmFusion<T>& fusion, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, cudaStream_t stream,
                bool bf16_operands) {
  if constexpr (std::is_same_v<T, double>) {
    return false;  // the epilogues are f32 (gradient checks in f64 take the kernels)
  } else {
    ENGINE_CHECK(M > 0 && N > 0 && K >= 1, "gemm_fused: empty product (M, N, K) = (", M, ", ", N, ", ", K, ")");
    LtProblem p = problem_of<T>(trans_a, trans_b, M, N, K, A, lda, 0, B, ldb, 0, C, ldc, 0, 1, bf16_operands);
    switch (fusion.epilogue) {
      case GemmEpilogue::bias:
        p.epilogue = CUBLASLT_EPILOGUE_BIAS;
        p.bias = fusion.bias;
        break;
      case GemmEpilogue::bias_gelu:
        p.epilogue = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
        p.bias = fusion.bias;
        p.aux = fusion.pre;
        break;
      case GemmEpilogue::gelu_backward:
        p.epilogue = CUBLASLT_EPILOGUE_DGELU;
        p.aux = fusion.pre;
        break;
      case GemmEpilogue::bias_gradient:
        p.epilogue = CUBLASLT_EPILOGUE_BGRADB;  // cuBLASLt's B is our A
        p.bias = fusion.bias_gradient;
        break;
    }
    ENGINE_CHECK(p.bias != nullptr || fusion.epilogue == GemmEpilogue::gelu_backward,
                 "gemm_fused: the epilogue's bias vector is null");
    ENGINE_CHECK(p.aux != nullptr || fusion.epilogue == GemmEpilogue::bias ||
                     fusion.epilogue == GemmEpilogue::bias_gradient,
                 "gemm_fused: the epilogue's pre-activation matrix is null");
    return run_gemm<T>(p, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, 1, stream, bf16_operands) ==
           CUBLAS_STATUS_SUCCESS;
  }
}

#define INSTANTIATE(T)                                                                                            \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,    \
                        int64_t, cudaStream_t, bool);                                                             \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t,     \
                                        const T*, int64_t, int64_t, T, T*, int64_t, int64_t, int64_t,             \
                                        cudaStream_t, bool);                                                      \
  template bool gemm_fused<T>(const GemmFusion<T>&, bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, \
                              const T*, int64_t, T, T*, int64_t, cudaStream_t, bool);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cuda
