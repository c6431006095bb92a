// The CPU backend: host memory from the caching allocator and the engine's strided primitives as
// OpenMP loops (strided_loop.h), the optimizers' fused updates as flat loops over each tensor,
// and the device-type -> backend registry.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "engine/backend.h"
#include "engine/strided_loop.h"
#include "engine/tensor.h"

namespace engine {

namespace {

// Each output element sums its own slice of the input sequentially, in double, in the row-major
// order of the reduced dims, so the result does not depend on the thread count (bitwise-reproducible
// gradients). A job takes a run of up to kRun outputs along the innermost kept dim and walks the
// reduced dims with an odometer, adding one input run per step into a vector of accumulators: no
// division per element, and contiguous loads when the innermost dim is kept (a broadcast bias or a
// position table expanded over the batch).
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
  if (n_out == 0) return;
  const int64_t inner = kept_shape.empty() ? 1 : kept_shape.back();
  const int64_t inner_stride = kept_shape.empty() ? 0 : kept_strides.back();
  if (!kept_shape.empty()) {  // the outer kept dims number the runs
    kept_shape.pop_back();
    kept_strides.pop_back();
  }
  constexpr int64_t kRun = 64;  // 64 double accumulators: 8 AVX-512 registers
  const int64_t runs_per_row = (inner + kRun - 1) / kRun, jobs = (n_out / inner) * runs_per_row;
  T* out = static_cast<T*>(dst.raw_data());
  const T* in = static_cast<const T*>(src.raw_data());
#pragma omp parallel if (n_out * n_reduce > (1 << 15) && jobs > 1)
  {
    Shape index(reduced_shape.size());  // the odometer over the reduced dims
#pragma omp for
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t row = job / runs_per_row, first = (job % runs_per_row) * kRun;
      const int64_t length = std::min(kRun, inner - first);
      int64_t base = first * inner_stride;
      for (int64_t d = int64_t(kept_shape.size()), rest = row; d-- > 0; rest /= kept_shape[size_t(d)])
        base += (rest % kept_shape[size_t(d)]) * kept_strides[size_t(d)];
      std::array<double, kRun> acc{};
      std::fill(index.begin(), index.end(), 0);
      int64_t offset = 0;
      for (int64_t r = 0; r < n_reduce; ++r) {
        const T* run = in + base + offset;
        if (inner_stride == 1) {
          for (int64_t i = 0; i < length; ++i) acc[size_t(i)] += double(run[i]);
        } else {
          for (int64_t i = 0; i < length; ++i) acc[size_t(i)] += double(run[i * inner_stride]);
        }
        for (size_t d = reduced_shape.size(); d-- > 0;) {  // the next reduced index, row-major
          offset += reduced_strides[d];
          if (++index[d] < reduced_shape[d]) break;
          offset -= reduced_shape[d] * reduced_strides[d];
          index[d] = 0;
        }
      }
      T* out_run = out + row * inner + first;
      for (int64_t i = 0; i < length; ++i) out_run[i] = static_cast<T>(acc[size_t(i)]);
    }
  }
}

template <typename T>
void fill_random_kernel(T* out, int64_t n, const RandomSpec& spec, uint64_t seed, uint64_t offset) {
#pragma omp parallel for if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(random_element(spec, seed, offset, uint64_t(i)));
}

// One fused AdamW pass over n elements: decay, both moments, and the parameter update. Elementwise,
// so the result does not depend on how OpenMP splits the range.
template <typename T>
void adamw_update_kernel(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, const AdamWStep& c) {
  const T decay = T(c.decay), beta1 = T(c.beta1), beta2 = T(c.beta2), eps = T(c.eps);
  const T one_minus_beta1 = T(1 - c.beta1), one_minus_beta2 = T(1 - c.beta2);
  const T step_size = T(c.step_size), bias_correction2_sqrt = T(c.bias_correction2_sqrt);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i];
    const T m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const T v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = std::sqrt(v) / bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * (m / denom);
  }
}

// SGD without momentum: p -= lr * (g + weight_decay * p).
template <typename T>
void sgd_update_kernel(T* param, const T* grad, int64_t n, const SgdStep& c) {
  const T lr = T(c.lr), weight_decay = T(c.weight_decay);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) param[i] -= lr * (grad[i] + weight_decay * param[i]);
}

// The momentum update in one pass. The buffer starts at zero, so the first step sets it to the
// decayed gradient itself, as torch does.
template <typename T>
void sgd_momentum_update_kernel(T* param, const T* grad, T* buffer, int64_t n, const SgdStep& c) {
  const T lr = T(c.lr), weight_decay = T(c.weight_decay), momentum = T(c.momentum);
  const bool nesterov = c.nesterov;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T d = grad[i] + weight_decay * param[i];
    const T b = momentum * buffer[i] + d;
    buffer[i] = b;
    param[i] -= lr * (nesterov ? d + momentum * b : b);
  }
}

