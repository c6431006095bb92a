// The CUDA backend built with the emulator (engine_cuda_emu): CUDA tensors live in tracked host
// memory and every primitive runs its real kernel source. Compared with the CPU backend.
#include <doctest/doctest.h>

#include <string>

#include "common/backend_checks.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/init.h"
#include "engine/cuda/stream.h"
#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"

namespace {

struct EmulatedCuda {
  EmulatedCuda() { engine::cuda::init(); }
};

}  // namespace

TEST_CASE_FIXTURE(EmulatedCuda, "emulated CUDA backend: init, tensors and round trips") {
  CHECK(engine::cuda::is_emulated());
  CHECK(engine::cuda::available());
  CHECK(engine::backend_available(engine::DeviceType::cuda));
  engine::Generator gen(7);
  backend_checks::check_round_trip(gen);
  const int beyond = engine::emu::device_count();  // one past the last emulated device
  CHECK_THROWS_WITH_AS(engine::Tensor::empty({2}, engine::Dtype::f32, engine::Device::cuda(beyond)),
                       doctest::Contains(("device cuda:" + std::to_string(beyond) + " does not exist").c_str()), engine::Error);
}

TEST_CASE_FIXTURE(EmulatedCuda, "emulated CUDA backend: primitives match the CPU backend") {
  engine::Generator gen(11);
  backend_checks::check_fill_and_copy(gen);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    backend_checks::check_add_into(gen, dtype);
    backend_checks::check_sum_to(gen, dtype);
  }
  backend_checks::check_fill_random(/*bitwise=*/true);
}

TEST_CASE_FIXTURE(EmulatedCuda, "CUDA caching allocator: size-class bins, stream-ordered reuse, statistics") {
  engine::cuda::CudaCachingAllocator allocator(0);
  void* a = allocator.allocate(1000);
  CHECK(engine::emu::is_device_pointer(a));
  allocator.deallocate(a, 1000);
  void* b = allocator.allocate(900);  // same 1024-byte size class: reused
  CHECK(b == a);
  CHECK(allocator.stats().cache_hits == 1);
  CHECK(allocator.stats().bytes_in_use == 1024);
  allocator.deallocate(b, 900);

  engine::cuda::Stream side;
  {
    engine::cuda::StreamGuard on_side(side.get());
    void* c = allocator.allocate(1000);  // another stream does not take the default stream's block
    CHECK(c != a);
    allocator.record_stream(c, nullptr);  // also used on the default stream
    allocator.deallocate(c, 1000);        // reusable once an event on the default stream completes
    void* d = allocator.allocate(1000);
    CHECK(d == c);
    allocator.deallocate(d, 1000);
  }
  const engine::AllocatorStats stats = allocator.stats();
  CHECK(stats.allocations == 4);
  CHECK(stats.cache_hits == 2);
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.bytes_cached == 2048);
  CHECK(stats.peak_bytes_in_use == 1024);
  CHECK(allocator.device_allocations() == 2);
  const size_t before = engine::emu::device_bytes_in_use();
  allocator.empty_cache();
  CHECK(allocator.stats().bytes_cached == 0);
  CHECK(engine::emu::device_bytes_in_use() == before - 2048);
}

TEST_CASE_FIXTURE(EmulatedCuda, "streams and events") {
  engine::cuda::Stream stream;
  engine::cuda::Event start, end;
  start.record(stream.get());
  end.record(stream.get());
  stream.wait(end);
  stream.synchronize();
  CHECK(end.ready());
  CHECK(end.elapsed_ms_since(start) >= 0.0f);
  engine::cuda::Event never;
  CHECK_THROWS_WITH_AS(never.elapsed_ms_since(start), doctest::Contains("cudaEventElapsedTime"), engine::Error);
}
