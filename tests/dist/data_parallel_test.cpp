// DataParallel and Zero1DataParallel against single-process training on the combined batch: a
// two-layer MLP trained with SGD with momentum (unlike AdamW, sensitive to the gradient's scale) for
// a few steps, each rank on its own rows of every batch (and, with accumulation, in micro-batches),
// must end with the same parameters as one process on all rows. The gradients differ only by f32
// rounding of the sums (the mean over ranks of per-shard means against one mean), so the
// parameters agree to 1e-6 relative.
//
// Legend: B combined batch rows, I inputs, H hidden units, O outputs, W world size.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/dist/data_parallel.h"
#include "engine/dist/zero1.h"
#include "engine/error.h"
#include "engine/optim/sgd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "thread_communicator.h"
#include "world.h"

using engine::DType;
using engine::Generator;
using engine::Tensor;
using namespace engine::dist;

namespace {

constexpr int64_t kInputs = 5, kHidden = 7, kOutputs = 3, kSteps = 4;

struct Mlp {
  Tensor w1, b1, w2, b2;
  explicit Mlp(uint64_t seed) {
    Generator gen(seed);
    w1 = (Tensor::randn({kHidden, kInputs}, gen) * 0.5).detach().requires_grad_();
    b1 = (Tensor::randn({kHidden}, gen) * 0.1).detach().requires_grad_();
    w2 = (Tensor::randn({kOutputs, kHidden}, gen) * 0.5).detach().requires_grad_();
    b2 = (Tensor::randn({kOutputs}, gen) * 0.1).detach().requires_grad_();
  }
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

std::vector<Batch> make_batches(int64_t rows) {
  Generator gen(99);
  std::vector<Batch> batches;
  for (int64_t s = 0; s < kSteps; ++s)
    batches.push_back({Tensor::randn({rows, kInputs}, gen), Tensor::randn({rows, kOutputs}, gen)});
  return batches;
}

// Matrices decay, vectors do not: two groups, so ZeRO-1 shards each separately.
std::vector<engine::optim::ParamGroup> make_groups(const Mlp& model) {
  return engine::optim::weight_decay_groups(model.named(), 0.1, 0.01);
}

engine::optim::SGD make_optimizer(std::vector<engine::optim::ParamGroup> groups) {
  return engine::optim::SGD(std::move(groups), {.momentum = 0.9});
}

// Trains `model` on its rank's rows of each batch: micro_steps micro-batches per step, each loss
// divided by micro_steps so that the accumulated gradient is the mean over the rank's rows.
// With overlap, every bucket must have started inside the backward (the MLP reaches all parameters).
void train(Mlp& model, Communicator& comm, const std::vector<Batch>& batches, int micro_steps, int64_t bucket_bytes,
           bool overlap = true) {
  DataParallel ddp(comm, model.parameters(),
                   {.bucket_bytes = bucket_bytes, .accumulation_steps = micro_steps, .overlap = overlap});
  engine::optim::SGD optimizer = make_optimizer(make_groups(model));
  for (const Batch& batch : batches) {
    const int64_t rows = batch.x.size(0) / comm.world_size();
    const int64_t micro_rows = rows / micro_steps;
    for (int m = 0; m < micro_steps; ++m) {
      const int64_t start = comm.rank() * rows + m * micro_rows;
      const Tensor loss = model.loss(batch.x.narrow(0, start, micro_rows), batch.targets.narrow(0, start, micro_rows));
      (loss * (1.0 / micro_steps)).backward();
      CHECK(ddp.reduce_gradients() == (m == micro_steps - 1));
    }
    const bool overlapped = overlap && comm.world_size() > 1;
    CHECK(ddp.buckets_started_in_backward() == (overlapped ? ddp.bucket_count() : 0));
    optimizer.step();
    optimizer.zero_grad();
  }
}

// As train(), with the optimizer state sharded across ranks (ZeRO-1).
void train_zero1(Mlp& model, Communicator& comm, const std::vector<Batch>& batches, int micro_steps) {
  Zero1DataParallel zero(comm, make_groups(model), micro_steps);
  engine::optim::SGD optimizer = make_optimizer(zero.shard_groups());
  for (const Batch& batch : batches) {
    const int64_t rows = batch.x.size(0) / comm.world_size();
    const int64_t micro_rows = rows / micro_steps;
    for (int m = 0; m < micro_steps; ++m) {
      const int64_t start = comm.rank() * rows + m * micro_rows;
      const Tensor loss = model.loss(batch.x.narrow(0, start, micro_rows), batch.targets.narrow(0, start, micro_rows));
      (loss * (1.0 / micro_steps)).backward();
      CHECK(zero.reduce_gradients() == (m == micro_steps - 1));
    }
    optimizer.step();
    optimizer.zero_grad();
    zero.gather_parameters();
    for (const Tensor& p : model.parameters()) CHECK_FALSE(p.grad().defined());
  }
}

// max |a - b| <= tolerance * max |b|, tensor by tensor.
void check_close(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected, double tolerance) {
  for (size_t i = 0; i < actual.size(); ++i) {
    const std::vector<double> a = actual[i].to_vector<double>(), b = expected[i].to_vector<double>();
    double difference = 0, scale = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      difference = std::max(difference, std::abs(a[k] - b[k]));
      scale = std::max(scale, std::abs(b[k]));
    }
    CHECK_MESSAGE(difference <= tolerance * scale, "parameter ", i, ": max difference ", difference, ", scale ", scale);
  }
}

void check_matches_combined_batch(int micro_steps, int64_t bucket_bytes, bool zero1 = false, bool overlap = true) {
  Communicator& comm = world();
  const int64_t rows = 4 * micro_steps * comm.world_size();
  const std::vector<Batch> batches = make_batches(rows);

  SingleProcessCommunicator alone;
  Mlp reference(1);
  train(reference, alone, batches, 1, int64_t(1) << 20);

  // Ranks other than 0 start from other values: the broadcast must replace them.
  Mlp model(comm.rank() == 0 ? 1 : 1000 + uint64_t(comm.rank()));
  if (zero1)
    train_zero1(model, comm, batches, micro_steps);
  else
    train(model, comm, batches, micro_steps, bucket_bytes, overlap);
  check_close(model.parameters(), reference.parameters(), 1e-6);
}

}  // namespace