// Sum of squares in double. The range is cut into a fixed number of chunks whatever the thread
// count, each summed in order, and the chunk sums are added in order: a deterministic result.
template <typename T>
double sum_of_squares_kernel(const T* x, int64_t n) {
  constexpr int64_t chunks = 64;
  std::array<double, chunks> partial{};
  const int64_t chunk_size = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = std::min(n, c * chunk_size), end = std::min(n, begin + chunk_size);
    double sum = 0;
    for (int64_t i = begin; i < end; ++i) sum += double(x[i]) * double(x[i]);
    partial[size_t(c)] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void scale_kernel(T* x, int64_t n, double factor_d) {
  const T factor = T(factor_d);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

class CpuBackend final : public Backend {
 public:
  Allocator& allocator(int) override { return cpu_allocator(); }

  void copy_bytes(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }

  void fill(const Tensor& dst, double value) override {
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "fill", [&] {
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
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "copy", [&] {
      using dst_t = scalar_t;
      dst_t* out = static_cast<dst_t*>(dst.raw_data());
      ENGINE_DISPATCH_STORAGE(src.dtype(), "copy", [&] {
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
    ENGINE_DISPATCH_FLOAT_OR_BF16(dst.dtype(), "add_into", [&] {
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
    ENGINE_DISPATCH_FLOAT_OR_BF16(dst.dtype(), "sum_to", [&] { sum_to_kernel<scalar_t>(dst, src); });
  }

  void fill_random(const Tensor& dst, const RandomSpec& spec, uint64_t seed, uint64_t offset) override {
    ENGINE_CHECK(dst.is_contiguous(), "fill_random: destination must be contiguous, got ", dst.describe());
    ENGINE_DISPATCH_STORAGE(dst.dtype(), "fill_random",
                        [&] { fill_random_kernel(dst.data<scalar_t>(), dst.numel(), spec, seed, offset); });
  }

  void adamw_update(std::span<const Tensor> params, std::span<const Tensor> grads, std::span<const Tensor> exp_avgs,
                    std::span<const Tensor> exp_avg_sqs, const AdamWStep& step) override {
    for (size_t i = 0; i < params.size(); ++i)
      ENGINE_DISPATCH_FLOAT(params[i].dtype(), "AdamW", [&] {
        adamw_update_kernel<scalar_t>(params[i].data<scalar_t>(), grads[i].data<scalar_t>(),
                                      exp_avgs[i].data<scalar_t>(), exp_avg_sqs[i].data<scalar_t>(),
                                      params[i].numel(), step);
      });
  }

  void sgd_update(std::span<const Tensor> params, std::span<const Tensor> grads,
                  std::span<const Tensor> momentum_buffers, const SgdStep& step) override {
    for (size_t i = 0; i < params.size(); ++i)
      ENGINE_DISPATCH_FLOAT(params[i].dtype(), "SGD", [&] {
        if (step.momentum > 0)
          sgd_momentum_update_kernel<scalar_t>(params[i].data<scalar_t>(), grads[i].data<scalar_t>(),
                                               momentum_buffers[i].data<scalar_t>(), params[i].numel(), step);
        else
          sgd_update_kernel<scalar_t>(params[i].data<scalar_t>(), grads[i].data<scalar_t>(), params[i].numel(), step);
      });
  }

  // Tensor sums are added in list order.
  void squared_norm(std::span<const Tensor> tensors, const Tensor& out) override {
    double total = 0;
    for (const Tensor& x : tensors)
      total += ENGINE_DISPATCH_FLOAT(x.dtype(), "squared_norm",
                                     [&] { return sum_of_squares_kernel(x.data<scalar_t>(), x.numel()); });
    *out.data<double>() = total;
  }

  void clip_by_norm_(std::span<const Tensor> tensors, const Tensor& squared_norm, double max_norm,
                     const Tensor& norm) override {
    const double n = std::sqrt(*squared_norm.data<double>());
    *norm.data<double>() = n;
    const double coefficient = max_norm / (n + 1e-6);
    if (!(coefficient < 1)) return;
    for (const Tensor& x : tensors)
      ENGINE_DISPATCH_FLOAT(x.dtype(), "clip_by_norm_",
                            [&] { scale_kernel(x.data<scalar_t>(), x.numel(), coefficient); });
  }

  void synchronize() override {}
};

Backend* registered_backends[2] = {nullptr, nullptr};

}  // namespace

Backend& backend_for(DeviceType type) {
  static CpuBackend cpu;
  if (type == DeviceType::cpu) return cpu;
  Backend* backend = registered_backends[int(type)];
  ENGINE_CHECK(backend != nullptr,
               "no CUDA backend in this program: build with CUDA (cmake -DENGINE_CUDA=ON) and link engine_cuda, "
               "or use the CPU");
  return *backend;
}

void register_backend(DeviceType type, Backend* backend) {
  ENGINE_CHECK(type != DeviceType::cpu, "the CPU backend is built in and cannot be replaced");
  registered_backends[int(type)] = backend;
}

bool backend_available(DeviceType type) { return type == DeviceType::cpu || registered_backends[int(type)] != nullptr; }

}  // namespace engine
