// The CUDA backend: device memory from the caching allocator, host<->device copies, and the engine's
// strided primitives as kernels (backend_kernels.cu), the optimizers' fused multi-tensor updates
// (optimizer_kernels.cu), all ordered on the current stream of the tensors' own device (a
// DeviceGuard around each: kernels run where their tensors live). This file
// is ordinary C++: it builds against the CUDA runtime into engine_cuda and against the emulator
// into engine_cuda_emu.
#include <array>
#include <memory>
#include <span>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/backend_kernels.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/device_guard.h"
#include "engine/cuda/init.h"
#include "engine/cuda/optimizer_kernels.h"
#include "engine/cuda/stream.h"
#include "engine/strided_loop.h"
#include "engine/tensor.h"

namespace engine::cuda {

namespace {

// The kernels' view of N operands over `shape`, with contiguous dimensions merged.
template <int N>
DeviceLayout<N> device_layout(const Shape& shape, const std::array<Shape, size_t(N)>& strides, const char* op) {
  const engine::StridedLayout<size_t(N)> merged = merge_strided_dims<size_t(N)>(shape, strides);
  ENGINE_CHECK(merged.shape.size() <= size_t(kMaxStridedDims), op, ": a strided tensor of shape ", shape_str(shape),
               " has ", merged.shape.size(), " dimensions that cannot be merged; the CUDA backend handles up to ",
               kMaxStridedDims, " (make it contiguous first)");
  DeviceLayout<N> layout;
  layout.rank = int(merged.shape.size());
  layout.numel = shape_numel(shape);
  for (int d = 0; d < layout.rank; ++d) {
    layout.sizes[d] = merged.shape[size_t(d)];
    for (int k = 0; k < N; ++k) layout.strides[k][d] = merged.strides[size_t(k)][size_t(d)];
  }
  return layout;
}

cudaMemcpyKind copy_kind(Device dst, Device src) {
  if (src.is_cpu()) return dst.is_cpu() ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice;
  return dst.is_cpu() ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
}

// The tensors of dtype T among index-aligned lists (lists[k][i] is operand k of tensor i), as the
// multi-tensor launchers take them: pointers[k][j] and sizes[j] for the j-th such tensor.
template <typename T, size_t Depth>
struct RawTensorLists {
  std::array<std::vector<T*>, Depth> pointers;
  std::vector<int64_t> sizes;
};

template <typename T, size_t Depth>
RawTensorLists<T, Depth> raw_tensor_lists(const std::array<std::span<const Tensor>, Depth>& lists) {
  RawTensorLists<T, Depth> raw;
  for (size_t i = 0; i < lists[0].size(); ++i) {
    if (lists[0][i].dtype() != dtype_of<T>()) continue;
    for (size_t k = 0; k < Depth; ++k) raw.pointers[k].push_back(static_cast<T*>(lists[k][i].raw_data()));
    raw.sizes.push_back(lists[0][i].numel());
  }
  return raw;
}

// The multi-tensor kernels read flat arrays of f32 or f64 (they would skip a bf16 one: refuse it).
void check_multi_tensor_list(std::span<const Tensor> tensors, const char* op) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    ENGINE_CHECK(tensors[i].dtype() != Dtype::bf16, op, ": tensor ", i, " (", tensors[i].describe(),
                 ") is bf16; keep master weights, gradients and optimizer state in f32");
    ENGINE_CHECK(is_floating(tensors[i].dtype()) && tensors[i].is_contiguous(), op, ": tensor ", i, " (",
                 tensors[i].describe(), ") must be a contiguous floating tensor");
  }
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_count) {
    for (int d = 0; d < device_count; ++d) allocators_.push_back(std::make_unique<CudaCachingAllocator>(d));
  }

  Allocator& allocator(int device_index) override {
    ENGINE_CHECK(device_index >= 0 && device_index < int(allocators_.size()), "device cuda:", device_index,
                 " does not exist: this machine has ", allocators_.size(), " CUDA device(s)");
    return *allocators_[size_t(device_index)];
  }

  // Pageable host memory may be reused by the caller as soon as we return, so copies that touch
  // the host wait for completion; device-to-device copies stay asynchronous.
  // A copy between two GPUs is a peer copy ordered on the destination's stream; the source's
  // device first finishes the work that produced it.
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    if (bytes == 0) return;
    const cudaMemcpyKind kind = copy_kind(dst_device, src_device);
    if (kind == cudaMemcpyDeviceToDevice && dst_device != src_device) {
      {
        const DeviceGuard on_source(src_device);
        CUDA_CHECK(cudaStreamSynchronize(current_stream()));
      }
      const DeviceGuard on_destination(dst_device);
      CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, bytes, current_stream()));
      return;
    }
    const DeviceGuard guard(dst_device.is_cuda() ? dst_device : src_device);
    const cudaStream_t stream = current_stream();
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream));
    if (kind != cudaMemcpyDeviceToDevice) CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  void fill(const Tensor& dst, double value) override {
    const DeviceGuard guard(dst.device());
    const DeviceLayout<1> layout = device_layout<1>(dst.shape(), {dst.strides()}, "fill");
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "fill", [&] {
      fill_strided(static_cast<scalar_t*>(dst.raw_data()), layout, static_cast<scalar_t>(value), current_stream());
    });
  }

  void copy(const Tensor& dst, const Tensor& src) override {
    const DeviceGuard guard(dst.device());
    const Shape src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    const DeviceLayout<2> layout = device_layout<2>(dst.shape(), {dst.strides(), src_strides}, "copy");
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "copy", [&] {
      using dst_t = scalar_t;
      ENGINE_DISPATCH_STORAGE(src.dtype(), "copy", [&] {
        copy_strided(static_cast<dst_t*>(dst.raw_data()), static_cast<const scalar_t*>(src.raw_data()), layout,
                     current_stream());
      });
    });
  }

  void add_into(const Tensor& dst, const Tensor& src) override {
    const DeviceGuard guard(dst.device());
    const Shape src_strides = broadcast_strides(src.shape(), src.strides(), dst.shape());
    const DeviceLayout<2> layout = device_layout<2>(dst.shape(), {dst.strides(), src_strides}, "add_into");
    ENGINE_DISPATCH_FLOAT_OR_BF16(dst.dtype(), "add_into", [&] {
      add_strided(static_cast<scalar_t*>(dst.raw_data()), static_cast<const scalar_t*>(src.raw_data()), layout,
                  current_stream());
    });
  }

  // Splits the input dimensions into kept ones (present in dst with the same size) and reduced
  // ones, exactly as the CPU backend does.
  void sum_to(const Tensor& dst, const Tensor& src) override {
    const DeviceGuard guard(dst.device());
    const Shape& in_shape = src.shape();
    const size_t rank = in_shape.size(), lead = rank - dst.shape().size();
    Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
    for (size_t d = 0; d < rank; ++d) {
      const bool kept = d >= lead && dst.shape()[d - lead] == in_shape[d] && in_shape[d] != 1;
      (kept ? kept_shape : reduced_shape).push_back(in_shape[d]);
      (kept ? kept_strides : reduced_strides).push_back(src.strides()[d]);
    }
    const DeviceLayout<1> kept = device_layout<1>(kept_shape, {kept_strides}, "sum_to");
    const DeviceLayout<1> reduced = device_layout<1>(reduced_shape, {reduced_strides}, "sum_to");
    ENGINE_DISPATCH_FLOAT_OR_BF16(dst.dtype(), "sum_to", [&] {
      cuda::sum_to(static_cast<scalar_t*>(dst.raw_data()), static_cast<const scalar_t*>(src.raw_data()), kept, reduced,
                   current_stream());
    });
  }

  void fill_random(const Tensor& dst, const RandomSpec& spec, uint64_t seed, uint64_t offset) override {
    ENGINE_CHECK(dst.is_contiguous(), "fill_random: destination must be contiguous, got ", dst.describe());
    const DeviceGuard guard(dst.device());
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "fill_random", [&] {
      cuda::fill_random(static_cast<scalar_t*>(dst.raw_data()), dst.numel(), spec, seed, offset, current_stream());
    });
  }

  // One fused launch (or as many as the tensor tables need) per dtype present.
  void adamw_update(std::span<const Tensor> params, std::span<const Tensor> grads, std::span<const Tensor> exp_avgs,
                    std::span<const Tensor> exp_avg_sqs, const AdamWStep& step) override {
    if (params.empty()) return;
    check_multi_tensor_list(params, "AdamW");
    const DeviceGuard guard(params[0].device());
    const std::array<std::span<const Tensor>, 4> lists{params, grads, exp_avgs, exp_avg_sqs};
    for_each_float_type([&]<typename T>() {
      const RawTensorLists<T, 4> raw = raw_tensor_lists<T>(lists);
      if (!raw.sizes.empty())
        cuda::adamw_update<T>(raw.pointers[0], raw.pointers[1], raw.pointers[2], raw.pointers[3], raw.sizes, step,
                              current_stream());
    });
  }

  void sgd_update(std::span<const Tensor> params, std::span<const Tensor> grads,
                  std::span<const Tensor> momentum_buffers, const SgdStep& step) override {
    if (params.empty()) return;
    check_multi_tensor_list(params, "SGD");
    const DeviceGuard guard(params[0].device());
    // Without momentum the buffer list is empty: pass the parameters in its place, unused.
    const std::array<std::span<const Tensor>, 3> lists{params, grads, step.momentum > 0 ? momentum_buffers : params};
    for_each_float_type([&]<typename T>() {
      const RawTensorLists<T, 3> raw = raw_tensor_lists<T>(lists);
      if (!raw.sizes.empty())
        cuda::sgd_update<T>(raw.pointers[0], raw.pointers[1], raw.pointers[2], raw.sizes, step, current_stream());
    });
  }

  // Partial sums of the f32 tensors' chunks, then of the f64 tensors', then one block adds them
  // all: the order depends on the tensors' sizes and dtypes alone.
  void squared_norm(std::span<const Tensor> tensors, const Tensor& out) override {
    const DeviceGuard guard(out.device());
    const cudaStream_t stream = current_stream();
    if (tensors.empty()) {
      CUDA_CHECK(cudaMemsetAsync(out.data<double>(), 0, sizeof(double), stream));
      return;
    }
    check_multi_tensor_list(tensors, "squared_norm");
    const Device device = tensors[0].device();
    const RawTensorLists<float, 1> f32 = raw_tensor_lists<float>(std::array{tensors});
    const RawTensorLists<double, 1> f64 = raw_tensor_lists<double>(std::array{tensors});
    const int64_t f32_chunks = multi_tensor_chunk_count(f32.sizes), f64_chunks = multi_tensor_chunk_count(f64.sizes);
    const int64_t chunks = f32_chunks + f64_chunks;
    // An empty partials list sums to 0 (sum_partials adds nothing).
    const Tensor partials = Tensor::empty({std::max<int64_t>(chunks, 1)}, Dtype::f64, device);
    double* partial = partials.data<double>();
    if (f32_chunks) sum_of_squares_partials<float>(f32.pointers[0], f32.sizes, partial, stream);
    if (f64_chunks) sum_of_squares_partials<double>(f64.pointers[0], f64.sizes, partial + f32_chunks, stream);
    sum_partials(partial, chunks, out.data<double>(), stream);
  }

  void clip_by_norm_(std::span<const Tensor> tensors, const Tensor& squared_norm, double max_norm,
                     const Tensor& norm) override {
    const DeviceGuard guard(norm.device());
    const cudaStream_t stream = current_stream();
    cuda::square_root(squared_norm.data<double>(), norm.data<double>(), stream);
    if (tensors.empty()) return;
    check_multi_tensor_list(tensors, "clip_by_norm_");
    for_each_float_type([&]<typename T>() {
      const RawTensorLists<T, 1> raw = raw_tensor_lists<T>(std::array{tensors});
      if (!raw.sizes.empty()) cuda::clip_by_norm<T>(raw.pointers[0], raw.sizes, norm.data<double>(), max_norm, stream);
    });
  }

  // The current device's queued work. Not every device's: touching a GPU makes a context on it,
  // and a rank of a multi-GPU job must stay off the other ranks' GPUs.
  void synchronize() override { CUDA_CHECK(cudaDeviceSynchronize()); }

 private:
  // Calls run.template operator()<T>() for T = float, then double.
  template <typename Run>
  static void for_each_float_type(Run&& run) {
    run.template operator()<float>();
    run.template operator()<double>();
  }

  std::vector<std::unique_ptr<CudaCachingAllocator>> allocators_;
};

int usable_device_count(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: the caller decides what to do
    if (reason) *reason = cudaGetErrorString(status);
    return 0;
  }
  if (count == 0 && reason) *reason = "no CUDA device found";
  return count;
}

}  // namespace

bool available(std::string* reason) { return usable_device_count(reason) > 0; }

bool is_emulated() { return kEmulated; }

void init() {
  std::string reason;
  const int count = usable_device_count(&reason);
  ENGINE_CHECK(count > 0, "CUDA requested but no usable GPU: ", reason,
               ". Run on a machine with an NVIDIA GPU and driver, or use the CPU.");
  // Never destroyed: tensors with static lifetime may free into its allocators during exit.
  static CudaBackend* backend = new CudaBackend(count);
  register_backend(DeviceType::cuda, backend);
}

}  // namespace engine::cuda
