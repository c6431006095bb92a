// The kernel emulator's execution model: barriers, shared memory, warp collectives, atomics, and the
// misuse it must report (divergent barriers, bad launch shapes, host pointers as device pointers).
// The kernels here are plain CUDA C++ written against engine/cuda/cuda_api.h.
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"

namespace {

constexpr int kBlock = 256;

// Device buffer holding `values`, freed at scope exit.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  explicit DeviceBuffer(size_t n) : count(n) { CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& values) : DeviceBuffer(values.size()) {
    CUDA_CHECK(cudaMemcpy(ptr, values.data(), count * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { (void)cudaFree(ptr); }
  std::vector<T> read() const {
    std::vector<T> out(count);
    CUDA_CHECK(cudaMemcpy(out.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }
};

// Block-wide sum through shared memory: correct only if every barrier holds.
__global__ void block_sum_kernel(const float* in, float* out, int n) {
  ENGINE_SHARED(float, partial, kBlock);
  const int tid = int(threadIdx.x);
  const int i = int(blockIdx.x) * kBlock + tid;
  partial[tid] = i < n ? in[i] : 0.0f;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride /= 2) {
    if (tid < stride) partial[tid] += partial[tid + stride];
    __syncthreads();
  }
  if (tid == 0) out[blockIdx.x] = partial[0];
}

// Tiled transpose with a padded 2-D shared tile and a 2-D block.
__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  ENGINE_SHARED_2D(float, tile, 16, 17);
  const int x = int(blockIdx.x * 16 + threadIdx.x), y = int(blockIdx.y * 16 + threadIdx.y);
  if (x < cols && y < rows) tile[threadIdx.y][threadIdx.x] = in[y * cols + x];
  __syncthreads();
  const int tx = int(blockIdx.y * 16 + threadIdx.x), ty = int(blockIdx.x * 16 + threadIdx.y);
  if (tx < rows && ty < cols) out[ty * rows + tx] = tile[threadIdx.x][threadIdx.y];
}

// Reverses each block's slice through dynamic shared memory.
__global__ void reverse_kernel(const int* in, int* out) {
  ENGINE_DYNAMIC_SHARED(int, buffer);
  const int tid = int(threadIdx.x), n = int(blockDim.x);
  buffer[tid] = in[blockIdx.x * n + tid];
  __syncthreads();
  out[blockIdx.x * n + tid] = buffer[n - 1 - tid];
}

constexpr int kWarpResults = 10;

// Every warp collective, with results laid out as out[thread * kWarpResults + k].
__global__ void warp_kernel(int* out) {
  const unsigned full = 0xffffffffu;
  const int lane = int(threadIdx.x) % 32;
  int* o = out + threadIdx.x * kWarpResults;
  o[0] = __shfl_sync(full, lane * 10, (lane + 3) % 32);
  o[1] = __shfl_up_sync(full, lane, 2);
  o[2] = __shfl_down_sync(full, lane, 5);
  o[3] = __shfl_xor_sync(full, lane, 1);
  o[4] = __shfl_down_sync(full, lane, 1, 8);  // width 8: groups of 8 lanes
  o[5] = int(__ballot_sync(full, lane % 3 == 0));
  o[6] = __any_sync(full, lane == 5);
  o[7] = __all_sync(full, lane < 31);
  float sum = float(lane);  // butterfly reduction: every lane ends with the warp's sum
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(full, sum, offset);
  o[8] = int(sum);
  __syncwarp();
  // A half-warp collective: only the low 16 lanes take part.
  o[9] = lane < 16 ? __shfl_sync(0x0000ffffu, lane, 15 - lane) : -1;
}

__global__ void atomics_kernel(int* counter, int* maximum, float* total, unsigned* cas) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(counter, 1);
  atomicMax(maximum, i);
  atomicAdd(total, 0.5f);
  unsigned seen = *cas;
  while (atomicCAS(cas, seen, seen + 2) != seen) seen = *cas;
}

__global__ void early_exit_kernel(float* out) {
  if (threadIdx.x >= 10) return;  // the classic bug: the rest of the block waits forever
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void split_barrier_kernel(float* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x < 16) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1.0f, 0);
}

__global__ void shuffle_outside_mask_kernel(float* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1.0f, 20);
}

__global__ void noop_kernel(float* out) {
  if (out) out[0] = 0.0f;
}

__global__ void throwing_kernel(float*) { ENGINE_CHECK(threadIdx.x != 7, "device-side check failed"); }

}  // namespace

