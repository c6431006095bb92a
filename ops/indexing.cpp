// concat, split, stack, index_select, gather: checks, device dispatch and backward nodes.
// Kernels: ops/cpu/indexing.h, ops/cuda/indexing.h.
//
// Legend: each tensor is seen as (outer, D, inner) around the dim being joined or indexed
// (see ops/cpu/indexing.h); J = number of indices along that dim.
#include "ops/indexing.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/embedding.h"
#include "ops/cpu/indexing.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

using engine::Shape;

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= shape[d];
  return p;
}

// Throws unless every entry of the contiguous `index` lies in [0, size), naming the first that does not.
// On CUDA the search runs on the device and only its two-number summary comes back.
void check_indices(const char* op, const Tensor& index, int64_t size, const Tensor& x, int64_t dim) {
  int64_t bad = -1, value = 0;
  if (index.device().is_cuda()) {
    const cuda::IndexCheck check = cuda::find_out_of_range(op, index, size);
    bad = check.position;
    value = check.value;
  } else {
    ENGINE_DISPATCH_INDEX(index.dtype(), op, [&] {
      const index_t* values = index.data<index_t>();
      bad = cpu::first_out_of_range<index_t>(values, index.numel(), size);
      value = bad < 0 ? 0 : int64_t(values[bad]);
    });
  }
  ENGINE_CHECK(bad < 0, op, ": index ", value, " at position ", bad, " is out of range for dim ", dim, " of size ",
               size, " of ", x.describe());
}

// Copies `rows` rows of `width` elements from src (rows src_stride apart) into dst from element
// dst_offset on (rows dst_stride apart), on their common device.
void copy_rows(const Tensor& dst, int64_t dst_offset, int64_t dst_stride, const Tensor& src, int64_t src_stride,
               int64_t rows, int64_t width) {
  if (dst.device().is_cuda()) {
    cuda::copy_rows(dst, dst_offset, dst_stride, src, src_stride, rows, width);
    return;
  }
  ENGINE_DISPATCH_ALL(dst.dtype(), "concat", [&] {
    cpu::copy_rows<scalar_t>(dst.data<scalar_t>() + dst_offset, dst_stride, src.data<scalar_t>(), src_stride, rows,
                             width);
  });
}

// The four (outer, D, inner) indexing kernels, which share one signature (ops/cpu/indexing.h).
enum class IndexKernel { index_select_forward, index_select_backward, gather_forward, gather_backward };

const char* op_name(IndexKernel kernel) {
  return kernel == IndexKernel::index_select_forward || kernel == IndexKernel::index_select_backward ? "index_select"
                                                                                                      : "gather";
}

// Calls `kernel` on the CPU implementation.
template <typename T, typename I>
void run_index_kernel_cpu(IndexKernel kernel, T* dst, const T* src, const I* index, int64_t outer, int64_t D,
                          int64_t J, int64_t inner) {
  switch (kernel) {
    case IndexKernel::index_select_forward: return cpu::index_select_forward(dst, src, index, outer, D, J, inner);
    case IndexKernel::index_select_backward: return cpu::index_select_backward(dst, src, index, outer, D, J, inner);
    case IndexKernel::gather_forward: return cpu::gather_forward(dst, src, index, outer, D, J, inner);
    case IndexKernel::gather_backward: return cpu::gather_backward(dst, src, index, outer, D, J, inner);
  }
}

// dst, src, index: contiguous, on one device; the kernel's shapes in terms of (outer, D, J, inner).
void run_index_kernel(IndexKernel kernel, const Tensor& dst, const Tensor& src, const Tensor& index, int64_t outer,
                      int64_t D, int64_t J, int64_t inner) {
  if (dst.device().is_cuda()) {
    switch (kernel) {
      case IndexKernel::index_select_forward: return cuda::index_select_forward(dst, src, index, outer, D, J, inner);
      case IndexKernel::index_select_backward: return cuda::index_select_backward(dst, src, index, outer, D, J, inner);
      case IndexKernel::gather_forward: return cuda::gather_forward(dst, src, index, outer, D, J, inner);
      case IndexKernel::gather_backward: return cuda::gather_backward(dst, src, index, outer, D, J, inner);
    }
  }
  ENGINE_DISPATCH_FLOAT(dst.dtype(), op_name(kernel), [&] {
    ENGINE_DISPATCH_INDEX(index.dtype(), op_name(kernel), [&] {
      run_index_kernel_cpu<scalar_t, index_t>(kernel, dst.data<scalar_t>(), src.data<scalar_t>(),
                                              index.data<index_t>(), outer, D, J, inner);
    });
  });
}

