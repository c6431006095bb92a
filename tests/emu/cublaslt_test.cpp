// The emulated cuBLASLt matmul against a naive reference: transposes, padded leading dimensions,
// strided batches, alpha and beta with C apart from D, bf16 operands, and what it refuses: sizes
// that do not chain, an epilogue operand cuBLASLt rejects (NOT_SUPPORTED, as on a GPU), and the
// combinations it does not emulate (a clear error, never a silent wrong answer). The epilogues
// themselves are checked through ops::cuda::gemm_fused against the CPU ops (tests/common/matmul_checks.h).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "engine/bfloat16.h"
#include "emu/device_vectors.h"
#include "engine/cuda/check.h"
#include "engine/cuda/cublaslt_api.h"
#include "engine/error.h"

namespace {

// The descriptors of one problem, destroyed at the end of the test.
struct Matmul {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Matmul() {
    cublasLtMatmulDescDestroy(desc);
    for (cublasLtMatrixLayout_t layout : {a, b, c, d}) cublasLtMatrixLayoutDestroy(layout);
    cublasLtMatmulPreferenceDestroy(pref);
  }
};

cublasLtMatrixLayout_t layout(cudaDataType_t type, int rows, int cols, int ld, int batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
  CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
  CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                sizeof(stride)));
  return l;
}

// D (m x n, batch) = alpha · op(A) · op(B) + beta · C with C apart from D, column-major with padded
// leading dimensions, A and B f32 or bf16, against a double reference of the same (rounded) values.
void check_product(bool ta, bool tb, bool bf16, int batch) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(bf16);
  CAPTURE(batch);
  const int m = 7, n = 5, k = 11, pad = 3;
  const int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int lda = a_rows + pad, ldb = b_rows + pad, ldc = m + pad;
  const int64_t stride_a = int64_t(lda) * a_cols, stride_b = int64_t(ldb) * b_cols, stride_c = int64_t(ldc) * n;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  // Values as stored (f32, or bf16 patterns widened for the reference); padding NaN.
  auto values = [&](size_t count) {
    std::vector<float> v(count);
    for (float& x : v) x = bf16 ? float(engine::bf16(dist(rng))) : dist(rng);
    return v;
  };
  std::vector<float> A = values(size_t(stride_a * batch)), B = values(size_t(stride_b * batch));
  std::vector<float> C = values(size_t(stride_c * batch));
  for (size_t i = 0; i < A.size(); ++i)
    if (int64_t(i) % lda >= a_rows) A[i] = std::numeric_limits<float>::quiet_NaN();
  for (size_t i = 0; i < B.size(); ++i)
    if (int64_t(i) % ldb >= b_rows) B[i] = std::numeric_limits<float>::quiet_NaN();
  auto as_bf16 = [](const std::vector<float>& v) {
    std::vector<uint16_t> bits;
    for (float x : v) bits.push_back(engine::bf16(x).bits);
    return bits;
  };
  const void* A_dev = bf16 ? static_cast<const void*>(to_device(as_bf16(A))) : to_device(A);
  const void* B_dev = bf16 ? static_cast<const void*>(to_device(as_bf16(B))) : to_device(B);
  float* C_dev = to_device(C);
  float* D_dev = to_device(std::vector<float>(C.size(), std::numeric_limits<float>::quiet_NaN()));

  cublasLtHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&handle));
  Matmul mm;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&mm.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const int32_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  const cudaDataType_t operand = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  mm.a = layout(operand, a_rows, a_cols, lda, batch, stride_a);
  mm.b = layout(operand, b_rows, b_cols, ldb, batch, stride_b);
  mm.c = layout(CUDA_R_32F, m, n, ldc, batch, stride_c);
  mm.d = layout(CUDA_R_32F, m, n, ldc, batch, stride_c);
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&mm.pref));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, mm.desc, mm.a, mm.b, mm.c, mm.d, mm.pref, 1, &result, &returned));
  REQUIRE(returned == 1);
  const float alpha = 0.75f, beta = -1.5f;
  CUBLAS_CHECK(cublasLtMatmul(handle, mm.desc, &alpha, A_dev, mm.a, B_dev, mm.b, &beta, C_dev, mm.c, D_dev, mm.d,
                              &result.algo, nullptr, 0, nullptr));
  const std::vector<float> D = to_host(D_dev, C.size());
  for (int p = 0; p < batch; ++p)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double acc = 0;
        for (int l = 0; l < k; ++l)
          acc += double(A[size_t(p * stride_a + (ta ? l + i * lda : i + l * lda))]) *
                 double(B[size_t(p * stride_b + (tb ? j + l * ldb : l + j * ldb))]);
        const size_t at = size_t(p * stride_c + i + j * ldc);
        const double want = alpha * acc + beta * double(C[at]);
        CHECK(std::abs(D[at] - want) < 1e-5 * (1 + std::abs(want)));
      }
  CUBLAS_CHECK(cublasLtDestroy(handle));
  for (const void* ptr : {A_dev, B_dev, static_cast<const void*>(C_dev), static_cast<const void*>(D_dev)})
    CUDA_CHECK(cudaFree(const_cast<void*>(ptr)));
}

}  // namespace

