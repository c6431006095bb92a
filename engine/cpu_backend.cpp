// The CPU backend: host memory from the caching allocator and the engine's strided primitives as
// OpenMP loops (strided_loop.h). Also holds the device-type -> backend registry.
#include <omp.h>

#include <cstring>

#include "engine/backend.h"
#include "engine/strided_loop.h"
#include "engine/tensor.h"

namespace engine {

namespace {

// Each output element sums its own slice of the input sequentially, in double, so the result does
// not depend on the thread count (bitwise-reproducible gradients).
template <typename T>
void sum_to_kernel(const Tensor& dst, const Tensor& src) {
  const Shape& in_shape = src.shape();
  const size_t rank = in_shape.size(), lead = rank - dst.shape().size();
  // Split the input dims into kept ones (present in dst with the same size) and reduced ones.
  Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
  for (size_t d = 0; d < rank; ++d) {
    const bool kept = d >= lead && dst.shape()[d - lead] == in_shape[d] && in_shape[d] != 1;
    (kept ? kept_shape : reduced_shape).push_back(in_shape[d]);
    (kept ? kept_strides : reduced_strides).push_back(src.strides()[d]);
  }
  const int64_t n_out = shape_numel(kept_shape), n_reduce = shape_numel(reduced_shape);
  T* out = static_cast<T*>(dst.raw_data());
  const T* in = static_cast<const T*>(src.raw_data());
  auto offset_of = [](int64_t linear, const Shape& shape, const Shape& strides) {
    int64_t offset = 0;
    for (size_t d = shape.size(); d-- > 0;) {
      offset += (linear % shape[d]) * strides[d];
      linear /= shape[d];
    }
    return offset;
  };
#pragma omp parallel for if (n_out * n_reduce > (1 << 15) && n_out > 1)
  for (int64_t o = 0; o < n_out; ++o) {
    const int64_t base = offset_of(o, kept_shape, kept_strides);
    double acc = 0.0;
    for (int64_t r = 0; r < n_reduce; ++r) acc += double(in[base + offset_of(r, reduced_shape, reduced_strides)]);
    out[o] = static_cast<T>(acc);
  }
}

template <typename T>
void fill_random_kernel(T* out, int64_t n, const RandomSpec& spec, uint64_t seed, uint64_t offset) {
#pragma omp parallel for if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(random_element(spec, seed, offset, uint64_t(i)));
}

class CpuBackend final : public Backend {
 public:
  Allocator& allocator(int) override { return cpu_allocator(); }

  void copy_bytes(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }

  void fill(const Tensor& dst, double value) override {
    ENGINE_DISPATCH_ALL(dst.dtype(), "fill", [&] {
      scalar_t* out = static_cast<scalar_t*>(dst.raw_data());
      const scalar_t v = static_cast<scalar_t>(value);
      strided_loop<1>(dst.shape(), {dst.strides()}, [&](auto offsets, int64_t n, auto strides) {
        scalar_t* o = out + offsets[0];
        for (int64_t i = 0; i < n; ++i) o[i * strides[0]] = v;
      });
    });
  }

  void copy(const Tensor& dst, const Tensor& src) override {
    const Shape src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    ENGINE_DISPATCH_ALL(dst.dtype(), "copy", [&] {
      using dst_t = scalar_t;
      dst_t* out = static_cast<dst_t*>(dst.raw_data());
      ENGINE_DISPATCH_ALL(src.dtype(), "copy", [&] {
        const scalar_t* in = static_cast<const scalar_t*>(src.raw_data());
        strided_loop<2>(dst.shape(), {dst.strides(), src_strides}, [&](auto offsets, int64_t n, auto strides) {
          dst_t* o = out + offsets[0];
          const scalar_t* s = in + offsets[1];
          for (int64_t i = 0; i < n; ++i) o[i * strides[0]] = static_cast<dst_t>(s[i * strides[1]]);
        });
      });
    });
  }

  void add_into(const Tensor& dst, const Tensor& src) override {
    const Shape src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    ENGINE_DISPATCH_FLOAT(dst.dtype(), "add_into", [&] {
      scalar_t* out = static_cast<scalar_t*>(dst.raw_data());
      const scalar_t* in = static_cast<const scalar_t*>(src.raw_data());
      strided_loop<2>(dst.shape(), {dst.strides(), src_strides}, [&](auto offsets, int64_t n, auto strides) {
        scalar_t* o = out + offsets[0];
        const scalar_t* s = in + offsets[1];
        for (int64_t i = 0; i < n; ++i) o[i * strides[0]] += s[i * strides[1]];
      });
    });
  }

  void sum_to(const Tensor& dst, const Tensor& src) override {
    ENGINE_DISPATCH_FLOAT(dst.dtype(), "sum_to", [&] { sum_to_kernel<scalar_t>(dst, src); });
  }

  void fill_random(const Tensor& dst, const RandomSpec& spec, uint64_t seed, uint64_t offset) override {
    ENGINE_CHECK(dst.is_contiguous(), "fill_random: destination must be contiguous, got ", dst.describe());
    ENGINE_DISPATCH_ALL(dst.dtype(), "fill_random",
                        [&] { fill_random_kernel(dst.data<scalar_t>(), dst.numel(), spec, seed, offset); });
  }

  void synchronize() override {}
};

Backend* registered_backends[2] = {nullptr, nullptr};

}  // namespace

Backend& backend_for(DeviceType type) {
  static CpuBackend cpu;
  if (type == DeviceType::CPU) return cpu;
  Backend* backend = registered_backends[int(type)];
  ENGINE_CHECK(backend != nullptr,
               "no CUDA backend in this program: build with CUDA (cmake -DENGINE_CUDA=ON) and link engine_cuda, "
               "or use the CPU");
  return *backend;
}

void register_backend(DeviceType type, Backend* backend) {
  ENGINE_CHECK(type != DeviceType::CPU, "the CPU backend is built in and cannot be replaced");
  registered_backends[int(type)] = backend;
}

bool backend_available(DeviceType type) { return type == DeviceType::CPU || registered_backends[int(type)] != nullptr; }

}  // namespace engine