// The gradient of concat: each input gets its slice of the output gradient.
class ConcatBackward final : public engine::Node {
 public:
  ConcatBackward(std::vector<int64_t> sizes, int64_t dim) : sizes_(std::move(sizes)), dim_(dim) {}
  std::string name() const override { return "ConcatBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    std::vector<Tensor> out(sizes_.size());
    for (size_t i = 0, start = 0; i < sizes_.size(); start += size_t(sizes_[i]), ++i)
      if (next_edges[i].node) out[i] = grads[0].narrow(dim_, int64_t(start), sizes_[i]);
    return out;
  }

 private:
  std::vector<int64_t> sizes_;
  int64_t dim_;
};

// The gradient of split: the pieces' gradients joined again (zeros for pieces nobody used).
class SplitBackward final : public engine::Node {
 public:
  explicit SplitBackward(int64_t dim) : dim_(dim) {}
  std::string name() const override { return "SplitBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {concat(grads, dim_)}; }

 private:
  int64_t dim_;
};

class IndexSelectBackward final : public engine::Node {
 public:
  IndexSelectBackward(Tensor index, Shape x_shape, int64_t dim)
      : index_(std::move(index)), x_shape_(std::move(x_shape)), dim_(dim) {}
  std::string name() const override { return "IndexSelectBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor grad_out = grads[0].contiguous();  // (outer, J, inner)
    Tensor grad_x = Tensor::empty(x_shape_, grad_out.dtype(), grad_out.device());
    const size_t d = size_t(dim_);
    const int64_t outer = product(x_shape_, 0, d), inner = product(x_shape_, d + 1, x_shape_.size());
    run_index_kernel(IndexKernel::index_select_backward, grad_x, grad_out, index_, outer, x_shape_[d], index_.numel(),
                     inner);
    return {grad_x, Tensor()};
  }
  void release_saved() override { index_ = Tensor(); }

 private:
  Tensor index_;  // (J) contiguous
  Shape x_shape_;
  int64_t dim_;
};

class GatherBackward final : public engine::Node {
 public:
  GatherBackward(Tensor index, Shape x_shape, int64_t dim)
      : index_(std::move(index)), x_shape_(std::move(x_shape)), dim_(dim) {}
  std::string name() const override { return "GatherBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor grad_out = grads[0].contiguous();  // index's shape
    const size_t d = size_t(dim_);
    // The gradient of x narrowed to index's sizes off `dim` (what the forward read), then placed in x's shape.
    Shape read_shape = index_.shape();
    read_shape[d] = x_shape_[d];
    Tensor grad_read = Tensor::empty(read_shape, grad_out.dtype(), grad_out.device());
    const int64_t outer = product(read_shape, 0, d), inner = product(read_shape, d + 1, read_shape.size());
    run_index_kernel(IndexKernel::gather_backward, grad_read, grad_out, index_, outer, x_shape_[d], index_.size(dim_),
                     inner);
    if (read_shape == x_shape_) return {grad_read, Tensor()};
    Tensor grad_x = Tensor::zeros(x_shape_, grad_out.dtype(), grad_out.device());
    Tensor target = grad_x;
    for (size_t k = 0; k < read_shape.size(); ++k) target = target.narrow(int64_t(k), 0, read_shape[k]);
    target.copy_(grad_read);
    return {grad_x, Tensor()};
  }
  void release_saved() override { index_ = Tensor(); }

