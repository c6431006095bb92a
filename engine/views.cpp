// Differentiable views and copies of Tensor. A view shares its base's storage with new shape,
// strides and offset; its backward node maps the view's gradient back to the base's shape.
#include <algorithm>
#include <functional>
#include <numeric>
#include <optional>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/checked_size.h"
#include "engine/tensor.h"

namespace engine {

namespace {

// Gradient of a reshape: reshape back.
class ReshapeBackward final : public Node {
 public:
  explicit ReshapeBackward(Shape input_shape) : input_shape_(std::move(input_shape)) {}
  std::string name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {grads[0].reshape(input_shape_)}; }

 private:
  Shape input_shape_;
};

class PermuteBackward final : public Node {
 public:
  explicit PermuteBackward(std::vector<int64_t> dims) : inverse_(dims.size()) {
    for (size_t i = 0; i < dims.size(); ++i) inverse_[size_t(dims[i])] = int64_t(i);
  }
  std::string name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {grads[0].permute(inverse_)}; }

 private:
  std::vector<int64_t> inverse_;
};

// Gradient of narrow: the slice's gradient placed into zeros of the input's shape.
class NarrowBackward final : public Node {
 public:
  NarrowBackward(Shape input_shape, int64_t dim, int64_t start)
      : input_shape_(std::move(input_shape)), dim_(dim), start_(start) {}
  std::string name() const override { return "NarrowBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    Tensor grad_input = Tensor::zeros(input_shape_, grads[0].dtype(), grads[0].device());
    grad_input.narrow(dim_, start_, grads[0].size(dim_)).copy_(grads[0]);
    return {grad_input};
  }

 private:
  Shape input_shape_;
  int64_t dim_, start_;
};

// Gradient of expand: sum over the repeated dimensions.
class ExpandBackward final : public Node {
 public:
  explicit ExpandBackward(Shape input_shape) : input_shape_(std::move(input_shape)) {}
  std::string name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    Tensor grad_input = Tensor::empty(input_shape_, grads[0].dtype(), grads[0].device());
    backend_for(grads[0].device().type).sum_to(grad_input, grads[0]);
    return {grad_input};
  }

 private:
  Shape input_shape_;
};

