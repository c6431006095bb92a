// Several emulated GPUs in one process (ENGINE_EMU_DEVICES): memory, streams and cuBLAS handles
// belong to a device, a launch, copy or GEMM that reaches another device's memory fails with a
// message naming both devices, and the CUDA backend runs every primitive on its tensor's own device
// (engine/cuda/device_guard.h) whatever device is current. Also: Device::cuda() names the process's
// default device, and the caching allocator poisons a block it hands out again.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

// The engine's headers before the CUDA ones: under the emulator, CUDA's keywords (__noinline__)
// are macros that standard headers included later trip over.
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/tensor.h"

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"
#include "engine/cuda/device_guard.h"
#include "engine/cuda/init.h"
#include "engine/cuda/stream.h"
#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"

using engine::Device;
using engine::Dtype;
using engine::Tensor;

namespace {

// Two devices unless the caller asked for another count: set before the emulator first reads it.
const bool two_devices = setenv("ENGINE_EMU_DEVICES", "2", /*overwrite=*/0) == 0;

__global__ void fill_kernel(float* x, int n, float value) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] = value;
}

// Allocates `bytes` on `device`, leaving the current device as it was.
void* allocate_on(int device, size_t bytes) {
  const engine::cuda::DeviceGuard guard(Device::cuda(device));
  void* ptr = nullptr;
  CUDA_CHECK(cudaMalloc(&ptr, bytes));
  return ptr;
}

struct TwoDevices {
  TwoDevices() {
    REQUIRE(two_devices);
    REQUIRE_MESSAGE(engine::emu::device_count() >= 2, "these tests need ENGINE_EMU_DEVICES >= 2");
    CUDA_CHECK(cudaSetDevice(0));
    engine::cuda::init();
  }
};

}  // namespace

TEST_CASE_FIXTURE(TwoDevices, "each host thread has its own current emulated device") {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  CHECK(count == engine::emu::device_count());
  CHECK(cudaSetDevice(count) == cudaErrorInvalidDevice);
  CUDA_CHECK(cudaSetDevice(1));
  int seen_by_other_thread = -1;
  std::thread([&] { CUDA_CHECK(cudaGetDevice(&seen_by_other_thread)); }).join();
  CHECK(seen_by_other_thread == 0);
  CHECK(engine::cuda::current_device() == 1);
  {
    const engine::cuda::DeviceGuard guard(Device::cuda(0));
    CHECK(engine::cuda::current_device() == 0);
  }
  CHECK(engine::cuda::current_device() == 1);
  CUDA_CHECK(cudaSetDevice(0));
}

TEST_CASE_FIXTURE(TwoDevices, "a kernel launch with another device's memory fails, naming both devices") {
  float* on_one = static_cast<float*>(allocate_on(1, 64 * sizeof(float)));
  CHECK(engine::emu::device_of(on_one) == 1);
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(fill_kernel, 1, 64, 0, nullptr, on_one, 64, 1.0f),
                       doctest::Contains("is memory of device 1 but the kernel runs on device 0"),
                       engine::Error);
  {
    const engine::cuda::DeviceGuard guard(Device::cuda(1));
    ENGINE_LAUNCH(fill_kernel, 1, 64, 0, nullptr, on_one, 64, 1.0f);  // on its own device: fine
  }
  CUDA_CHECK(cudaFree(on_one));
}