TEST_CASE("emulator: a block reduction through shared memory is exact") {
  const int n = 1000;
  std::vector<float> values(n);
  for (int i = 0; i < n; ++i) values[size_t(i)] = float((i * 37) % 101) - 50.0f;  // integers: sums are exact
  DeviceBuffer<float> in(values);
  const int blocks = (n + kBlock - 1) / kBlock;
  DeviceBuffer<float> out{size_t(blocks)};
  ENGINE_LAUNCH(block_sum_kernel, blocks, kBlock, 0, nullptr, in.ptr, out.ptr, n);
  const std::vector<float> sums = out.read();
  for (int b = 0; b < blocks; ++b) {
    float expected = 0.0f;
    for (int i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) expected += values[size_t(i)];
    CHECK(sums[size_t(b)] == expected);
  }
}

TEST_CASE("emulator: 2-D blocks, 2-D shared tiles and dynamic shared memory") {
  const int rows = 37, cols = 21;
  std::vector<float> values(size_t(rows * cols));
  std::iota(values.begin(), values.end(), 1.0f);
  DeviceBuffer<float> in(values), out(values.size());
  ENGINE_LAUNCH(transpose_kernel, dim3((cols + 15) / 16, (rows + 15) / 16), dim3(16, 16), 0, nullptr, in.ptr, out.ptr,
                rows, cols);
  const std::vector<float> t = out.read();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) CHECK(t[size_t(c * rows + r)] == values[size_t(r * cols + c)]);

  std::vector<int> ints(3 * 64);
  std::iota(ints.begin(), ints.end(), 0);
  DeviceBuffer<int> a(ints), b(ints.size());
  ENGINE_LAUNCH(reverse_kernel, 3, 64, 64 * sizeof(int), nullptr, a.ptr, b.ptr);
  const std::vector<int> reversed = b.read();
  for (int blk = 0; blk < 3; ++blk)
    for (int t2 = 0; t2 < 64; ++t2) CHECK(reversed[size_t(blk * 64 + t2)] == blk * 64 + 63 - t2);

  // More than 48 KiB of dynamic shared memory needs the kernel's attribute raised first.
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(reverse_kernel, 1, 64, 64 * 1024, nullptr, a.ptr, b.ptr),
                       doctest::Contains("cudaFuncSetAttribute"), engine::Error);
  CUDA_CHECK(cudaFuncSetAttribute(reverse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
  ENGINE_LAUNCH(reverse_kernel, 1, 64, 64 * 1024, nullptr, a.ptr, b.ptr);
}

TEST_CASE("emulator: warp shuffles and votes match the hardware's definitions") {
  const int threads = 64;  // two warps
  DeviceBuffer<int> out(size_t(threads * kWarpResults));
  ENGINE_LAUNCH(warp_kernel, 1, threads, 0, nullptr, out.ptr);
  const std::vector<int> o = out.read();
  unsigned ballot = 0;
  for (int lane = 0; lane < 32; lane += 3) ballot |= 1u << lane;
  for (int t = 0; t < threads; ++t) {
    const int lane = t % 32;
    const int* r = &o[size_t(t * kWarpResults)];
    CAPTURE(t);
    CHECK(r[0] == ((lane + 3) % 32) * 10);
    CHECK(r[1] == (lane >= 2 ? lane - 2 : lane));
    CHECK(r[2] == (lane + 5 < 32 ? lane + 5 : lane));
    CHECK(r[3] == (lane ^ 1));
    CHECK(r[4] == (lane % 8 + 1 < 8 ? lane + 1 : lane));
    CHECK(unsigned(r[5]) == ballot);
    CHECK(r[6] == 1);
    CHECK(r[7] == 0);
    CHECK(r[8] == 31 * 32 / 2);
    CHECK(r[9] == (lane < 16 ? 15 - lane : -1));
  }
}

TEST_CASE("emulator: atomics accumulate over the whole grid") {
  DeviceBuffer<int> counter(std::vector<int>{0}), maximum(std::vector<int>{-1});
  DeviceBuffer<float> total(std::vector<float>{0.0f});
  DeviceBuffer<unsigned> cas(std::vector<unsigned>{1});
  ENGINE_LAUNCH(atomics_kernel, 5, 96, 0, nullptr, counter.ptr, maximum.ptr, total.ptr, cas.ptr);
  CHECK(counter.read()[0] == 480);
  CHECK(maximum.read()[0] == 479);
  CHECK(total.read()[0] == 240.0f);
  CHECK(cas.read()[0] == 1 + 2 * 480);
}

TEST_CASE("emulator: barriers that not every thread reaches are reported") {
  DeviceBuffer<float> out(256);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(early_exit_kernel, 2, 64, 0, nullptr, out.ptr),
                       doctest::Contains("kernel early_exit_kernel block (0, 0, 0): divergent barrier"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(early_exit_kernel, 2, 64, 0, nullptr, out.ptr),
                       doctest::Contains("thread (10, 0, 0) (warp 0 lane 10) (and 53 others) exited"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(split_barrier_kernel, 1, 64, 0, nullptr, out.ptr),
                       doctest::Contains("emulator_test.cpp"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(exited_lane_kernel, 1, 32, 0, nullptr, out.ptr),
                       doctest::Contains("lane 0 has exited"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(shuffle_outside_mask_kernel, 1, 32, 0, nullptr, out.ptr),
                       doctest::Contains("reads lane 20, which is not in the mask"), engine::Error);
  // A full mask in a block whose last warp is partial names lanes that do not exist.
  DeviceBuffer<int> warp_out(size_t(48 * kWarpResults));
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(warp_kernel, 1, 48, 0, nullptr, warp_out.ptr),
                       doctest::Contains("does not exist (the block has 48 threads)"), engine::Error);
  // An exception inside a thread names the kernel, block and thread.
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(throwing_kernel, 1, 32, 0, nullptr, out.ptr),
                       doctest::Contains("thread (7, 0, 0) (warp 0 lane 7): device-side check failed"), engine::Error);
  // The emulator is usable again after a failed launch.
  CHECK_NOTHROW(ENGINE_LAUNCH(noop_kernel, 1, 32, 0, nullptr, out.ptr));
}

TEST_CASE("emulator: out-of-range launch shapes are reported") {
  DeviceBuffer<float> out(1);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, 1, 2048, 0, nullptr, out.ptr),
                       doctest::Contains("block dimension x is 2048, the limit is 1024"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, 1, dim3(64, 32), 0, nullptr, out.ptr),
                       doctest::Contains("a block has 2048 threads"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, 0, 32, 0, nullptr, out.ptr), doctest::Contains("a dimension is zero"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, dim3(1, 70000), 32, 0, nullptr, out.ptr),
                       doctest::Contains("grid dimension y is 70000"), engine::Error);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, 1, dim3(1, 1, 65), 0, nullptr, out.ptr),
                       doctest::Contains("kernel noop_kernel: invalid launch"), engine::Error);
}

