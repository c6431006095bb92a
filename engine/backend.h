// What the engine needs from a device: memory, byte copies, and the few strided primitives that
// tensors and autograd use themselves (contiguous(), gradient accumulation, broadcast reduction).
// The CPU backend is built in; the CUDA backend registers itself when its library is linked, so the
// ops' users never see which one runs. The optimizers' fused updates and gradient-norm primitives
// live here too, because engine/optim cannot call ops/.
#pragma once

#include <cstddef>
#include <span>

#include "engine/allocator.h"
#include "engine/device.h"
#include "engine/philox.h"

namespace engine {

class Tensor;

// One AdamW step's constants, computed in double by engine/optim/adamw.cpp and rounded once to the
// parameter's type by each backend (as torch passes Python floats to its kernels):
//   p = p * decay - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
struct AdamWStep {
  double decay;                  // 1 - lr * weight_decay
  double beta1, beta2, eps;
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// One SGD step (engine/optim/sgd.h): d = g + weight_decay * p; with momentum b = momentum * b + d and
// d = nesterov ? d + momentum * b : b; then p -= lr * d.
struct SgdStep {
  double lr, weight_decay, momentum;
  bool nesterov;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Allocator& allocator(int device_index) = 0;
  // Copies bytes between this device and the host, or within this device.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // dst[...] = value, over dst's strided elements.
  virtual void fill(const Tensor& dst, double value) = 0;
  // dst[...] = src[...], with src broadcast to dst's shape and converted to dst's dtype.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  // dst[...] += src[...], src broadcast to dst's shape; same floating dtype.
  virtual void add_into(const Tensor& dst, const Tensor& src) = 0;
  // dst = src summed over the dimensions where dst (right-aligned, of rank <= src's) has size 1 or
  // is missing: the gradient of a broadcast. dst is contiguous and overwritten.
  virtual void sum_to(const Tensor& dst, const Tensor& src) = 0;
  // dst[i] = random_element(spec, seed, offset, i) over dst's elements in row-major order.
  virtual void fill_random(const Tensor& dst, const RandomSpec& spec, uint64_t seed, uint64_t offset) = 0;

  // Fused multi-tensor optimizer updates. Tensor lists are index-aligned (params[i], grads[i], ...
  // belong to one parameter); every tensor is contiguous, on this device, and shares shape and
  // floating dtype with its parameter. Different parameters may have different dtypes.
  // AdamW: updates params, exp_avgs (m) and exp_avg_sqs (v) in place.
  virtual void adamw_update(std::span<const Tensor> params, std::span<const Tensor> grads,
                            std::span<const Tensor> exp_avgs, std::span<const Tensor> exp_avg_sqs,
                            const AdamWStep& step) = 0;
  // SGD: updates params, and momentum_buffers when step.momentum > 0 (empty list otherwise).
  virtual void sgd_update(std::span<const Tensor> params, std::span<const Tensor> grads,
                          std::span<const Tensor> momentum_buffers, const SgdStep& step) = 0;
  // Sum of squares of every element of the contiguous floating tensors, in double and in an order
  // fixed by the tensors' sizes alone (not by thread or block counts): a deterministic result. It is
  // written to `out`, a one-element f64 tensor on this device; nothing is read back to the host.
  virtual void squared_norm(std::span<const Tensor> tensors, const Tensor& out) = 0;
  // Clipping by a norm that stays on the device: norm[0] = sqrt(squared_norm[0]) and, when
  // c = max_norm / (norm[0] + 1e-6) is below 1, x *= c (rounded once to x's dtype) for each
  // contiguous floating tensor x. squared_norm and norm are one-element f64 tensors on this device.
  virtual void clip_by_norm_(std::span<const Tensor> tensors, const Tensor& squared_norm, double max_norm,
                             const Tensor& norm) = 0;

  // Waits until all queued work on the device is done.
  virtual void synchronize() = 0;
};

Backend& backend_for(DeviceType type);
// Installs the backend for a device type (the CUDA runtime, or the emulator in test builds).
void register_backend(DeviceType type, Backend* backend);
bool backend_available(DeviceType type);

}  // namespace engine
