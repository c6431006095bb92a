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
  ENGINE_CHECK(options_.reduce_dtype == Dtype::f32 || options_.reduce_dtype == Dtype::bf16,
               "DataParallel: reduce_dtype must be f32 or bf16, got ", dtype_name(options_.reduce_dtype));
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
  Dtype current_dtype = Dtype::f32;
  Device current_device = Device::cpu();
  const auto close = [&] {
    if (current.members.empty()) return;
    int64_t n = 0;
    for (int64_t m : current.members) n += parameters_[size_t(m)].numel();
    const Dtype wire = current_dtype == Dtype::f32 ? options_.reduce_dtype : current_dtype;
    current.flat = Tensor::empty({n}, wire, current_device);
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
  slots_.resize(parameters_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    bucket.waiting = int64_t(bucket.members.size());
    int64_t offset = 0;
    for (int64_t m : bucket.members) {
      slots_[size_t(m)].bucket = int64_t(b);
      slots_[size_t(m)].offset = offset;
      offset += parameters_[size_t(m)].numel();
    }
  }
  if (options_.overlap && comm_.world_size() > 1)
    for (size_t i = 0; i < parameters_.size(); ++i)
      slots_[i].hook = add_grad_ready_hook(parameters_[i], [this, i](const Tensor&) { on_gradient_ready(int64_t(i)); });
}

DataParallel::~DataParallel() {
  for (size_t i = 0; i < parameters_.size(); ++i)
    if (slots_[i].hook >= 0) remove_grad_ready_hook(parameters_[i], slots_[i].hook);
}

bool DataParallel::reduce_gradients() {
  const bool last = last_micro_step();
  micro_step_ = last ? 0 : micro_step_ + 1;
  if (!last) return false;
  if (comm_.world_size() == 1) return true;
  NoGradGuard no_grad;
  started_in_backward_ = int64_t(next_to_start_);
  for (size_t i = 0; i < parameters_.size(); ++i)
    if (!slots_[i].copied) copy_into_bucket(int64_t(i));
  start_ready_buckets();
  for (Bucket& bucket : buckets_) finish_bucket(bucket);
  for (Slot& slot : slots_) slot.copied = false;
  for (Bucket& bucket : buckets_) bucket.waiting = int64_t(bucket.members.size());
  next_to_start_ = 0;
  return true;
}

// Runs inside the backward when parameter `index`'s gradient is final for this pass.
void DataParallel::on_gradient_ready(int64_t index) {
  if (!last_micro_step()) return;  // earlier micro-steps only accumulate
  ENGINE_CHECK(!slots_[size_t(index)].copied, "DataParallel: the gradient of parameter ", index, " ",
               parameters_[size_t(index)].describe(),
               " became ready twice in one micro-step; with overlap run one backward per micro-step "
               "(sum the losses first) or set DataParallelOptions::overlap = false");
  NoGradGuard no_grad;
  copy_into_bucket(index);
  start_ready_buckets();
  // MPI advances non-blocking collectives only inside its calls: give the started ones a turn.
  for (size_t b = 0; b < next_to_start_; ++b) buckets_[b].pending->test();
}

// Parameter `index`'s gradient -> its slice of its bucket's flat [N] (rounded when that is bf16).
void DataParallel::copy_into_bucket(int64_t index) {
  const Tensor& p = parameters_[size_t(index)];
  Slot& slot = slots_[size_t(index)];
  const Tensor grad = p.grad();
  ENGINE_CHECK(grad.defined(), "DataParallel: parameter ", index, " ", p.describe(),
               " has no gradient after backward; every rank must produce a gradient for every parameter");
  Bucket& bucket = buckets_[size_t(slot.bucket)];
  bucket.flat.narrow(0, slot.offset, p.numel()).view(p.shape()).copy_(grad);
  slot.copied = true;
  --bucket.waiting;
}

// Starts the all-reduce of every complete bucket that follows the started ones, in bucket order.
void DataParallel::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) {
    Bucket& bucket = buckets_[next_to_start_++];
    bucket.pending = comm_.all_reduce_async(bucket.flat, ReduceOp::average);
  }
}

// Waits for the bucket's mean over ranks and copies it back into the gradients (widened from bf16).
void DataParallel::finish_bucket(Bucket& bucket) {
  bucket.pending->wait();
  bucket.pending.reset();
  for (int64_t m : bucket.members) {
    Tensor& p = parameters_[size_t(m)];
    Tensor grad = p.grad();
    if (!grad.is_contiguous()) {  // only a gradient set by hand; autograd's own are contiguous
      grad = Tensor::empty(p.shape(), p.dtype(), p.device());
      p.set_grad(grad);
    }
    grad.copy_(bucket.flat.narrow(0, slots_[size_t(m)].offset, p.numel()).view(p.shape()));
  }
}

}  // namespace engine::dist
