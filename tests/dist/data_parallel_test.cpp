// DataParallel and Zero1DataParallel over the CPU communicator (MPI under mpirun, else one process)
// against single-process training on the combined batch (tests/common/data_parallel_checks.h).
#include <doctest/doctest.h>

#include "common/data_parallel_checks.h"
#include "engine/error.h"
#include "thread_communicator.h"
#include "world.h"

using engine::Tensor;
using namespace engine::dist;
using namespace data_parallel_checks;

namespace {

void check_matches_combined_batch(int micro_steps, int64_t bucket_bytes, bool zero1 = false, bool overlap = true) {
  data_parallel_checks::check_matches_combined_batch(world(), engine::Device::cpu(), micro_steps, bucket_bytes, zero1,
                                                     overlap);
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
      thread_communicator::run_ranks(world_size, [&](Communicator& comm) {
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
