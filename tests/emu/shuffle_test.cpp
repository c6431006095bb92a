// The emulator's order shuffle (engine/emu/scheduler.h): blocks, and threads between two
// synchronisation points, run in an order drawn per launch from ENGINE_EMU_SEED. In the natural
// order (seed 0) a kernel that reads a lower thread's shared memory without __syncthreads, or a
// lower block's output, happens to work; shuffled, it reads poisoned (NaN) memory and the test sees
// it. Errors the scheduler reports name the seed, so a failing order can be replayed.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

namespace {

constexpr int kThreads = 128, kBlocks = 64;

// out[t] = t + 1 read back from the slot of thread t - 1 (thread 0 reads its own). Correct only when
// the write of thread t - 1 is visible, which __syncthreads guarantees and thread order does not.
template <bool Barrier>
__global__ void neighbour_kernel(float* out) {
  ENGINE_SHARED(float, slot, kThreads);
  const int t = int(threadIdx.x);
  slot[t] = float(t);
  if constexpr (Barrier) __syncthreads();
  out[t] = slot[t == 0 ? 0 : t - 1] + (t == 0 ? 1.0f : 2.0f);
}

// out[b] = b + 1 computed from block b - 1's output: relies on block order, which CUDA never promises.
__global__ void chained_blocks_kernel(float* out) {
  const int b = int(blockIdx.x);
  if (threadIdx.x == 0) out[b] = b == 0 ? 1.0f : out[b - 1] + 1.0f;
}

__global__ void early_exit_kernel(float* out) {
  if (threadIdx.x >= 10) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Runs `launch` into a fresh (poisoned) buffer of n floats under `seed`; returns the buffer.
template <typename Launch>
std::vector<float> run_with_seed(uint64_t seed, int n, Launch&& launch) {
  const uint64_t previous = engine::emu::detail::shuffle_seed();
  engine::emu::detail::set_shuffle_seed(seed);
  float* out = nullptr;
  CUDA_CHECK(cudaMalloc(&out, n * sizeof(float)));
  try {
    launch(out);
  } catch (...) {
    engine::emu::detail::set_shuffle_seed(previous);
    (void)cudaFree(out);
    throw;
  }
  engine::emu::detail::set_shuffle_seed(previous);
  std::vector<float> values(size_t(n), 0.0f);
  CUDA_CHECK(cudaMemcpy(values.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(out));
  return values;
}

// How many of values[i] differ from i + 1 (a NaN differs).
int wrong_values(const std::vector<float>& values) {
  int wrong = 0;
  for (size_t i = 0; i < values.size(); ++i) wrong += !(values[i] == float(i + 1));
  return wrong;
}

}  // namespace

TEST_CASE("a missing __syncthreads passes in thread order and fails under the shuffle") {
  auto* missing = neighbour_kernel<false>;
  auto* present = neighbour_kernel<true>;
  const auto launch_missing = [&](float* out) { ENGINE_LAUNCH(missing, 1, kThreads, 0, nullptr, out); };
  const auto launch_present = [&](float* out) { ENGINE_LAUNCH(present, 1, kThreads, 0, nullptr, out); };
  CHECK(wrong_values(run_with_seed(0, kThreads, launch_missing)) == 0);  // the bug hides in order
  for (uint64_t seed : {1, 2, 12345}) {
    CAPTURE(seed);
    CHECK(wrong_values(run_with_seed(seed, kThreads, launch_missing)) > 0);  // and shows shuffled
    CHECK(wrong_values(run_with_seed(seed, kThreads, launch_present)) == 0);
  }
}

TEST_CASE("a kernel that relies on block order passes in order and fails under the shuffle") {
  const auto launch = [](float* out) { ENGINE_LAUNCH(chained_blocks_kernel, kBlocks, 32, 0, nullptr, out); };
  CHECK(wrong_values(run_with_seed(0, kBlocks, launch)) == 0);
  CHECK(wrong_values(run_with_seed(7, kBlocks, launch)) > 0);
}

TEST_CASE("the scheduler's errors name the shuffle seed that reproduces them") {
  const auto launch = [](float* out) { ENGINE_LAUNCH(early_exit_kernel, 1, 32, 0, nullptr, out); };
  std::string message;
  try {
    run_with_seed(99, 32, launch);
  } catch (const engine::Error& e) {
    message = e.what();
  }
  CHECK(message.find("divergent barrier") != std::string::npos);
  CHECK(message.find("ENGINE_EMU_SEED=99") != std::string::npos);
}
