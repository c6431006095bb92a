// The device-side names of CUDA C++ for kernels compiled by g++ under the emulator: execution-space
// keywords, threadIdx and friends, barriers, warp shuffles and votes, atomics, math intrinsics,
// shared memory and the launch macro. A kernel written against these (and the macros of
// engine/cuda/cuda_api.h) compiles unchanged with nvcc.
//
// Shared memory. g++ has no __shared__ storage class, so kernels declare shared arrays with macros
// that mean the same thing in both builds:
//   ENGINE_SHARED(float, partial, 256);            // __shared__ float partial[256];
//   ENGINE_SHARED_2D(float, tile, 32, 33);         // __shared__ float tile[32][33];
//   ENGINE_DYNAMIC_SHARED(float, buffer);          // extern __shared__ float buffer[]; (launch's smem bytes)
// In the emulator each declaration site owns one array per block (found through a function-local
// static tag), poisoned with 0xff bytes at block start so that a read before any write gives NaN.
// Use the names as arrays or pointers, never with sizeof. Using `__shared__` directly does not
// compile under the emulator, by design.
//
// Launch. ENGINE_LAUNCH(kernel, grid, block, smem_bytes, stream, args...) is
// kernel<<<grid, block, smem_bytes, stream>>>(args...) followed by a launch-error check. A kernel
// template with several template arguments must be named through a function pointer first:
//   auto* kernel = softmax_kernel<float, 4>; ENGINE_LAUNCH(kernel, ...);
#pragma once

#include <math.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>

#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/emu/runtime_api.h"
#include "engine/emu/scheduler.h"
#include "engine/error.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

#define threadIdx (static_cast<const dim3&>(::engine::emu::detail::current_thread->thread_idx))
#define blockIdx (static_cast<const dim3&>(::engine::emu::detail::current_block->block_idx))
#define blockDim (static_cast<const dim3&>(::engine::emu::detail::current_block->block))
#define gridDim (static_cast<const dim3&>(::engine::emu::detail::current_block->grid))
constexpr int warpSize = 32;

#define ENGINE_SHARED(type, name, count)                                                              \
  static const char name##_shared_site = 0;                                                           \
  type* const name = static_cast<type*>(::engine::emu::detail::shared_array(&name##_shared_site, sizeof(type) * (count), \
                                                                    alignof(type)))