TEST_CASE("data-parallel training matches one process on the combined batch") {
  SUBCASE("one bucket") { check_matches_combined_batch(1, int64_t(1) << 20); }
  SUBCASE("a bucket per parameter or two") { check_matches_combined_batch(1, 64); }
  SUBCASE("gradient accumulation over 3 micro-steps") { check_matches_combined_batch(3, 128); }
  SUBCASE("one bucket, all-reduced after the backward") { check_matches_combined_batch(1, int64_t(1) << 20, false, false); }
  SUBCASE("many buckets and accumulation, after the backward") { check_matches_combined_batch(3, 64, false, false); }
  SUBCASE("ZeRO-1") { check_matches_combined_batch(1, 0, true); }
  SUBCASE("ZeRO-1 with gradient accumulation over 2 micro-steps") { check_matches_combined_batch(2, 0, true); }
}

TEST_CASE("data-parallel training on ranks as threads (no MPI) matches one process on the combined batch") {
  // The averaging itself, on every build: 2 and 3 ranks of ThreadCommunicator, bucketed and not,
  // overlapped with the backward and not. A sum instead of a mean, or a mean over the wrong count,
  // moves the parameters away from the single-process run.
  for (int world_size : {2, 3}) {
    for (bool overlap : {true, false}) {
      CAPTURE(world_size);
      CAPTURE(overlap);
      const std::vector<Batch> batches = make_batches(4 * world_size);
      SingleProcessCommunicator alone;
      Mlp reference(1);
      train(reference, alone, batches, 1, int64_t(1) << 20);
      std::vector<std::vector<Tensor>> trained(static_cast<size_t>(world_size));
      test_dist::run_ranks(world_size, [&](Communicator& comm) {
        Mlp model(comm.rank() == 0 ? 1 : 1000 + uint64_t(comm.rank()));
        train(model, comm, batches, 1, 64, overlap);
        trained[size_t(comm.rank())] = model.parameters();
      });
      for (const std::vector<Tensor>& parameters : trained) check_close(parameters, reference.parameters(), 1e-6);
    }
  }
}

