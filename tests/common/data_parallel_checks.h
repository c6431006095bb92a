// Data-parallel training checked against one process on the combined batch, on any device: a
// two-layer MLP trained with SGD with momentum (unlike AdamW, sensitive to the gradient's scale) for
// a few steps, each rank on its own rows of every batch (and, with accumulation, in micro-batches),
// must end with the same parameters as one CPU process on all rows. The gradients differ only by f32
// rounding of the sums (the mean over ranks of per-shard means against one mean), so the
// parameters agree to 1e-6 relative. Used over MPI on the CPU (tests/dist) and over the emulated
// NCCL on emulated GPUs (tests/dist_emu).
//
// Legend: B combined batch rows, I inputs, H hidden units, O outputs, W world size.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "engine/dist/data_parallel.h"
#include "engine/dist/zero1.h"
#include "engine/optim/sgd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace data_parallel_checks {

using engine::Device;
using engine::Generator;
using engine::Tensor;
using namespace engine::dist;

inline constexpr int64_t kInputs = 5, kHidden = 7, kOutputs = 3, kSteps = 4;

// Parameters made on the CPU from `seed`, then moved to `device` as leaves.
struct Mlp {
  Tensor w1, b1, w2, b2;
  explicit Mlp(uint64_t seed, Device device = Device::cpu()) {
    Generator gen(seed);
    const auto leaf = [&](const Tensor& t) { return t.to(device).detach().requires_grad_(); };
    w1 = leaf(Tensor::randn({kHidden, kInputs}, gen) * 0.5);
    b1 = leaf(Tensor::randn({kHidden}, gen) * 0.1);
    w2 = leaf(Tensor::randn({kOutputs, kHidden}, gen) * 0.5);
    b2 = leaf(Tensor::randn({kOutputs}, gen) * 0.1);
  }
  Device device() const { return w1.device(); }
  std::vector<Tensor> parameters() const { return {w1, b1, w2, b2}; }
  engine::optim::NamedTensors named() const { return {{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}; }
  // Mean squared error over the rows of x [N, I] against targets [N, O].
  Tensor loss(const Tensor& x, const Tensor& targets) const {
    const Tensor y = ops::linear(ops::tanh(ops::linear(x, w1, b1)), w2, b2);
    const Tensor error = y - targets;
    return ops::mean(error * error);
  }
};

struct Batch {
  Tensor x, targets;  // [B, I], [B, O]
};

inline std::vector<Batch> make_batches(int64_t rows) {
  Generator gen(99);
  std::vector<Batch> batches;
  for (int64_t s = 0; s < kSteps; ++s)
    batches.push_back({Tensor::randn({rows, kInputs}, gen), Tensor::randn({rows, kOutputs}, gen)});
  return batches;
}

// Matrices decay, vectors do not: two groups, so ZeRO-1 shards each separately.
inline std::vector<engine::optim::ParamGroup> make_groups(const Mlp& model) {
  return engine::optim::weight_decay_groups(model.named(), 0.1, 0.01);
}

inline engine::optim::Sgd make_optimizer(std::vector<engine::optim::ParamGroup> groups) {
  return engine::optim::Sgd(std::move(groups), {.momentum = 0.9});
}

// Back-propagates micro-batch m of the rank's rows of `batch` (moved to the model's device), its
// loss divided by micro_steps so that the accumulated gradient is the mean over the rank's rows.
inline void backward_micro_batch(const Mlp& model, const Communicator& comm, const Batch& batch, int m,
                                 int micro_steps) {
  const int64_t rows = batch.x.size(0) / comm.world_size();
  const int64_t micro_rows = rows / micro_steps;
  const int64_t start = comm.rank() * rows + m * micro_rows;
  const Tensor loss = model.loss(batch.x.narrow(0, start, micro_rows).to(model.device()),
                                 batch.targets.narrow(0, start, micro_rows).to(model.device()));
  (loss * (1.0 / micro_steps)).backward();
}

// Trains `model` on its rank's rows of each batch, micro_steps micro-batches per step.
// With overlap, every bucket must have started inside the backward (the MLP reaches all parameters).
inline void train(Mlp& model, Communicator& comm, const std::vector<Batch>& batches, int micro_steps,
                  int64_t bucket_bytes, bool overlap = true) {
  DataParallel ddp(comm, model.parameters(),
                   {.bucket_bytes = bucket_bytes, .accumulation_steps = micro_steps, .overlap = overlap});
  engine::optim::Sgd optimizer = make_optimizer(make_groups(model));
  for (const Batch& batch : batches) {
    for (int m = 0; m < micro_steps; ++m) {
      backward_micro_batch(model, comm, batch, m, micro_steps);
      CHECK(ddp.reduce_gradients() == (m == micro_steps - 1));
    }
    const bool overlapped = overlap && comm.world_size() > 1;
    CHECK(ddp.buckets_started_in_backward() == (overlapped ? ddp.bucket_count() : 0));
    optimizer.step();
    optimizer.zero_grad();
  }
}

// As train(), with the optimizer state sharded across ranks (ZeRO-1).
inline void train_zero1(Mlp& model, Communicator& comm, const std::vector<Batch>& batches, int micro_steps) {
  Zero1DataParallel zero(comm, make_groups(model), micro_steps);
  engine::optim::Sgd optimizer = make_optimizer(zero.shard_groups());
  for (const Batch& batch : batches) {
    for (int m = 0; m < micro_steps; ++m) {
      backward_micro_batch(model, comm, batch, m, micro_steps);
      CHECK(zero.reduce_gradients() == (m == micro_steps - 1));
    }
    optimizer.step();
    optimizer.zero_grad();
    zero.gather_parameters();
    for (const Tensor& p : model.parameters()) CHECK_FALSE(p.grad().defined());
  }
}

// max |a - b| <= tolerance * max |b|, tensor by tensor.
inline void check_close(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected,
                        double tolerance) {
  for (size_t i = 0; i < actual.size(); ++i) {
    const std::vector<double> a = actual[i].to(Device::cpu()).to_vector<double>();
    const std::vector<double> b = expected[i].to(Device::cpu()).to_vector<double>();
    double difference = 0, scale = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      difference = std::max(difference, std::abs(a[k] - b[k]));
      scale = std::max(scale, std::abs(b[k]));
    }
    CHECK_MESSAGE(difference <= tolerance * scale, "parameter ", i, ": max difference ", difference, ", scale ", scale);
  }
}

// Trains over `comm` on `device` and compares with one CPU process on the combined batch.
inline void check_matches_combined_batch(Communicator& comm, Device device, int micro_steps, int64_t bucket_bytes,
                                         bool zero1 = false, bool overlap = true) {
  const int64_t rows = 4 * micro_steps * comm.world_size();
  const std::vector<Batch> batches = make_batches(rows);

  SingleProcessCommunicator alone;
  Mlp reference(1);
  train(reference, alone, batches, 1, int64_t(1) << 20);

  // Ranks other than 0 start from other values: the broadcast must replace them.
  Mlp model(comm.rank() == 0 ? 1 : 1000 + uint64_t(comm.rank()), device);
  if (zero1)
    train_zero1(model, comm, batches, micro_steps);
  else
    train(model, comm, batches, micro_steps, bucket_bytes, overlap);
  check_close(model.parameters(), reference.parameters(), 1e-6);
}

}  // namespace data_parallel_checks
