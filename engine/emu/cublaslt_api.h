// The subset of cuBLASLt the engine calls (ops/cuda/gemm.cu), emulated on the host with cuBLASLt's
// names, enum values, signatures and contract, so that the descriptors, layouts, epilogues and
// operand types at our call sites are tested on the CPU. Include it through
// engine/cuda/cublaslt_api.h, which picks the toolkit's <cublasLt.h> in the real build.
//
// Contract (as cuBLASLt): matrices are column-major; D (m x n) = alpha · op(A) · op(B) + beta · C,
// then the epilogue; C is not read when beta == 0, and C and D may be the same matrix. alpha and beta
// are host pointers of the scale type. A layout describes a matrix as stored (before op), with a
// batch count and a batch stride in elements (0 shares one matrix across the batch).
//
// What is emulated, and nothing else (anything outside it throws engine::Error naming what is not
// emulated, so an untested combination never computes a silent wrong answer):
//   types (A, B, C = D; compute; scale): (f32, f32, f32; 32F or 32F_FAST_TF32; f32),
//                                        (bf16, bf16, f32; 32F; f32), (f64, f64, f64; 64F; f64)
//   epilogues (f32 D, batch count 1): DEFAULT; BIAS: + bias[row] (m); GELU_AUX_BIAS: aux = t + bias,
//     D = gelu(aux) (tanh form); DGELU: D = t · gelu'(aux); BGRADB: bias[col] = Σ_k op(B)[k, col] (n),
//     unscaled; where t is the product-plus-C value. bias and aux hold D's type; aux has its own
//     leading dimension, which must be a multiple of 8 and >= m (cuBLASLt's rule: the heuristic
//     returns CUBLAS_STATUS_NOT_SUPPORTED otherwise, so callers meet the refusal they would meet on a GPU).
// Sums accumulate in double and round once to D's type (cuBLASLt accumulates in f32, or on TF32
// inputs with 32F_FAST_TF32: compare with a tolerance); bf16 operands are widened exactly. The
// heuristic returns one algorithm needing no workspace, made for the preference's minimum pointer
// alignments (256 bytes unless set, as cuBLASLt assumes); cublasLtMatmul throws when a matrix is
// less aligned than the algorithm was chosen for (on a GPU: a misaligned access or a wrong kernel).
// As the cuBLAS emulator, every matrix and vector must lie inside one device allocation of the
// handle's device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/emu/cublas_api.h"
#include "engine/emu/runtime_api.h"

enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16BF = 14 };
using cudaDataType = cudaDataType_t;

enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_64F = 70, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 };

enum cublasLtMatmulDescAttributes_t {
  CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,
  CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,
  CUBLASLT_MATMUL_DESC_TRANSA = 3,
  CUBLASLT_MATMUL_DESC_TRANSB = 4,
  CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
};

enum cublasLtMatrixLayoutAttribute_t {
  CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,
  CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,
};

enum cublasLtMatmulPreferenceAttributes_t {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
};

enum cublasLtEpilogue_t {
  CUBLASLT_EPILOGUE_DEFAULT = 1,
  CUBLASLT_EPILOGUE_BIAS = 4,
  CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4,
  CUBLASLT_EPILOGUE_DGELU = 64 | 128,
  CUBLASLT_EPILOGUE_BGRADB = 512,
};

struct EmulatedLtContext;
struct EmulatedMatmulDesc;
struct EmulatedMatrixLayout;
struct EmulatedMatmulPreference;
using cublasLtHandle_t = EmulatedLtContext*;
using cublasLtMatmulDesc_t = EmulatedMatmulDesc*;
using cublasLtMatrixLayout_t = EmulatedMatrixLayout*;
using cublasLtMatmulPreference_t = EmulatedMatmulPreference*;

struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};

struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle);

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute_type,
                                        cudaDataType_t scale_type);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
// buf holds the attribute's value; a size other than the attribute's type's is CUBLAS_STATUS_INVALID_VALUE.
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size);

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size);

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size);

// One result (workspace 0) for an emulated combination whose sizes agree; CUBLAS_STATUS_NOT_SUPPORTED
// with *returned = 0 where cuBLASLt refuses (sizes that do not chain, an aux leading dimension that
// is not a multiple of 8 or is below m, a missing bias or aux pointer).
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned);

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream);