TEST_CASE("DataParallel buckets parameters in reverse order up to bucket_bytes") {
  SingleProcessCommunicator alone;
  const Mlp model(3);  // w1 140 B, b1 28 B, w2 84 B, b2 12 B
  CHECK(DataParallel(alone, model.parameters(), {.bucket_bytes = 1 << 20}).bucket_count() == 1);
  CHECK(DataParallel(alone, model.parameters(), {.bucket_bytes = 96}).bucket_count() == 3);  // {b2,w2} {b1} {w1}
  CHECK(DataParallel(alone, model.parameters(), {.bucket_bytes = 1}).bucket_count() == 4);
}

TEST_CASE("DataParallel checks its options and parameters") {
  SingleProcessCommunicator alone;
  const Mlp model(3);
  CHECK_THROWS_WITH_AS(DataParallel(alone, model.parameters(), {.bucket_bytes = 0}),
                       doctest::Contains("bucket_bytes must be positive"), engine::Error);
  CHECK_THROWS_WITH_AS(DataParallel(alone, model.parameters(), {.accumulation_steps = 0}),
                       doctest::Contains("accumulation_steps must be at least 1"), engine::Error);
  CHECK_THROWS_WITH_AS(DataParallel(alone, {model.w1.transpose(0, 1)}),
                       doctest::Contains("must be a defined, contiguous floating tensor"), engine::Error);
}

TEST_CASE("DataParallel names a parameter without a gradient when ranks must agree") {
  Communicator& comm = world();
  if (comm.world_size() == 1) return;  // alone, nothing is communicated and nothing is required
  Mlp model(5);
  DataParallel ddp(comm, model.parameters());
  const Tensor loss = ops::mean(ops::linear(Tensor::ones({2, kInputs}), model.w1));
  loss.backward();
  CHECK_THROWS_WITH_AS(ddp.reduce_gradients(), doctest::Contains("has no gradient after backward"), engine::Error);
}

TEST_CASE("DataParallel with overlap refuses a second backward in one micro-step") {
  Communicator& comm = world();
  if (comm.world_size() == 1) return;  // alone, no hooks are installed
  Mlp model(5);
  DataParallel ddp(comm, model.parameters(), {.bucket_bytes = 64});
  const Tensor x = Tensor::ones({2, kInputs}), targets = Tensor::zeros({2, kOutputs});
  model.loss(x, targets).backward();
  CHECK_THROWS_WITH_AS(model.loss(x, targets).backward(), doctest::Contains("became ready twice in one micro-step"),
                       engine::Error);
}

TEST_CASE("Zero1DataParallel checks its groups and names a parameter without a gradient") {
  Communicator& comm = world();
  CHECK_THROWS_WITH_AS(Zero1DataParallel(comm, {engine::optim::ParamGroup{}}),
                       doctest::Contains("parameter group 0 is empty"), engine::Error);
  Mlp model(5);
  Zero1DataParallel zero(comm, make_groups(model));
  CHECK(zero.shard_groups().size() == 2);
  ops::mean(ops::linear(Tensor::ones({2, kInputs}), model.w1)).backward();
  CHECK_THROWS_WITH_AS(zero.reduce_gradients(), doctest::Contains("has no gradient after backward"), engine::Error);
}
