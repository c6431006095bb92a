// check_ranks_agree: ranks with the same run config and model pass; a rank with another width,
// learning rate or parameter shape makes every rank throw, the differing one naming the field and
// both values. On threads (tests/dist/thread_communicator.h, always) and, under mpirun -np 2, over
// MPI (test_dist_mpi2).
#include <doctest/doctest.h>

#include <mutex>

#include "engine/dist/rank_agreement.h"
#include "engine/error.h"
#include "thread_communicator.h"
#include "world.h"

using engine::dist::AgreementField;
using engine::dist::check_ranks_agree;
using engine::dist::config_fields;
using engine::dist::parameter_fields;
using nlohmann::json;

namespace {

json run_config(int64_t channels, double lr) {
  return {{"channels", channels}, {"lr", lr}, {"pe", "seqpe"}, {"seqpe", {{"encoder", {{"layers", 2}}}}}};
}

// The error each rank throws (empty when it does not), running `fields_of(rank)` on `world` threads.
std::vector<std::string> errors_on_threads(int world, const std::function<std::vector<AgreementField>(int)>& fields_of) {
  std::vector<std::string> errors(static_cast<size_t>(world));
  thread_communicator::run_ranks(world, [&](engine::dist::Communicator& comm) {
    try {
      check_ranks_agree(comm, fields_of(comm.rank()), "run config");
    } catch (const engine::Error& e) {
      errors[size_t(comm.rank())] = e.what();
    }
  });
  return errors;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("config_fields and parameter_fields flatten what ranks must share") {
  const std::vector<AgreementField> fields = config_fields(run_config(128, 1e-3));
  REQUIRE(fields.size() == 4);
  CHECK(fields[0] == AgreementField{"/channels", "128"});
  CHECK(fields[3] == AgreementField{"/seqpe/encoder/layers", "2"});
  const std::vector<AgreementField> params =
      parameter_fields({{"w", engine::Tensor::zeros({3, 4})}, {"b", engine::Tensor::zeros({4}, engine::Dtype::f64)}});
  CHECK(params == std::vector<AgreementField>{{"parameter w", "[3, 4] f32"}, {"parameter b", "[4] f64"}});
}

TEST_CASE("ranks on threads: the same config passes, a differing field is named on the rank that differs") {
  for (int world : {2, 3}) {
    CAPTURE(world);
    for (const std::string& e : errors_on_threads(world, [](int) { return config_fields(run_config(128, 1e-3)); }))
      CHECK(e.empty());

    // The last rank has another width.
    const std::vector<std::string> width = errors_on_threads(world, [world](int rank) {
      return config_fields(run_config(rank == world - 1 ? 256 : 128, 1e-3));
    });
    CHECK(contains(width.back(), "'/channels' is 128 on rank 0 but 256 on this rank"));
    CHECK(contains(width.front(), "rank(s) " + std::to_string(world - 1) + " differ from rank 0"));
    CHECK(contains(width.front(), "'/channels' is 128 on rank 0 but 256 on rank " + std::to_string(world - 1)));

    // A rank with an extra field, and one with another parameter shape.
    const std::vector<std::string> extra = errors_on_threads(world, [](int rank) {
      json config = run_config(128, 1e-3);
      if (rank == 1) config["steps"] = 6;
      return config_fields(config);
    });
    CHECK(contains(extra[1], "rank 0 lacks '/steps' of this rank"));
    const std::vector<std::string> shape = errors_on_threads(world, [](int rank) {
      return parameter_fields({{"h.0.weight", engine::Tensor::zeros({rank == 1 ? 5 : 4, 4})}});
    });
    CHECK(contains(shape[1], "'parameter h.0.weight' is [4, 4] f32 on rank 0 but [5, 4] f32 on this rank"));
    for (const std::string& e : shape) CHECK_FALSE(e.empty());
  }
}

TEST_CASE("ranks of this job (mpirun -np 2 over MPI): agreement passes, rank 1's other learning rate fails") {
  engine::dist::Communicator& comm = world();
  check_ranks_agree(comm, config_fields(run_config(128, 1e-3)), "run config");
  if (comm.world_size() == 1) return;  // alone, there is nothing to disagree with
  const json mine = run_config(128, comm.rank() == 1 ? 1e6 : 1e-3);
  try {
    check_ranks_agree(comm, config_fields(mine), "run config");
    FAIL("ranks with different learning rates agreed");
  } catch (const engine::Error& e) {
    if (comm.rank() == 1) CHECK(contains(e.what(), "'/lr' is 0.001 on rank 0 but 1000000.0 on this rank"));
    else CHECK(contains(e.what(), "rank(s) 1 differ from rank 0 ('/lr' is 0.001 on rank 0 but 1000000.0 on rank 1)"));
  }
}
