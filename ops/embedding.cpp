// embedding: checks (including every index against V), device dispatch and the backward node.
// Kernels: ops/cpu/embedding.h, ops/cuda/embedding.h.
//
// Legend: N = number of indices (index dims folded), V = table rows, C = channels.
#include "ops/embedding.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/embedding.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// Saves the (contiguous) indices; the table's gradient is a scatter-add of the output gradient.
class EmbeddingBackward final : public engine::Node {
 public:
  EmbeddingBackward(Tensor indices, int64_t V) : indices_(std::move(indices)), V_(V) {}
  std::string name() const override { return "EmbeddingBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor grad_out = grads[0].contiguous();  // (..., C)
    const int64_t C = grad_out.size(-1), N = indices_.numel();
    Tensor grad_table = Tensor::empty({V_, C}, grad_out.dtype(), grad_out.device());
    if (grad_out.device().is_cuda()) {
      cuda::embedding_backward(grad_table, grad_out, indices_);
    } else {
      ENGINE_DISPATCH_FLOAT(grad_out.dtype(), "embedding", [&] {
        ENGINE_DISPATCH_INDEX(indices_.dtype(), "embedding", [&] {
          cpu::embedding_backward<scalar_t, index_t>(grad_table.data<scalar_t>(), grad_out.data<scalar_t>(),
                                                     indices_.data<index_t>(), N, V_, C);
        });
      });
    }
    return {Tensor(), grad_table};
  }
  void release_saved() override { indices_ = Tensor(); }

 private:
  Tensor indices_;  // (N) contiguous
  int64_t V_;
};

// Position of the first index of indices_c: (N) contiguous outside [0, V), or -1. On CUDA the scan
// runs on the device and only its result comes back (one small synchronising copy).
int64_t first_out_of_range(const Tensor& indices_c, int64_t V) {
  const int64_t N = indices_c.numel();
  int64_t bad = -1;
  if (indices_c.device().is_cuda()) {
    bad = cuda::first_out_of_range(indices_c, V);
  } else {
    ENGINE_DISPATCH_INDEX(indices_c.dtype(), "embedding",
                          [&] { bad = cpu::first_out_of_range<index_t>(indices_c.data<index_t>(), N, V); });
  }
  return bad;
}

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& table) {
  ENGINE_CHECK(indices.defined() && table.defined(), "embedding: undefined indices or table");
  ENGINE_CHECK(!engine::is_floating(indices.dtype()), "embedding: indices must be i32 or i64, got ",
               indices.describe());
  ENGINE_CHECK(table.dim() == 2, "embedding: table must be (V, C), got ", table.describe());
  ENGINE_CHECK(engine::is_floating(table.dtype()), "embedding: table must be f32 or f64, got ", table.describe());
  engine::check_same_device("embedding", {&indices, &table});
  const int64_t V = table.size(0), C = table.size(1), N = indices.numel();

  const Tensor indices_c = indices.contiguous();
  const int64_t bad = first_out_of_range(indices_c, V);
  ENGINE_CHECK(bad < 0, "embedding: index ", bad < 0 ? 0 : int64_t(indices_c.reshape({-1}).select(0, bad).item()),
               " at position ", bad, " of indices ", indices.describe(), " is out of range for a table of V = ", V,
               " rows ", table.describe());

  const Tensor table_c = table.detach().contiguous();
  engine::Shape out_shape = indices.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  if (table.device().is_cuda()) {
    cuda::embedding_forward(out, table_c, indices_c);
  } else {
    ENGINE_DISPATCH_FLOAT(table.dtype(), "embedding", [&] {
      ENGINE_DISPATCH_INDEX(indices.dtype(), "embedding", [&] {
        cpu::embedding_forward<scalar_t, index_t>(out.data<scalar_t>(), table_c.data<scalar_t>(),
                                                  indices_c.data<index_t>(), N, C);
      });
    });
  }

  if (engine::needs_grad({&table}))
    engine::record(std::make_shared<EmbeddingBackward>(indices_c, V), {&indices, &table}, {&out});
  return out;
}

}  // namespace ops
