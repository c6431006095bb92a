// The emulated cuBLASLt matmul (engine/emu/cublaslt_api.h): descriptors as plain structs, one
// validation shared by the heuristic and the matmul, products summed in double with the epilogues
// applied on the host.
#include "engine/emu/cublaslt_api.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "engine/bfloat16.h"
#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/error.h"

struct EmulatedLtContext {
  int device = 0;  // current when the handle was made: its calls must run there
};

struct EmulatedMatmulDesc {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;  // BIAS, GELU_AUX_BIAS: read; BGRADB: written
  void* aux = nullptr;         // GELU_AUX_BIAS: written; DGELU: read
  int64_t aux_ld = 0;
};

struct EmulatedMatrixLayout {
  cudaDataType_t type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  int32_t batch_count = 1;
  int64_t batch_stride = 0;  // elements
};

struct EmulatedMatmulPreference {
  uint64_t max_workspace_bytes = 0;
  uint32_t min_alignment[4] = {256, 256, 256, 256};  // A, B, C, D bytes
};

namespace {

const char* const kWhere = "emulated cuBLASLt";

size_t type_size(cudaDataType_t type) {
  switch (type) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16BF: return 2;
  }
  throw engine::Error(engine::detail::concat(kWhere, ": data type ", int(type), " is not emulated"));
}

double load(const void* base, cudaDataType_t type, int64_t index) {
  switch (type) {
    case CUDA_R_32F: return double(static_cast<const float*>(base)[index]);
    case CUDA_R_64F: return static_cast<const double*>(base)[index];
    case CUDA_R_16BF: return double(engine::f32_from_bf16_bits(static_cast<const uint16_t*>(base)[index]));
  }
  return 0.0;
}

// Stores `value` rounded once to `type` (f32 or f64: D's types).
void store(void* base, cudaDataType_t type, int64_t index, double value) {
  if (type == CUDA_R_64F) static_cast<double*>(base)[index] = value;
  else static_cast<float*>(base)[index] = float(value);
}

// Rounds as a store to `type` would.
double rounded(cudaDataType_t type, double value) { return type == CUDA_R_64F ? value : double(float(value)); }

// GPT-2's tanh GELU, x·σ(2z) with z = √(2/π)·(x + 0.044715·x³), and its derivative.
double gelu(double x) { return x / (1.0 + std::exp(-2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x))); }
double gelu_derivative(double x) {
  const double s = 0.7978845608028654;
  const double sigma = 1.0 / (1.0 + std::exp(-2.0 * s * (x + 0.044715 * x * x * x)));
  return sigma + 2.0 * x * sigma * (1.0 - sigma) * s * (1.0 + 3.0 * 0.044715 * x * x);
}

bool is_epilogue(uint32_t value) {
  return value == CUBLASLT_EPILOGUE_DEFAULT || value == CUBLASLT_EPILOGUE_BIAS ||
         value == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || value == CUBLASLT_EPILOGUE_DGELU ||
         value == CUBLASLT_EPILOGUE_BGRADB;
}

// The problem a descriptor and four layouts describe, once checked.
struct Problem {
  int64_t m = 0, n = 0, k = 0;
  int32_t batch = 1;
};