TEST_CASE("emulated cuBLASLt: products with transposes, padding, batches, alpha, beta and bf16 operands") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_product(ta, tb, false, 1);
      check_product(ta, tb, true, 3);
    }
}

TEST_CASE("emulated cuBLASLt refuses what cuBLASLt refuses, and what it does not emulate, clearly") {
  cublasLtHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&handle));
  float* buffer = nullptr;
  CUDA_CHECK(cudaMalloc(&buffer, 4096 * sizeof(float)));
  Matmul mm;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&mm.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  mm.a = layout(CUDA_R_32F, 12, 4, 12, 1, 0);  // m = 12, k = 4
  mm.b = layout(CUDA_R_32F, 4, 6, 4, 1, 0);    // n = 6
  mm.c = layout(CUDA_R_32F, 12, 6, 12, 1, 0);
  mm.d = layout(CUDA_R_32F, 12, 6, 12, 1, 0);
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&mm.pref));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = -1;
  auto heuristic = [&](cublasLtMatrixLayout_t b) {
    return cublasLtMatmulAlgoGetHeuristic(handle, mm.desc, mm.a, b, mm.c, mm.d, mm.pref, 1, &result, &returned);
  };
  // GELU's aux leading dimension must be a multiple of 8 and >= m, as cuBLASLt requires.
  const uint32_t gelu = CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu, sizeof(gelu)));
  void* bias = buffer;
  void* aux = buffer + 256;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
  for (int64_t aux_ld : {int64_t(12), int64_t(8)}) {  // not a multiple of 8; below m
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
    CHECK(heuristic(mm.b) == CUBLAS_STATUS_NOT_SUPPORTED);
    CHECK(returned == 0);
  }
  const int64_t aux_ld = 16;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
  CHECK(heuristic(mm.b) == CUBLAS_STATUS_SUCCESS);
  CHECK(returned == 1);
  // An attribute value of the wrong size.
  CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &gelu, sizeof(gelu)) ==
        CUBLAS_STATUS_INVALID_VALUE);
  // Sizes that do not chain: B has 5 rows for k = 4.
  const Matmul mismatched{nullptr, nullptr, layout(CUDA_R_32F, 5, 6, 5, 1, 0)};
  CHECK(heuristic(mismatched.b) == CUBLAS_STATUS_INVALID_VALUE);
  // A matrix less aligned than the algorithm assumes (256 bytes unless the preference says less).
  const float one = 1.f, zero = 0.f;
  CHECK_THROWS_WITH_AS(cublasLtMatmul(handle, mm.desc, &one, buffer + 1, mm.a, buffer, mm.b, &zero, buffer, mm.c,
                                      buffer, mm.d, &result.algo, nullptr, 0, nullptr),
                       doctest::Contains("matrix A at"), engine::Error);
  // Not emulated: another epilogue (RELU = 2), an epilogue with a batch, f16 operands.
  const uint32_t relu = 2;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &relu, sizeof(relu)));
  CHECK_THROWS_WITH_AS(heuristic(mm.b), doctest::Contains("epilogue 2 is not emulated"), engine::Error);
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu, sizeof(gelu)));
  const Matmul batched{nullptr, layout(CUDA_R_32F, 12, 4, 12, 2, 48), layout(CUDA_R_32F, 4, 6, 4, 2, 24),
                       layout(CUDA_R_32F, 12, 6, 12, 2, 72), layout(CUDA_R_32F, 12, 6, 12, 2, 72)};
  CHECK_THROWS_WITH_AS(cublasLtMatmulAlgoGetHeuristic(handle, mm.desc, batched.a, batched.b, batched.c, batched.d,
                                                      mm.pref, 1, &result, &returned),
                       doctest::Contains("batch count of 2 is not emulated"), engine::Error);
  cublasLtMatrixLayout_t f16 = nullptr;
  CHECK_THROWS_WITH_AS(cublasLtMatrixLayoutCreate(&f16, cudaDataType_t(2), 4, 6, 4),
                       doctest::Contains("data type 2 is not emulated"), engine::Error);
  CUDA_CHECK(cudaFree(buffer));
  CUBLAS_CHECK(cublasLtDestroy(handle));
}