TEST_CASE("emulator: host pointers where device pointers belong are reported") {
  std::vector<float> host(64, 1.0f);
  DeviceBuffer<float> device(64);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(noop_kernel, 1, 32, 0, nullptr, host.data()),
                       doctest::Contains("kernel noop_kernel: argument 0"), engine::Error);
  std::vector<float> other(64);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(other.data(), host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice)),
                       doctest::Contains("cudaMemcpyHostToDevice) destination: "), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(other.data(), host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice)),
                       doctest::Contains("is not device memory (a host pointer where a device pointer belongs?)"),
                       engine::Error);
  // Arguments swapped: the kind says device-to-host, the pointers say host-to-device.
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(device.ptr, host.data(), 64 * sizeof(float), cudaMemcpyDeviceToHost)),
                       doctest::Contains("cudaMemcpyDeviceToHost) source: "), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(host.data(), device.ptr, 64 * sizeof(float), cudaMemcpyDeviceToDevice)),
                       doctest::Contains("cudaMemcpyDeviceToDevice) destination: "), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(device.ptr, device.ptr, 64 * sizeof(float), cudaMemcpyHostToHost)),
                       doctest::Contains("is device memory, but a host pointer belongs here"), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaMemcpy(device.ptr, host.data(), 65 * sizeof(float), cudaMemcpyHostToDevice)),
                       doctest::Contains("run past the end of its device allocation"), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaFree(host.data())), doctest::Contains("is not the start of a device allocation"),
                       engine::Error);
  CHECK_NOTHROW(CUDA_CHECK(cudaMemcpy(device.ptr, host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice)));
}

TEST_CASE("CUDA_CHECK names the call, file and line") {
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaSetDevice(3)), doctest::Contains("emulator_test.cpp:"), engine::Error);
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaSetDevice(3)),
                       doctest::Contains("cudaSetDevice(3) failed: invalid device ordinal (cudaErrorInvalidDevice)"),
                       engine::Error);
}