// Throws for a combination the emulator does not implement; returns CUBLAS_STATUS_NOT_SUPPORTED or
// CUBLAS_STATUS_INVALID_VALUE where cuBLASLt refuses the problem, and fills `problem` otherwise.
cublasStatus_t check_problem(const EmulatedMatmulDesc* desc, const EmulatedMatrixLayout* A,
                             const EmulatedMatrixLayout* B, const EmulatedMatrixLayout* C,
                             const EmulatedMatrixLayout* D, Problem& problem) {
  if (desc == nullptr || A == nullptr || B == nullptr || C == nullptr || D == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool f32 = A->type == CUDA_R_32F && B->type == CUDA_R_32F && D->type == CUDA_R_32F &&
                   (desc->compute == CUBLAS_COMPUTE_32F || desc->compute == CUBLAS_COMPUTE_32F_FAST_TF32) &&
                   desc->scale == CUDA_R_32F;
  const bool bf16 = A->type == CUDA_R_16BF && B->type == CUDA_R_16BF && D->type == CUDA_R_32F &&
                    desc->compute == CUBLAS_COMPUTE_32F && desc->scale == CUDA_R_32F;
  const bool f64 = A->type == CUDA_R_64F && B->type == CUDA_R_64F && D->type == CUDA_R_64F &&
                   desc->compute == CUBLAS_COMPUTE_64F && desc->scale == CUDA_R_64F;
  ENGINE_CHECK((f32 || bf16 || f64) && C->type == D->type, kWhere, ": types A ", int(A->type), ", B ", int(B->type),
               ", C ", int(C->type), ", D ", int(D->type), " with compute type ", int(desc->compute),
               " and scale type ", int(desc->scale),
               " are not emulated (f32, f32, f32, f32 / bf16, bf16, f32, f32 / f64 throughout)");
  ENGINE_CHECK(is_epilogue(desc->epilogue), kWhere, ": epilogue ", desc->epilogue,
               " is not emulated (DEFAULT, BIAS, GELU_AUX_BIAS, DGELU, BGRADB)");
  const bool epilogue = desc->epilogue != CUBLASLT_EPILOGUE_DEFAULT;
  ENGINE_CHECK(!epilogue || D->type == CUDA_R_32F, kWhere, ": epilogue ", desc->epilogue,
               " is emulated for an f32 D only");
  auto valid_op = [](int32_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T; };
  if (!valid_op(desc->transa) || !valid_op(desc->transb)) return CUBLAS_STATUS_INVALID_VALUE;
  for (const EmulatedMatrixLayout* layout : {A, B, C, D})
    if (layout->ld < int64_t(std::max<uint64_t>(1, layout->rows)) || layout->batch_count < 1 ||
        layout->batch_stride < 0)
      return CUBLAS_STATUS_INVALID_VALUE;
  const bool ta = desc->transa == CUBLAS_OP_T, tb = desc->transb == CUBLAS_OP_T;
  const int64_t m = int64_t(D->rows), n = int64_t(D->cols);
  const int64_t a_m = int64_t(ta ? A->cols : A->rows), k = int64_t(ta ? A->rows : A->cols);
  const int64_t b_k = int64_t(tb ? B->cols : B->rows), b_n = int64_t(tb ? B->rows : B->cols);
  if (a_m != m || b_k != k || b_n != n || C->rows != D->rows || C->cols != D->cols) return CUBLAS_STATUS_INVALID_VALUE;
  const int32_t batch = D->batch_count;
  if (A->batch_count != batch || B->batch_count != batch || C->batch_count != batch) return CUBLAS_STATUS_INVALID_VALUE;
  ENGINE_CHECK(!epilogue || batch == 1, kWhere, ": epilogue ", desc->epilogue,
               " with a batch count of ", batch, " is not emulated (no bias or aux batch strides)");
  const uint32_t e = desc->epilogue;
  if ((e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_BGRADB) &&
      desc->bias == nullptr)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if ((e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_DGELU) &&
      (desc->aux == nullptr || desc->aux_ld % 8 != 0 || desc->aux_ld < m))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  problem = {m, n, k, batch};
  return CUBLAS_STATUS_SUCCESS;
}

// Bytes spanned by `layout`'s matrices over the batch.
size_t layout_bytes(const EmulatedMatrixLayout* layout) {
  if (layout->rows == 0 || layout->cols == 0) return 0;
  const size_t one = size_t((int64_t(layout->cols) - 1) * layout->ld + int64_t(layout->rows));
  return (one + size_t(layout->batch_count - 1) * size_t(layout->batch_stride)) * type_size(layout->type);
}

// An attribute's value from the caller's buffer, which must hold exactly the field's type.
template <typename Field>
cublasStatus_t set_value(Field& field, const void* buf, size_t size) {
  if (buf == nullptr || size != sizeof(Field)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&field, buf, sizeof(Field));
  return CUBLAS_STATUS_SUCCESS;
}

// Handles and descriptors are plain heap objects, as cuBLASLt's opaque ones.
template <typename Object>
cublasStatus_t create(Object** out, const Object& value) {
  *out = new Object(value);
  return CUBLAS_STATUS_SUCCESS;
}
template <typename Object>
cublasStatus_t destroy(Object* object) {
  delete object;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) { return create(handle, {engine::emu::current_device()}); }

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  return handle == nullptr ? CUBLAS_STATUS_NOT_INITIALIZED : destroy(handle);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute_type,
                                        cudaDataType_t scale_type) {
  EmulatedMatmulDesc value;
  value.compute = compute_type;
  value.scale = scale_type;
  return create(desc, value);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) { return destroy(desc); }

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  if (desc == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_value(desc->compute, buf, size);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_value(desc->scale, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSA: return set_value(desc->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return set_value(desc->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_value(desc->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_value(desc->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return set_value(desc->aux, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return set_value(desc->aux_ld, buf, size);
  }
  throw engine::Error(engine::detail::concat(kWhere, ": matmul attribute ", int(attr), " is not emulated"));
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  type_size(type);  // refuses a type the emulator lacks
  return create(layout, {type, rows, cols, ld, 1, 0});
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) { return destroy(layout); }

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  if (layout == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_value(layout->batch_count, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_value(layout->batch_stride, buf, size);
  }
  throw engine::Error(engine::detail::concat(kWhere, ": layout attribute ", int(attr), " is not emulated"));
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) { return create(pref, {}); }

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) { return destroy(pref); }

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  if (pref == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return set_value(pref->max_workspace_bytes, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return set_value(pref->min_alignment[0], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return set_value(pref->min_alignment[1], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return set_value(pref->min_alignment[2], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_value(pref->min_alignment[3], buf, size);
  }
  throw engine::Error(engine::detail::concat(kWhere, ": preference attribute ", int(attr), " is not emulated"));
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (pref == nullptr || requested <= 0 || results == nullptr || returned == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  Problem problem;
  const cublasStatus_t status = check_problem(desc, Adesc, Bdesc, Cdesc, Ddesc, problem);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  results[0] = cublasLtMatmulHeuristicResult_t{};
  results[0].algo.data[0] = 1;  // the one emulated algorithm, made for these pointer alignments:
  for (int i = 0; i < 4; ++i) results[0].algo.data[1 + i] = pref->min_alignment[i];
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  // The one emulated algorithm needs no workspace.
  (void)workspace;
  (void)workspace_bytes;
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  Problem p;
  const cublasStatus_t status = check_problem(desc, Adesc, Bdesc, Cdesc, Ddesc, p);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  const std::string where = std::string(kWhere) + " cublasLtMatmul";
  ENGINE_CHECK(handle->device == engine::emu::current_device(), where, ": the cuBLASLt handle was made on device ",
               handle->device, " but the current device is ", engine::emu::current_device(), " (keep one handle per device)");
  engine::emu::check_stream_device(stream, where.c_str());
  if (p.m == 0 || p.n == 0) return CUBLAS_STATUS_SUCCESS;

  const void* const matrices[4] = {A, B, C, D};
  for (int i = 0; i < 4; ++i) {
    const uint64_t assumed = algo != nullptr ? algo->data[1 + i] : 256;
    ENGINE_CHECK(reinterpret_cast<uintptr_t>(matrices[i]) % assumed == 0, where, ": matrix ", "ABCD"[i], " at ",
                 matrices[i], " is not ", assumed, "-byte aligned as its algorithm assumes (set "
                 "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_", "ABCD"[i], "_BYTES for the heuristic)");
  }
  const bool f64 = Ddesc->type == CUDA_R_64F;
  const double a = f64 ? *static_cast<const double*>(alpha) : double(*static_cast<const float*>(alpha));
  const double b = f64 ? *static_cast<const double*>(beta) : double(*static_cast<const float*>(beta));
  if (p.k > 0) {
    engine::emu::check_device_range(A, layout_bytes(Adesc), (where + " matrix A").c_str());
    engine::emu::check_device_range(B, layout_bytes(Bdesc), (where + " matrix B").c_str());
  }
  if (b != 0.0) engine::emu::check_device_range(C, layout_bytes(Cdesc), (where + " matrix C").c_str());
  engine::emu::check_device_range(D, layout_bytes(Ddesc), (where + " matrix D").c_str());
  const uint32_t epilogue = desc->epilogue;
  const cudaDataType_t d_type = Ddesc->type;
  const size_t d_size = type_size(d_type);
  if (epilogue == CUBLASLT_EPILOGUE_BIAS || epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
    engine::emu::check_device_range(desc->bias, size_t(p.m) * d_size, (where + " bias").c_str());
  if (epilogue == CUBLASLT_EPILOGUE_BGRADB)
    engine::emu::check_device_range(desc->bias, size_t(p.n) * d_size, (where + " bias gradient").c_str());
  if (epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || epilogue == CUBLASLT_EPILOGUE_DGELU)
    engine::emu::check_device_range(desc->aux, size_t((p.n - 1) * desc->aux_ld + p.m) * d_size, (where + " aux").c_str());

  const bool ta = desc->transa == CUBLAS_OP_T, tb = desc->transb == CUBLAS_OP_T;
  const char* const a_bytes = static_cast<const char*>(A);
  const char* const b_bytes = static_cast<const char*>(B);
  const char* const c_bytes = static_cast<const char*>(C);
  char* const d_bytes = static_cast<char*>(D);
  for (int32_t batch = 0; batch < p.batch; ++batch) {
    const void* Ab = a_bytes + size_t(batch) * size_t(Adesc->batch_stride) * type_size(Adesc->type);
    const void* Bb = b_bytes + size_t(batch) * size_t(Bdesc->batch_stride) * type_size(Bdesc->type);
    const void* Cb = c_bytes + size_t(batch) * size_t(Cdesc->batch_stride) * d_size;
    void* Db = d_bytes + size_t(batch) * size_t(Ddesc->batch_stride) * d_size;
    // op(A)[row, i] and op(B)[i, col] as stored column-major.
    auto a_at = [&](int64_t row, int64_t i) { return load(Ab, Adesc->type, ta ? i + row * Adesc->ld : row + i * Adesc->ld); };
    auto b_at = [&](int64_t i, int64_t col) { return load(Bb, Bdesc->type, tb ? col + i * Bdesc->ld : i + col * Bdesc->ld); };
#pragma omp parallel for if (p.m * p.n * p.k > (1 << 16))
    for (int64_t col = 0; col < p.n; ++col)
      for (int64_t row = 0; row < p.m; ++row) {
        double acc = 0.0;
        for (int64_t i = 0; i < p.k; ++i) acc += a_at(row, i) * b_at(i, col);
        // t: the product scaled, plus beta·C (C is not read when beta == 0), rounded to D's type.
        double t = a * rounded(d_type, acc);
        if (b != 0.0) t += b * load(Cb, Cdesc->type, row + col * Cdesc->ld);
        t = rounded(d_type, t);
        const int64_t aux_index = row + col * desc->aux_ld;
        if (epilogue == CUBLASLT_EPILOGUE_BIAS) {
          t += load(desc->bias, d_type, row);
        } else if (epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) {
          t = rounded(d_type, t + load(desc->bias, d_type, row));
          store(desc->aux, d_type, aux_index, t);
          t = gelu(t);
        } else if (epilogue == CUBLASLT_EPILOGUE_DGELU) {
          t *= gelu_derivative(load(desc->aux, d_type, aux_index));
        }
        store(Db, d_type, row + col * Ddesc->ld, t);
      }
    if (epilogue == CUBLASLT_EPILOGUE_BGRADB)
      for (int64_t col = 0; col < p.n; ++col) {
        double sum = 0.0;
        for (int64_t i = 0; i < p.k; ++i) sum += b_at(i, col);
        store(desc->bias, d_type, col, sum);
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}