#define ENGINE_SHARED_2D(type, name, rows, cols)                                                      \
  static const char name##_shared_site = 0;                                                           \
  type(*const name)[cols] = static_cast<type(*)[cols]>(                                               \
      ::engine::emu::detail::shared_array(&name##_shared_site, sizeof(type) * (rows) * (cols), alignof(type)))
#define ENGINE_DYNAMIC_SHARED(type, name) type* const name = static_cast<type*>(::engine::emu::detail::dynamic_shared())

#define ENGINE_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
  ::engine::emu::launch(#kernel, kernel, grid, block, smem_bytes, stream __VA_OPT__(, ) __VA_ARGS__)

// ---- barriers, shuffles, votes ----

inline void __syncthreads(std::source_location site = std::source_location::current()) {
  ::engine::emu::detail::sync_block(site);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::engine::emu::detail::warp_collective(::engine::emu::detail::Collective::syncwarp, mask, 0, 0, 32);
}

namespace engine::emu::detail {
template <typename T>
uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}
template <typename T>
T from_bits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}
template <typename T>
T shuffle(Collective op, unsigned mask, T value, int param, int width) {
  return from_bits<T>(warp_collective(op, mask, to_bits(value), param, width));
}
}  // namespace engine::emu::detail

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  return ::engine::emu::detail::shuffle(::engine::emu::detail::Collective::shfl_idx, mask, var, src_lane, width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return ::engine::emu::detail::shuffle(::engine::emu::detail::Collective::shfl_up, mask, var, int(delta), width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return ::engine::emu::detail::shuffle(::engine::emu::detail::Collective::shfl_down, mask, var, int(delta), width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  return ::engine::emu::detail::shuffle(::engine::emu::detail::Collective::shfl_xor, mask, var, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return unsigned(::engine::emu::detail::warp_collective(::engine::emu::detail::Collective::ballot, mask, predicate != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int predicate) {
  return int(::engine::emu::detail::warp_collective(::engine::emu::detail::Collective::any, mask, predicate != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int predicate) {
  return int(::engine::emu::detail::warp_collective(::engine::emu::detail::Collective::all, mask, predicate != 0, 0, 32));
}

// ---- atomics: blocks run one at a time and threads switch only at synchronisation points, so a
// plain read-modify-write is atomic here. Returns the old value, as CUDA. ----

#define ENGINE_EMU_ATOMIC(NAME, TYPE, UPDATE) \
  inline TYPE NAME(TYPE* address, TYPE val) { \
    TYPE old = *address;                      \
    *address = (UPDATE);                      \
    return old;                               \
  }
ENGINE_EMU_ATOMIC(atomicAdd, int, old + val)
ENGINE_EMU_ATOMIC(atomicAdd, unsigned, old + val)
ENGINE_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
ENGINE_EMU_ATOMIC(atomicAdd, float, old + val)
ENGINE_EMU_ATOMIC(atomicAdd, double, old + val)
ENGINE_EMU_ATOMIC(atomicSub, int, old - val)
ENGINE_EMU_ATOMIC(atomicSub, unsigned, old - val)
ENGINE_EMU_ATOMIC(atomicMax, int, old > val ? old : val)
ENGINE_EMU_ATOMIC(atomicMax, unsigned, old > val ? old : val)
ENGINE_EMU_ATOMIC(atomicMax, long long, old > val ? old : val)
ENGINE_EMU_ATOMIC(atomicMax, unsigned long long, old > val ? old : val)
ENGINE_EMU_ATOMIC(atomicMin, int, old < val ? old : val)
ENGINE_EMU_ATOMIC(atomicMin, unsigned, old < val ? old : val)
ENGINE_EMU_ATOMIC(atomicMin, long long, old < val ? old : val)
ENGINE_EMU_ATOMIC(atomicMin, unsigned long long, old < val ? old : val)
ENGINE_EMU_ATOMIC(atomicExch, int, val)
ENGINE_EMU_ATOMIC(atomicExch, unsigned, val)
ENGINE_EMU_ATOMIC(atomicExch, unsigned long long, val)
ENGINE_EMU_ATOMIC(atomicExch, float, val)
#undef ENGINE_EMU_ATOMIC

#define ENGINE_EMU_ATOMIC_CAS(TYPE)                                  \
  inline TYPE atomicCAS(TYPE* address, TYPE compare, TYPE val) {     \
    TYPE old = *address;                                             \
    if (old == compare) *address = val;                              \
    return old;                                                      \
  }
ENGINE_EMU_ATOMIC_CAS(int)
ENGINE_EMU_ATOMIC_CAS(unsigned)
ENGINE_EMU_ATOMIC_CAS(unsigned long long)
ENGINE_EMU_ATOMIC_CAS(unsigned short)
#undef ENGINE_EMU_ATOMIC_CAS

// ---- math: the intrinsics map to the accurate host functions (the fast hardware versions differ
// in the last bits; tests compare with tolerances that allow for that). ----

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline double __fma_rn(double x, double y, double z) { return fma(x, y, z); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
template <typename T>
T __ldg(const T* address) {
  return *address;
}
// CUDA's global min/max overloads for device code.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---- launch ----

namespace engine::emu {

namespace detail {
// Kernel pointer arguments must point into memory of the device the kernel runs on (null is allowed).
template <typename Param>
void check_argument(const char* kernel, size_t index, const Param& value) {
  if constexpr (std::is_pointer_v<Param>) {
    if (value == nullptr) return;
    const int device = device_of(value);
    if (device < 0)
      throw engine::Error(engine::detail::concat("kernel ", kernel, ": argument ", index, " (", static_cast<const void*>(value),
                                                 ") is not device memory (a host pointer where a device pointer belongs?)"));
    if (device != current_device())
      throw engine::Error(engine::detail::concat("kernel ", kernel, ": argument ", index, " (", static_cast<const void*>(value),
                                                 ") is memory of device ", device, " but the kernel runs on device ",
                                                 current_device(), " (a tensor on another device: make its device current "
                                                 "first, engine/cuda/device_guard.h)"));
  }
}
}  // namespace detail

// Runs `kernel` over the grid as <<<grid, block, smem_bytes, stream>>> would, synchronously.
// Arguments convert to the kernel's parameter types first, as for a CUDA launch.
template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t stream,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  check_stream_device(stream, (std::string("kernel ") + name).c_str());
  std::tuple<std::decay_t<Params>...> params(static_cast<std::decay_t<Params>>(std::forward<Args>(args))...);
  [&]<size_t... I>(std::index_sequence<I...>) {
    (detail::check_argument(name, I, std::get<I>(params)), ...);
  }(std::index_sequence_for<Params...>{});
  // Each thread gets its own copy of the parameters, as kernel parameters are per-thread values.
  detail::run_grid(name, reinterpret_cast<const void*>(kernel), grid, block, smem_bytes,
                   [&] { std::apply([&](auto... copy) { kernel(copy...); }, params); });
}

}  // namespace engine::emu