TEST_CASE_FIXTURE(TwoDevices, "copies and memsets refuse another device's memory; a peer copy crosses devices") {
  const size_t bytes = 16 * sizeof(float);
  void* on_zero = allocate_on(0, bytes);
  void* on_one = allocate_on(1, bytes);
  std::vector<float> host(16, 3.0f), back(16, 0.0f);
  CHECK_THROWS_WITH_AS(cudaMemcpy(on_one, host.data(), bytes, cudaMemcpyHostToDevice),
                       doctest::Contains("is memory of device 1 but the call runs on device 0"), engine::Error);
  CHECK_THROWS_WITH_AS(cudaMemcpy(on_zero, on_one, bytes, cudaMemcpyDeviceToDevice),
                       doctest::Contains("memory of device 1"), engine::Error);
  CHECK_THROWS_WITH_AS(cudaMemset(on_one, 0, bytes), doctest::Contains("memory of device 1"), engine::Error);
  CUDA_CHECK(cudaMemcpy(on_zero, host.data(), bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpyPeer(on_one, 1, on_zero, 0, bytes));
  CHECK_THROWS_WITH_AS(cudaMemcpyPeer(on_one, 0, on_zero, 0, bytes), doctest::Contains("memory of device 1"),
                       engine::Error);
  {
    const engine::cuda::DeviceGuard guard(Device::cuda(1));
    CUDA_CHECK(cudaMemcpy(back.data(), on_one, bytes, cudaMemcpyDeviceToHost));
  }
  CHECK(back == host);
  CUDA_CHECK(cudaFree(on_zero));
  CUDA_CHECK(cudaFree(on_one));
}

TEST_CASE_FIXTURE(TwoDevices, "streams and cuBLAS handles belong to the device they were made on") {
  float* on_zero = static_cast<float*>(allocate_on(0, 4 * sizeof(float)));
  cudaStream_t stream_of_one = nullptr;
  cublasHandle_t handle_of_one = nullptr;
  {
    const engine::cuda::DeviceGuard guard(Device::cuda(1));
    CUDA_CHECK(cudaStreamCreate(&stream_of_one));
    CUBLAS_CHECK(cublasCreate(&handle_of_one));
  }
  CHECK_THROWS_WITH_AS(ENGINE_LAUNCH(fill_kernel, 1, 4, 0, stream_of_one, on_zero, 4, 1.0f),
                       doctest::Contains("the stream belongs to device 1 but the current device is 0"), engine::Error);
  const float one = 1.0f, zero = 0.0f;
  CHECK_THROWS_WITH_AS(
      cublasSgemm(handle_of_one, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 1, &one, on_zero, 2, on_zero, 1, &zero, on_zero, 2),
      doctest::Contains("the cuBLAS handle was made on device 1 but the current device is 0"), engine::Error);
  CUBLAS_CHECK(cublasDestroy(handle_of_one));
  CUDA_CHECK(cudaStreamDestroy(stream_of_one));
  CUDA_CHECK(cudaFree(on_zero));
}

// The backend makes each tensor's device current for its work, whatever device the caller left
// current, and restores the caller's after; the emulator would throw if a kernel ran elsewhere.
TEST_CASE_FIXTURE(TwoDevices, "CUDA tensors on two devices: each primitive runs on its tensor's device") {
  engine::Generator gen(5);
  const Tensor host = Tensor::randn({3, 5}, gen);
  CUDA_CHECK(cudaSetDevice(0));
  Tensor on_one = host.to(Device::cuda(1));
  CHECK(engine::emu::device_of(on_one.raw_data()) == 1);
  CHECK(engine::cuda::current_device() == 0);
  const Tensor again = host.to(Device::cuda(1));
  engine::backend_for(engine::DeviceType::cuda).add_into(on_one, again);  // a kernel on device 1
  const Tensor on_zero = on_one.to(Device::cuda(0));                       // a peer copy
  CHECK(engine::emu::device_of(on_zero.raw_data()) == 0);
  std::vector<float> doubled = host.to_vector<float>();
  for (float& v : doubled) v *= 2.0f;
  CHECK(on_zero.to(Device::cpu()).to_vector<float>() == doubled);
  Tensor column = Tensor::zeros({1, 5}, Dtype::f32, Device::cuda(1));
  column.fill_(1.5);
  CHECK(column.to(Device::cpu()).to_vector<float>() == std::vector<float>(5, 1.5f));
  CHECK(engine::cuda::current_device() == 0);
}

TEST_CASE_FIXTURE(TwoDevices, "Device::cuda() names the process's default device, not GPU 0") {
  CHECK(Device::cuda() == Device::cuda(0));
  engine::set_default_cuda_device(1);
  const Tensor t = Tensor::zeros({4}, Dtype::f32, Device::cuda());
  CHECK(t.device() == Device::cuda(1));
  CHECK(engine::emu::device_of(t.raw_data()) == 1);
  engine::set_default_cuda_device(0);
  CHECK(Device::cuda().str() == "cuda:0");
}

TEST_CASE_FIXTURE(TwoDevices, "the caching allocator poisons a block it hands out again") {
  void* first = nullptr;
  {
    const Tensor zeros = Tensor::zeros({64}, Dtype::f32, Device::cuda(0));
    first = zeros.raw_data();
  }
  const Tensor reused = Tensor::empty({64}, Dtype::f32, Device::cuda(0));
  REQUIRE(reused.raw_data() == first);  // the same block, from the cache
  for (float v : reused.to(Device::cpu()).to_vector<float>()) CHECK(std::isnan(v));
}
