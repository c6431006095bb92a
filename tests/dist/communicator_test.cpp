// Launch detection, the single-process communicator, and every collective over the world (one
// rank alone, two or more under mpirun: ctest runs both). Values depend on the rank so that each
// rank's contribution is visible in the result; all are small integers, exact in f32.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/dist/launch_env.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "world.h"

using engine::Dtype;
using engine::Tensor;
using namespace engine::dist;

namespace {

// A fake environment for detect_launch.
auto environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const char* name) -> const char* {
    const auto it = variables.find(name);
    return it == variables.end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST_CASE("detect_launch reads Open MPI, PMI, Slurm and plain environment variables") {
  const LaunchInfo none = detect_launch(environment({}));
  CHECK(none.launcher == "none");
  CHECK(none.world_size == 1);
  CHECK(none.rank == 0);

  const LaunchInfo ompi = detect_launch(environment(
      {{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
       {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));
  CHECK(ompi.launcher == "openmpi");
  CHECK(ompi.rank == 3);
  CHECK(ompi.world_size == 8);
  CHECK(ompi.local_rank == 1);

  const LaunchInfo pmi = detect_launch(environment({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}));
  CHECK(pmi.launcher == "pmi");
  CHECK(pmi.rank == 1);
  CHECK(pmi.local_rank == 0);

  const LaunchInfo slurm =
      detect_launch(environment({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"SLURM_LOCALID", "2"}}));
  CHECK(slurm.launcher == "slurm");
  CHECK(slurm.rank == 5);
  CHECK(slurm.world_size == 6);
  CHECK(slurm.local_rank == 2);

  // srun --mpi=pmi2 sets both PMI's and Slurm's variables: PMI's come first and agree.
  const LaunchInfo pmi2 = detect_launch(environment({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"},
                                                     {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}}));
  CHECK(pmi2.launcher == "pmi");
  CHECK(pmi2.local_rank == 1);

  const LaunchInfo plain = detect_launch(environment({{"RANK", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}}));
  CHECK(plain.launcher == "env");
  CHECK(plain.rank == 2);
  CHECK(plain.world_size == 4);
  CHECK(plain.local_rank == 0);
}

TEST_CASE("detect_launch rejects malformed variables") {
  CHECK_THROWS_WITH_AS(detect_launch(environment({{"PMI_RANK", "x1"}, {"PMI_SIZE", "2"}})),
                       doctest::Contains("PMI_RANK='x1' is not a non-negative integer"), engine::Error);
  CHECK_THROWS_WITH_AS(detect_launch(environment({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}})),
                       doctest::Contains("rank 4 is outside world size 4"), engine::Error);
}

TEST_CASE("the single-process communicator is the identity, and checks its arguments") {
  SingleProcessCommunicator comm;
  CHECK(comm.world_size() == 1);
  Tensor x = Tensor::from_vector({1.5, -2, 3}, {3});
  comm.all_reduce(x, ReduceOp::average);
  comm.broadcast(x, 0);
  CHECK(x.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.f});
  Tensor gathered = Tensor::zeros({3});
  comm.all_gather(x, gathered);
  CHECK(gathered.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.f});
  Tensor scattered = Tensor::zeros({3});
  comm.reduce_scatter(gathered, scattered, ReduceOp::sum);
  CHECK(scattered.to_vector<float>() == std::vector<float>{1.5f, -2.f, 3.f});

  CHECK_THROWS_WITH_AS(comm.broadcast(x, 1), doctest::Contains("root 1 is outside world size 1"), engine::Error);
  Tensor wrong = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(comm.all_gather(x, wrong), doctest::Contains("world size (1) times the shard's elements"),
                       engine::Error);
  Tensor strided = Tensor::zeros({3, 2}).transpose(0, 1);
  CHECK_THROWS_WITH_AS(comm.all_reduce(strided, ReduceOp::sum), doctest::Contains("must be contiguous"),
                       engine::Error);
}

TEST_CASE("create_communicator matches the launch environment") {
  const LaunchInfo launch = detect_launch();
  Communicator& comm = world();
  CHECK(comm.world_size() == launch.world_size);
  CHECK(comm.rank() == launch.rank);
  CHECK(comm.local_rank() == launch.local_rank);
  MESSAGE("rank " << comm.rank() << " of " << comm.world_size() << " (" << std::string(comm.name()) << ")");
}

TEST_CASE("all_reduce sums and averages over the world") {
  Communicator& comm = world();
  const int w = comm.world_size(), r = comm.rank();
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    // Rank r holds (r+1) * [1, 2, -3]: the sum is w(w+1)/2 times that, the mean (w+1)/2 times.
    Tensor x = Tensor::from_vector({1.0 * (r + 1), 2.0 * (r + 1), -3.0 * (r + 1)}, {3}, dtype);
    Tensor y = x.clone();
    comm.all_reduce(x, ReduceOp::sum);
    comm.all_reduce(y, ReduceOp::average);
    const double total = w * (w + 1) / 2.0, mean = (w + 1) / 2.0;
    CHECK(x.to_vector<double>() == std::vector<double>{total, 2 * total, -3 * total});
    CHECK(y.to_vector<double>() == std::vector<double>{mean, 2 * mean, -3 * mean});
  }
  Tensor counts = Tensor::from_indices({int64_t(r) + 1, 7}, {2});
  comm.all_reduce(counts, ReduceOp::sum);
  CHECK(counts.to_vector<int64_t>() == std::vector<int64_t>{int64_t(w) * (w + 1) / 2, 7 * int64_t(w)});
}

TEST_CASE("broadcast copies the root's tensor to every rank") {
  Communicator& comm = world();
  const int root = comm.world_size() - 1;
  Tensor x = Tensor::from_vector({10.0 + comm.rank(), -1.0 * comm.rank()}, {2});
  comm.broadcast(x, root);
  CHECK(x.to_vector<float>() == std::vector<float>{10.f + root, -1.f * root});
}

TEST_CASE("all_gather concatenates in rank order; reduce_scatter gives each rank its slice of the sum") {
  Communicator& comm = world();
  const int w = comm.world_size(), r = comm.rank();
  Tensor shard = Tensor::from_vector({100.0 * r + 1, 100.0 * r + 2}, {2});
  Tensor gathered = Tensor::zeros({2 * w});
  comm.all_gather(shard, gathered);
  std::vector<float> expected;
  for (int k = 0; k < w; ++k) expected.insert(expected.end(), {100.f * k + 1, 100.f * k + 2});
  CHECK(gathered.to_vector<float>() == expected);

  // Rank r holds (r+1) * [0, 1, ..., 2w-1]; the sum is w(w+1)/2 times that.
  std::vector<double> values;
  for (int i = 0; i < 2 * w; ++i) values.push_back(double(i) * (r + 1));
  Tensor full = Tensor::from_vector(values, {2 * w});
  Tensor mine = Tensor::zeros({2});
  comm.reduce_scatter(full, mine, ReduceOp::sum);
  const double total = w * (w + 1) / 2.0;
  CHECK(mine.to_vector<double>() == std::vector<double>{total * 2 * r, total * (2 * r + 1)});
  comm.reduce_scatter(full, mine, ReduceOp::average);
  CHECK(mine.to_vector<double>() == std::vector<double>{(w + 1) / 2.0 * 2 * r, (w + 1) / 2.0 * (2 * r + 1)});
  comm.barrier();
}
