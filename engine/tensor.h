// Tensor: a strided view of a Storage, with the autograd fields that connect it to the graph.
//
// A Tensor is a cheap handle (a shared_ptr to TensorImpl); copies share data and gradient. View
// methods (view, reshape, permute, transpose, narrow, expand, unsqueeze, squeeze) return tensors
// that share storage and are differentiable: gradients flow back through them to the base tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace engine {

class Node;
class Generator;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements, not bytes
  int64_t offset = 0;  // in elements from the start of storage
  Dtype dtype = Dtype::f32;

  // Autograd. A leaf that requires grad accumulates into `grad`; a non-leaf was produced by
  // output `output_nr` of `grad_fn`.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
  std::shared_ptr<Node> grad_accumulator;  // created on first use for a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----
  static Tensor empty(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f32, Device device = Device::cpu());
  // 0, 1, ..., n-1.
  static Tensor arange(int64_t n, Dtype dtype = Dtype::i64, Device device = Device::cpu());
  // Copies host values into a new tensor of the given shape (numel must match).
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, Dtype dtype = Dtype::f32,
                            Device device = Device::cpu());
  static Tensor from_indices(const std::vector<int64_t>& values, const Shape& shape, Dtype dtype = Dtype::i64,
                             Device device = Device::cpu());
  // Random tensors from a counter-based generator (engine/rng.h): the same (seed, offset) gives
  // the same numbers on every device.
  static Tensor randn(const Shape& shape, Generator& gen, Dtype dtype = Dtype::f32, Device device = Device::cpu());
  static Tensor rand(const Shape& shape, Generator& gen, Dtype dtype = Dtype::f32, Device device = Device::cpu());

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  Dtype dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  std::string shape_string() const { return shape_str(shape()); }
  // "f32[2, 3] on cpu": for error messages.
  std::string describe() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl* impl_ptr() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_shared() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // Pointer to the first element. The typed version checks the dtype.
  void* raw_data() const;
  template <typename T> T* data() const {
    ENGINE_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() called on a ", describe());
    return static_cast<T*>(raw_data());
  }
  // Host copy of all elements in logical (row-major) order, converted to T.
  template <typename T> std::vector<T> to_vector() const;
  // The value of a one-element tensor.
  double item() const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as a parameter whose gradient is accumulated into grad().
  Tensor& requires_grad_(bool flag = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  int output_nr() const { return impl().output_nr; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& grad) { impl().grad = grad.impl_; }
  // Back-propagates from this tensor. A scalar seeds with 1; any other shape needs `seed`, the
  // gradient of some scalar with respect to this tensor.
  void backward(const Tensor& seed = Tensor()) const;
  // Same data, cut from the graph.
  Tensor detach() const;

  // ---- views (share storage, differentiable) ----
  Tensor view(const Shape& shape) const;     // needs compatible strides; -1 infers one dimension
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // narrow to one element and drop the dimension
  Tensor expand(const Shape& shape) const;          // size-1 dimensions repeat with stride 0
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies (differentiable) ----
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;
  Tensor to(Dtype dtype) const;

  // ---- in-place, outside autograd (initialisation, optimizers, gradient buffers) ----
  // They refuse a tensor that is part of a graph being recorded.
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype

 private:
  TensorImpl& impl() const {
    ENGINE_CHECK(impl_ != nullptr, "operation on an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

// Makes a view of `base` with new metadata. Not differentiable: used by Tensor's view methods.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

// Throws unless all tensors are on the same device, naming the op and the tensors' descriptions.
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);
// Throws unless all tensors have the same dtype.
void check_same_dtype(const char* op, std::initializer_list<const Tensor*> tensors);

}  // namespace engine