 private:
  Tensor index_;  // x's rank, contiguous
  Shape x_shape_;
  int64_t dim_;
};

}  // namespace

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  ENGINE_CHECK(!tensors.empty(), "concat: needs at least one tensor");
  const Tensor& first = tensors[0];
  ENGINE_CHECK(first.defined() && first.dim() >= 1, "concat: tensors need at least 1 dim, got ", first.describe());
  const int64_t d = engine::wrap_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[size_t(d)] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    ENGINE_CHECK(t.defined(), "concat: tensor ", i, " is undefined");
    engine::check_same_device("concat", {&first, &t});
    engine::check_same_dtype("concat", {&first, &t});
    bool compatible = t.dim() == first.dim();
    for (int64_t k = 0; compatible && k < t.dim(); ++k) compatible = k == d || t.size(k) == first.size(k);
    ENGINE_CHECK(compatible, "concat: tensor ", i, " ", t.describe(), " does not match tensor 0 ", first.describe(),
                 " outside dim ", d);
    sizes.push_back(t.size(d));
    out_shape[size_t(d)] += t.size(d);
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  const int64_t outer = product(out_shape, 0, size_t(d)), inner = product(out_shape, size_t(d) + 1, out_shape.size());
  const int64_t out_row = out_shape[size_t(d)] * inner;
  int64_t start = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor piece = tensors[i].detach().contiguous();
    copy_rows(out, start * inner, out_row, piece, sizes[i] * inner, outer, sizes[i] * inner);
    start += sizes[i];
  }

  if (engine::needs_grad(tensors)) {
    std::vector<const Tensor*> inputs;
    for (const Tensor& t : tensors) inputs.push_back(&t);
    engine::record(std::make_shared<ConcatBackward>(sizes, d), inputs, {&out});
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  ENGINE_CHECK(x.defined() && x.dim() >= 1, "split: input needs at least 1 dim, got ", x.describe());
  const int64_t d = engine::wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    ENGINE_CHECK(s >= 0, "split: negative piece size ", s);
    total += s;
  }
  ENGINE_CHECK(!sizes.empty() && total == x.size(d), "split: piece sizes add up to ", total, " but dim ", d, " of ",
               x.describe(), " has size ", x.size(d));

  // The pieces are views of x (no copy); one node maps all their gradients back.
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[size_t(d)] = s;
    pieces.push_back(engine::make_view(x, shape, x.strides(), x.offset() + start * x.strides()[size_t(d)]));
    start += s;
  }
  if (engine::needs_grad({&x})) {
    std::vector<Tensor*> outputs;
    for (Tensor& p : pieces) outputs.push_back(&p);
    engine::record(std::make_shared<SplitBackward>(d), {&x}, outputs);
  }
  return pieces;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  ENGINE_CHECK(!tensors.empty(), "stack: needs at least one tensor");
  ENGINE_CHECK(tensors[0].defined(), "stack: tensor 0 is undefined");
  const int64_t d = engine::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> unsqueezed;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ENGINE_CHECK(tensors[i].defined() && tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " ",
                 tensors[i].describe(), " differs in shape from tensor 0 ", tensors[0].describe());
    unsqueezed.push_back(tensors[i].unsqueeze(d));
  }
  return concat(unsqueezed, d);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  ENGINE_CHECK(x.defined() && index.defined(), "index_select: undefined input or index");
  ENGINE_CHECK(x.dim() >= 1, "index_select: input needs at least 1 dim, got ", x.describe());
  ENGINE_CHECK(index.dim() == 1 && !engine::is_floating(index.dtype()), "index_select: index must be 1-D i32/i64, got ",
               index.describe());
  ENGINE_CHECK(engine::is_floating(x.dtype()), "index_select: input must be f32 or f64, got ", x.describe());
  engine::check_same_device("index_select", {&x, &index});
  const int64_t d = engine::wrap_dim(dim, x.dim(), "index_select");
  const Tensor index_c = index.contiguous();
  check_indices("index_select", index_c, x.size(d), x, d);

  const Tensor x_c = x.detach().contiguous();
  Shape out_shape = x.shape();
  out_shape[size_t(d)] = index.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  const int64_t outer = product(x.shape(), 0, size_t(d)), inner = product(x.shape(), size_t(d) + 1, x.shape().size());
  run_index_kernel(IndexKernel::index_select_forward, out, x_c, index_c, outer, x.size(d), index.numel(), inner);
  if (engine::needs_grad({&x}))
    engine::record(std::make_shared<IndexSelectBackward>(index_c, x.shape(), d), {&x, &index}, {&out});
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  ENGINE_CHECK(x.defined() && index.defined(), "gather: undefined input or index");
  ENGINE_CHECK(engine::is_floating(x.dtype()), "gather: input must be f32 or f64, got ", x.describe());
  ENGINE_CHECK(!engine::is_floating(index.dtype()), "gather: index must be i32 or i64, got ", index.describe());
  ENGINE_CHECK(x.dim() >= 1 && index.dim() == x.dim(), "gather: index ", index.describe(), " must have the rank of ",
               x.describe());
  engine::check_same_device("gather", {&x, &index});
  const int64_t d = engine::wrap_dim(dim, x.dim(), "gather");
  // As PyTorch: off `dim`, index may be smaller than x; the forward reads x narrowed to its sizes.
  Tensor x_read = x.detach();
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k == d) continue;
    ENGINE_CHECK(index.size(k) <= x.size(k), "gather: index ", index.describe(), " is larger than input ",
                 x.describe(), " in dim ", k);
    x_read = x_read.narrow(k, 0, index.size(k));
  }
  x_read = x_read.contiguous();
  const Tensor index_c = index.contiguous();
  check_indices("gather", index_c, x.size(d), x, d);

  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  const int64_t outer = product(index.shape(), 0, size_t(d));
  const int64_t inner = product(index.shape(), size_t(d) + 1, index.shape().size());
  run_index_kernel(IndexKernel::gather_forward, out, x_read, index_c, outer, x.size(d), index.size(d), inner);
  if (engine::needs_grad({&x}))
    engine::record(std::make_shared<GatherBackward>(index_c, x.shape(), d), {&x, &index}, {&out});
  return out;
}

}  // namespace ops
