// Legend: N elements of a bucket.
#include "engine/dist/data_parallel.h"

#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"

namespace engine::dist {

DataParallel::DataParallel(Communicator& comm, std::vector<Tensor> parameters, DataParallelOptions options)
    : comm_(comm), parameters_(std::move(parameters)), options_(options) {
  ENGINE_CHECK(options_.bucket_bytes > 0, "DataParallel: bucket_bytes must be positive, got ", options_.bucket_bytes);
  ENGINE_CHECK(options_.accumulation_steps >= 1, "DataParallel: accumulation_steps must be at least 1, got ",
               options_.accumulation_steps);
  NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Tensor& p = parameters_[i];
    ENGINE_CHECK(p.defined() && p.is_contiguous() && is_floating(p.dtype()), "DataParallel: parameter ", i,
                 " must be a defined, contiguous floating tensor, got ", p.defined() ? p.describe() : "undefined");
    comm_.broadcast(p, 0);
  }
  // Reverse order: backward produces the last layers' gradients first.
  Bucket current;
  int64_t current_bytes = 0;
  DType current_dtype = DType::f32;
  Device current_device = Device::cpu();
  const auto close = [&] {
    if (current.members.empty()) return;
    int64_t n = 0;
    for (int64_t m : current.members) n += parameters_[size_t(m)].numel();
    current.flat = Tensor::empty({n}, current_dtype, current_device);
    buckets_.push_back(std::move(current));
    current = Bucket{};
    current_bytes = 0;
  };
  for (int64_t i = int64_t(parameters_.size()) - 1; i >= 0; --i) {
    const Tensor& p = parameters_[size_t(i)];
    const int64_t bytes = p.numel() * int64_t(dtype_size(p.dtype()));
    const bool fits = current_bytes + bytes <= options_.bucket_bytes;
    if (!current.members.empty() && (!fits || p.dtype() != current_dtype || p.device() != current_device)) close();
    current_dtype = p.dtype();
    current_device = p.device();
    current.members.push_back(i);
    current_bytes += bytes;
  }
  close();
}

bool DataParallel::reduce_gradients() {
  micro_step_ = (micro_step_ + 1) % options_.accumulation_steps;
  if (micro_step_ != 0) return false;
  NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) average_bucket(bucket);
  return true;
}

// Gradients -> flat [N] -> mean over ranks -> gradients.
void DataParallel::average_bucket(Bucket& bucket) {
  if (comm_.world_size() == 1) return;
  int64_t offset = 0;
  for (int64_t m : bucket.members) {
    const Tensor& p = parameters_[size_t(m)];
    const Tensor grad = p.grad();
    ENGINE_CHECK(grad.defined(), "DataParallel: parameter ", m, " ", p.describe(),
                 " has no gradient after backward; every rank must produce a gradient for every parameter");
    bucket.flat.narrow(0, offset, p.numel()).view(p.shape()).copy_(grad);
    offset += p.numel();
  }
  comm_.all_reduce(bucket.flat, ReduceOp::average);
  offset = 0;
  for (int64_t m : bucket.members) {
    Tensor& p = parameters_[size_t(m)];
    Tensor grad = p.grad();
    if (!grad.is_contiguous()) {  // only a gradient set by hand; autograd's own are contiguous
      grad = Tensor::empty(p.shape(), p.dtype(), p.device());
      p.set_grad(grad);
    }
    grad.copy_(bucket.flat.narrow(0, offset, p.numel()).view(p.shape()));
    offset += p.numel();
  }
}

}  // namespace engine::dist