// Gradient of a copy (contiguous, clone): the identity.
class CopyBackward final : public Node {
 public:
  std::string name() const override { return "CopyBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {grads[0]}; }
};

class ToDeviceBackward final : public Node {
 public:
  explicit ToDeviceBackward(Device source) : source_(source) {}
  std::string name() const override { return "ToDeviceBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {grads[0].to(source_)}; }

 private:
  Device source_;
};

class ToDtypeBackward final : public Node {
 public:
  explicit ToDtypeBackward(Dtype source) : source_(source) {}
  std::string name() const override { return "ToDtypeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {grads[0].to(source_)}; }

 private:
  Dtype source_;
};

// Records `node` as the producer of `out` from `input` when the input needs a gradient.
Tensor connect(const Tensor& input, Tensor out, const std::function<std::shared_ptr<Node>()>& make_node) {
  if (needs_grad({&input})) record(make_node(), {&input}, {&out});
  return out;
}

// Replaces a single -1 in `shape` with the size that keeps numel unchanged.
Shape infer_shape(Shape shape, int64_t numel, const Tensor& t) {
  int64_t known = 1, infer_at = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      ENGINE_CHECK(infer_at < 0, "view: more than one -1 in shape ", shape_str(shape));
      infer_at = int64_t(d);
    } else {
      ENGINE_CHECK(shape[d] >= 0, "view: invalid size ", shape[d], " in shape ", shape_str(shape));
      known = int64_t(checked_mul(uint64_t(known), uint64_t(shape[d]), "view"));
    }
  }
  if (infer_at >= 0) {
    ENGINE_CHECK(known > 0 && numel % known == 0, "view: shape ", shape_str(shape), " is invalid for ", t.describe());
    shape[size_t(infer_at)] = numel / known;
  }
  ENGINE_CHECK(shape_numel(shape) == numel, "view: shape ", shape_str(shape), " is invalid for ", t.describe(),
               " (", numel, " elements)");
  return shape;
}

// Strides that let a tensor with (old_shape, old_strides) be seen as new_shape without copying, or
// an empty result when the memory layout does not allow it (PyTorch's computeStride rule: each run
// of new dimensions must fall inside one contiguous chunk of old dimensions).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  Shape new_strides(new_shape.size());
  // A scalar or an empty tensor has no layout to respect.
  if (old_shape.empty() || shape_numel(old_shape) == 0) return contiguous_strides(new_shape);
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = int64_t(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[size_t(tensor_d)];
    if (tensor_d == 0 ||
        (old_shape[size_t(tensor_d - 1)] != 1 &&
         old_strides[size_t(tensor_d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[size_t(view_d)] == 1)) {
        new_strides[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= new_shape[size_t(view_d)];
        view_d--;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[size_t(tensor_d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  const Shape shape_out = infer_shape(requested, numel(), *this);
  auto strides_out = view_strides(shape(), strides(), shape_out);
  ENGINE_CHECK(strides_out.has_value(), "view: cannot view ", describe(), " with strides ", shape_str(strides()),
               " as ", shape_str(shape_out), " without a copy; use reshape() or contiguous() first");
  const Shape input_shape = shape();
  return connect(*this, make_view(*this, shape_out, *strides_out, offset()),
                 [&] { return std::make_shared<ReshapeBackward>(input_shape); });
}

Tensor Tensor::reshape(const Shape& requested) const {
  const Shape shape_out = infer_shape(requested, numel(), *this);
  if (view_strides(shape(), strides(), shape_out).has_value()) return view(shape_out);
  return contiguous().view(shape_out);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  ENGINE_CHECK(int64_t(dims.size()) == dim(), "permute: got ", dims.size(), " dims for ", describe());
  std::vector<int64_t> wrapped(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape shape_out(dims.size()), strides_out(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    ENGINE_CHECK(!seen[size_t(d)], "permute: dimension ", d, " repeated");
    seen[size_t(d)] = true;
    wrapped[i] = d;
    shape_out[i] = shape()[size_t(d)];
    strides_out[i] = strides()[size_t(d)];
  }
  return connect(*this, make_view(*this, shape_out, strides_out, offset()),
                 [&] { return std::make_shared<PermuteBackward>(wrapped); });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  std::vector<int64_t> dims(static_cast<size_t>(this->dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[size_t(wrap_dim(dim0, dim(), "transpose"))], dims[size_t(wrap_dim(dim1, dim(), "transpose"))]);
  return permute(dims);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  const int64_t extent = shape()[size_t(d)];
  ENGINE_CHECK(start >= 0 && length >= 0 && start + length <= extent, "narrow: range [", start, ", ", start + length,
               ") is out of bounds for dimension ", d, " of size ", extent, " in ", describe());
  Shape shape_out = shape();
  shape_out[size_t(d)] = length;
  const Shape input_shape = shape();
  return connect(*this, make_view(*this, shape_out, strides(), offset() + start * strides()[size_t(d)]),
                 [&] { return std::make_shared<NarrowBackward>(input_shape, d, start); });
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  if (index < 0) index += shape()[size_t(d)];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& shape_out) const {
  ENGINE_CHECK(shape_out.size() >= shape().size(), "expand: cannot expand ", describe(), " to fewer dimensions ",
               shape_str(shape_out));
  const Shape expanded = broadcast_shapes(shape(), shape_out, "expand");
  ENGINE_CHECK(expanded == shape_out, "expand: ", describe(), " cannot be expanded to ", shape_str(shape_out));
  Shape strides_out(shape_out.size(), 0);
  const size_t lead = shape_out.size() - shape().size();
  for (size_t d = 0; d < shape().size(); ++d)
    strides_out[lead + d] = shape()[d] == shape_out[lead + d] ? strides()[d] : 0;
  const Shape input_shape = shape();
  return connect(*this, make_view(*this, shape_out, strides_out, offset()),
                 [&] { return std::make_shared<ExpandBackward>(input_shape); });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape shape_out = shape(), strides_out = strides();
  const int64_t stride = d < dim() ? strides()[size_t(d)] * shape()[size_t(d)] : 1;
  shape_out.insert(shape_out.begin() + d, 1);
  strides_out.insert(strides_out.begin() + d, stride);
  const Shape input_shape = shape();
  return connect(*this, make_view(*this, shape_out, strides_out, offset()),
                 [&] { return std::make_shared<ReshapeBackward>(input_shape); });
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  ENGINE_CHECK(shape()[size_t(d)] == 1, "squeeze: dimension ", d, " of ", describe(), " has size ",
               shape()[size_t(d)], ", not 1");
  Shape shape_out = shape(), strides_out = strides();
  shape_out.erase(shape_out.begin() + d);
  strides_out.erase(strides_out.begin() + d);
  const Shape input_shape = shape();
  return connect(*this, make_view(*this, shape_out, strides_out, offset()),
                 [&] { return std::make_shared<ReshapeBackward>(input_shape); });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  ENGINE_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape shape_out(shape().begin(), shape().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= shape()[size_t(d)];
  shape_out.push_back(merged);
  shape_out.insert(shape_out.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(shape_out);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  backend_for(device().type).copy(out, *this);
  return connect(*this, out, [&] { return std::make_shared<CopyBackward>(); });
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor source = is_contiguous() ? *this : clone();
  Tensor out = Tensor::empty(shape(), dtype(), target);
  // The non-CPU side's backend knows how to move bytes across.
  Backend& backend = backend_for(target.is_cpu() ? device().type : target.type);
  backend.copy_bytes(out.raw_data(), target, source.raw_data(), device(), size_t(numel()) * dtype_size(dtype()));
  const Device source_device = device();
  return connect(*this, out, [&] { return std::make_shared<ToDeviceBackward>(source_device); });
}

Tensor Tensor::to(Dtype target) const {
  if (target == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), target, device());
  backend_for(device().type).copy(out, *this);
  if (!is_floating(target) || !is_floating(dtype())) return out;  // integers carry no gradient
  const Dtype source_dtype = dtype();
  return connect(*this, out, [&] { return std::make_shared<ToDtypeBackward>(source_dtype); });
}

}  // namespace engine
