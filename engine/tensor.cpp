// Tensor factories, metadata, host access, copies and the in-place primitives. The differentiable
// views are in views.cpp.
#include "engine/tensor.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/checked_size.h"
#include "engine/rng.h"

namespace engine {

Tensor Tensor::empty(const Shape& shape, Dtype dtype, Device device) {
  for (int64_t s : shape) ENGINE_CHECK(s >= 0, "cannot create a tensor with negative size: shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  uint64_t bytes = 0;
  ENGINE_CHECK(!size_product_overflows(uint64_t(shape_numel(shape)), dtype_size(dtype), &bytes), "a ",
               dtype_name(dtype), " tensor of shape ", shape_str(shape), " needs more than 2^63 - 1 bytes");
  impl->storage = std::make_shared<Storage>(size_t(bytes), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Dtype dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, Dtype dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, Dtype dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend_for(device.type).fill(t, value);
  return t;
}

Tensor Tensor::arange(int64_t n, Dtype dtype, Device device) {
  std::vector<double> values(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) values[size_t(i)] = double(i);
  return from_vector(values, {n}, dtype, device);
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, Dtype dtype, Device device) {
  ENGINE_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values do not fill shape ", shape_str(shape));
  Tensor host = empty(shape, dtype);
  ENGINE_DISPATCH_STORAGE(dtype, "from_vector", [&] {
    scalar_t* out = host.data<scalar_t>();
    for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<scalar_t>(values[i]);
  });
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::from_indices(const std::vector<int64_t>& values, const Shape& shape, Dtype dtype, Device device) {
  ENGINE_CHECK(!is_floating(dtype), "from_indices: dtype must be i32 or i64, got ", dtype_name(dtype));
  ENGINE_CHECK(int64_t(values.size()) == shape_numel(shape), "from_indices: ", values.size(),
               " values do not fill shape ", shape_str(shape));
  Tensor host = empty(shape, dtype);
  ENGINE_DISPATCH_INDEX(dtype, "from_indices", [&] {
    index_t* out = host.data<index_t>();
    for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<index_t>(values[i]);
  });
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, Dtype dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_random_(t, gen, RandomSpec{RandomDistribution::normal, 0.0, 1.0});
  return t;
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, Dtype dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_random_(t, gen, RandomSpec{RandomDistribution::uniform, 0.0, 1.0});
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape()[size_t(wrap_dim(d, dim(), "size"))]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to misplace (a size-0 dim zeroes the expected strides)
  int64_t expected = 1;
  for (size_t d = shape().size(); d-- > 0;) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape_string() + " on " + device().str();
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(dtype_size(dtype()));
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = device().is_cpu() ? contiguous() : to(Device::cpu());
  host = host.contiguous();
  std::vector<T> out(size_t(host.numel()));
  ENGINE_DISPATCH_STORAGE(host.dtype(), "to_vector", [&] {
    const scalar_t* in = static_cast<const scalar_t*>(host.raw_data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(in[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  ENGINE_CHECK(numel() == 1, "item(): expected a one-element tensor, got ", describe());
  return to_vector<double>()[0];
}

Tensor& Tensor::requires_grad_(bool flag) {
  ENGINE_CHECK(is_leaf(), "requires_grad_(): only leaf tensors can be marked; this one was produced by ",
               "an op. Use detach() to make a leaf");
  ENGINE_CHECK(!flag || is_floating(dtype()), "requires_grad_(): only floating tensors can require grad, got ",
               describe());
  impl().requires_grad = flag;
  return *this;
}

void Tensor::backward(const Tensor& seed) const {
  ENGINE_CHECK(requires_grad(), "backward(): tensor ", describe(), " does not require grad");
  Tensor grad = seed;
  if (!grad.defined()) {
    ENGINE_CHECK(numel() == 1, "backward(): a seed gradient is required for non-scalar ", describe());
    grad = Tensor::ones(shape(), dtype(), device());
  }
  ENGINE_CHECK(grad.shape() == shape(), "backward(): seed shape ", grad.shape_string(), " differs from tensor shape ",
               shape_string());
  run_backward({*this}, {grad});
}

Tensor Tensor::detach() const {
  auto impl_copy = std::make_shared<TensorImpl>();
  impl_copy->storage = storage();
  impl_copy->shape = shape();
  impl_copy->strides = strides();
  impl_copy->offset = offset();
  impl_copy->dtype = dtype();
  return Tensor(std::move(impl_copy));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

namespace {
void check_not_in_graph(const Tensor& t, const char* op) {
  ENGINE_CHECK(!(grad_mode_enabled() && t.requires_grad()), op, ": in-place change of ", t.describe(),
               " which requires grad while gradients are recorded; wrap it in engine::NoGradGuard");
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_not_in_graph(*this, "fill_");
  backend_for(device().type).fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_not_in_graph(*this, "copy_");
  ENGINE_CHECK(broadcast_shapes(src.shape(), shape(), "copy_") == shape(), "copy_: source ", src.describe(),
               " does not broadcast to destination ", describe());
  Tensor source = src;
  if (src.device() != device()) source = src.contiguous().to(device());
  backend_for(device().type).copy(*this, source);
  return *this;
}

void fill_random_(const Tensor& dst, Generator& gen, const RandomSpec& spec) {
  ENGINE_CHECK(!(grad_mode_enabled() && dst.requires_grad()), "fill_random_: in-place change of ", dst.describe(),
               " which requires grad; wrap initialisation in engine::NoGradGuard");
  const uint64_t offset = gen.reserve(random_blocks(spec.dist, uint64_t(dst.numel())));
  if (dst.is_contiguous()) {
    backend_for(dst.device().type).fill_random(dst, spec, gen.seed(), offset);
  } else {
    Tensor tmp = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
    backend_for(dst.device().type).fill_random(tmp, spec, gen.seed(), offset);
    backend_for(dst.device().type).copy(dst, tmp);
  }
}

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors)
    ENGINE_CHECK(t->device() == first->device(), op, ": tensors on different devices: ", first->describe(), " and ",
                 t->describe());
}

void check_same_dtype(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors)
    ENGINE_CHECK(t->dtype() == first->dtype(), op, ": dtype mismatch: ", first->describe(), " and ", t->describe());
}

}  // namespace engine
