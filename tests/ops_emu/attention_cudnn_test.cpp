// ops::attention through cuDNN under the kernel emulator, whose cuDNN backend subset
// (engine/emu/cudnn_api.h) recognises our SDPA graphs and evaluates them on the host: the shared
// body (tests/common/attention_cudnn_checks.h, also run on a real GPU by test_ops_gpu), and what only
// the emulator can show: which engines ran, a cuDNN that refuses (the run stops unless the fallback
// is allowed), and a graph that is not SDPA refused with the reason.
#include <doctest/doctest.h>

#include <array>
#include <string>

#include "common/attention_cudnn_checks.h"
#include "common/cuda_ready.h"
#include "engine/cuda/cudnn_api.h"
#include "engine/cuda/cudnn_check.h"

namespace {

using attention_cudnn_checks::AttentionScope;
using engine::Tensor;

// A finalised tensor descriptor of the emulated cuDNN (a test's own graph).
cudnnBackendDescriptor_t tensor(int64_t uid, const std::array<int64_t, 4>& dims, bool is_virtual) {
  cudnnBackendDescriptor_t t;
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t));
  const cudnnDataType_t type = CUDNN_DATA_BFLOAT16;
  const std::array<int64_t, 4> strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const int64_t alignment = 16;
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data()));
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data()));
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
  CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
  CUDNN_CHECK(cudnnBackendFinalize(t));
  return t;
}

}  // namespace

TEST_CASE("attention through the emulated cuDNN matches the CPU within bf16 tolerance") {
  if (!cuda_ready()) return;
  engine::Generator gen(41);
  attention_cudnn_checks::check_expressible_cases_match_cpu(ops::AttentionBackend::cudnn_bf16, gen);
}

TEST_CASE("attention with cuDNN asked for runs the f32 kernel where cuDNN's graph cannot express the call") {
  if (!cuda_ready()) return;
  engine::Generator gen(42);
  attention_cudnn_checks::check_inexpressible_cases_run_the_kernel(gen);
}

TEST_CASE("cuDNN attention's backward runs only deterministic engines") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  const int64_t before = engine::emu::cudnn_nondeterministic_executions();
  attention_cudnn_checks::check_backward_is_deterministic(gen);
  // The emulated heuristics rank a non-deterministic backward engine first, as cuDNN does.
  CHECK(engine::emu::cudnn_nondeterministic_executions() == before);
}

TEST_CASE("cuDNN attention is the default on CUDA in bf16") {
  if (!cuda_ready()) return;
  engine::Generator gen(44);
  attention_cudnn_checks::check_cudnn_is_the_bf16_default(gen);
}

TEST_CASE("a cuDNN that refuses the graph stops the run unless the fallback is allowed") {
  if (!cuda_ready()) return;
  engine::Generator gen(45);
  // A shape no other test uses, so that the refusal it caches touches nothing else.
  const attention_checks::Case c{1, 1, 24, 24, 8, 8, true};
  engine::emu::set_cudnn_refusal("no engine on this emulated GPU");
  {
    const AttentionScope scope(ops::AttentionBackend::cudnn_bf16, false);
    CHECK_THROWS_WITH_AS(attention_cudnn_checks::cuda_vs_cpu(c, gen),
                         doctest::Contains("cuDNN attention was asked for"), engine::Error);
    CHECK_THROWS_WITH_AS(attention_cudnn_checks::cuda_vs_cpu(c, gen),
                         doctest::Contains("no engine on this emulated GPU"), engine::Error);
    CHECK_THROWS_WITH_AS(attention_cudnn_checks::cuda_vs_cpu(c, gen), doctest::Contains("--attention-fallback"),
                         engine::Error);
  }
  {
    const AttentionScope scope(ops::AttentionBackend::cudnn_bf16, true);
    const auto [forward, backward] = attention_cudnn_checks::cuda_vs_cpu(c, gen);
    CHECK(forward < 1e-5);  // the f32 kernel ran
    CHECK(backward < 1e-5);
  }
  engine::emu::set_cudnn_refusal("");
}

TEST_CASE("the emulated cuDNN refuses a graph that is not SDPA, saying why") {
  if (!cuda_ready()) return;
  cudnnHandle_t handle;
  CUDNN_CHECK(cudnnCreate(&handle));
  // One matmul: a valid graph, but no fused attention engine takes it.
  cudnnBackendDescriptor_t a = tensor(1, {1, 1, 16, 16}, false), b = tensor(2, {1, 1, 16, 16}, false),
                           c = tensor(3, {1, 1, 16, 16}, false);
  cudnnBackendDescriptor_t mm, op, graph, heuristics;
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_MATMUL_DESCRIPTOR, &mm));
  CUDNN_CHECK(cudnnBackendSetAttribute(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute));
  CUDNN_CHECK(cudnnBackendFinalize(mm));
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, &op));
  CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a));
  CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
  CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c));
  CUDNN_CHECK(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm));
  CUDNN_CHECK(cudnnBackendFinalize(op));
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
  CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &op));
  CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle));
  CUDNN_CHECK(cudnnBackendFinalize(graph));
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heuristics));
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  CUDNN_CHECK(cudnnBackendSetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
  CUDNN_CHECK(cudnnBackendSetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
  CHECK_THROWS_WITH_AS(CUDNN_CHECK(cudnnBackendFinalize(heuristics)),
                       doctest::Contains("not the SDPA forward or backward pattern"), engine::Error);
  for (cudnnBackendDescriptor_t d : {heuristics, graph, op, mm, a, b, c}) CUDNN_CHECK(cudnnBackendDestroyDescriptor(d));
  CUDNN_CHECK(cudnnDestroy(handle));
}
