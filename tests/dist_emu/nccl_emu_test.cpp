// The NCCL communicator under the emulator: its ranks are the MPI processes of the test (mpirun -np 2
// in ctest, or one process alone), each on its own emulated GPU (ENGINE_EMU_DEVICES=2), chosen by
// select_cuda_device. Checks the collectives' values, DataParallel and ZeRO-1 on CUDA tensors
// against one CPU process on the combined batch, and that misuse is reported rather than hung: a
// rank whose collective differs, a rank that never joins one (its own ctest entry), two ranks on
// one GPU (its own ctest entry, with ENGINE_EMU_DEVICES=1), a tensor of another device, and the
// NCCL watchdog ending the job on an asynchronous error (its own ctest entry).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/data_parallel_checks.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "dist/world.h"

#include "engine/cuda/check.h"
#include "engine/cuda/init.h"
#include "engine/cuda/nccl_check.h"
#include "engine/dist/device_select.h"
#include "engine/dist/nccl_communicator.h"
#include "engine/dist/nccl_watchdog.h"
#include "engine/emu/devices.h"

using engine::Device;
using engine::Dtype;
using engine::Tensor;
using namespace engine::dist;

namespace {

// Two emulated GPUs unless the caller asked for another count: one per rank of `mpirun -np 2`.
const bool two_devices = setenv("ENGINE_EMU_DEVICES", "2", /*overwrite=*/0) == 0;

// The NCCL communicator over all ranks, made once per process (it chooses the rank's GPU).
NcclCommunicator& nccl_world() {
  static const std::unique_ptr<NcclCommunicator> comm = [] {
    REQUIRE(two_devices);
    engine::cuda::init();
    return std::make_unique<NcclCommunicator>(world());
  }();
  return *comm;
}

// Another communicator over the same ranks and GPU: its errors stick to it alone.
std::unique_ptr<NcclCommunicator> fresh_communicator(double timeout_seconds = 0) {
  NcclCommunicator& main = nccl_world();
  return std::make_unique<NcclCommunicator>(world(), NcclOptions{main.device().index, timeout_seconds});
}

// A raw NCCL communicator over the world's ranks on their GPUs, rank 0's unique id sent over MPI.
ncclComm_t raw_nccl_comm() {
  NcclCommunicator& main = nccl_world();
  ncclUniqueId id;
  Tensor words = Tensor::zeros({int64_t(sizeof id / sizeof(int32_t))}, Dtype::i32);
  if (main.rank() == 0) {
    NCCL_CHECK(ncclGetUniqueId(&id));
    std::memcpy(words.raw_data(), &id, sizeof id);
  }
  world().broadcast(words, 0);
  std::memcpy(&id, words.raw_data(), sizeof id);
  ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclCommInitRank(&comm, main.world_size(), id, main.rank()));
  return comm;
}

std::vector<double> values(const Tensor& t) { return t.to(Device::cpu()).to_vector<double>(); }

}  // namespace

TEST_CASE("choose_local_device: one visible GPU is device 0, several are one per local rank") {
  CHECK(choose_local_device(0, 1) == 0);
  CHECK(choose_local_device(5, 1) == 0);  // CUDA_VISIBLE_DEVICES gave this rank its own GPU
  CHECK(choose_local_device(3, 8) == 3);
  CHECK_THROWS_WITH_AS(choose_local_device(4, 4), doctest::Contains("local rank 4 has no GPU of its own"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(choose_local_device(0, 0), doctest::Contains("no CUDA device is visible"), engine::Error);
}

TEST_CASE("each rank runs on its own emulated GPU, which Device::cuda() names") {
  NcclCommunicator& comm = nccl_world();
  CHECK(comm.world_size() == world().world_size());
  CHECK(comm.rank() == world().rank());
  CHECK(comm.device() == Device::cuda(comm.local_rank()));
  CHECK(Device::cuda() == comm.device());
}

TEST_CASE("emulated NCCL collectives sum, average, broadcast, gather and scatter over the ranks") {
  NcclCommunicator& comm = nccl_world();
  const int w = comm.world_size(), r = comm.rank();
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    Tensor x = Tensor::from_vector({double(r + 1), -2.0 * r, 0.5}, {3}, dtype).to(Device::cuda());
    comm.all_reduce(x, ReduceOp::sum);
    const double ranks_sum = w * (w + 1) / 2.0, minus_two_sum = -2.0 * (w * (w - 1) / 2.0);
    CHECK(values(x) == std::vector<double>{ranks_sum, minus_two_sum, 0.5 * w});
    comm.all_reduce(x, ReduceOp::average);
    CHECK(values(x) == std::vector<double>{ranks_sum, minus_two_sum, 0.5 * w});

    Tensor b = Tensor::from_vector({double(r), double(r)}, {2}, dtype).to(Device::cuda());
    comm.broadcast(b, w - 1);
    CHECK(values(b) == std::vector<double>{double(w - 1), double(w - 1)});

    const Tensor shard = Tensor::from_vector({double(10 * r), double(10 * r + 1)}, {2}, dtype).to(Device::cuda());
    Tensor gathered = Tensor::zeros({2 * w}, dtype, Device::cuda());
    comm.all_gather(shard, gathered);
    std::vector<double> expected_gather;
    for (int k = 0; k < w; ++k) expected_gather.insert(expected_gather.end(), {double(10 * k), double(10 * k + 1)});
    CHECK(values(gathered) == expected_gather);

    Tensor scattered = Tensor::zeros({2}, dtype, Device::cuda());
    comm.reduce_scatter(gathered, scattered, ReduceOp::sum);  // every rank gave the same [2W]: W times slice r
    CHECK(values(scattered) == std::vector<double>{double(w * 10 * r), double(w * (10 * r + 1))});
  }
  Tensor counts = Tensor::from_vector({1.0, 2.0}, {2}, Dtype::i64).to(Device::cuda());
  std::unique_ptr<PendingCollective> pending = comm.all_reduce_async(counts, ReduceOp::sum);
  pending->wait();
  CHECK(values(counts) == std::vector<double>{double(w), 2.0 * w});
  comm.barrier();
}

// bf16 reduces as NCCL does: every addition rounded to bf16, and the mean pre-multiplies each
// rank's value by 1/W. Rank r holds 1 + r·2^-7 (exact: bf16 keeps 8 significant bits) and 2^-9: the
// sum of the first over 2 ranks, 2 + 2^-7, is halfway between bf16 neighbours and rounds to even (2);
// the second sums exactly.
// DataParallel with reduce_dtype bf16 rounds each gradient into its bucket and widens the mean back.
TEST_CASE("emulated NCCL reduces bf16 with NCCL's rounding; DataParallel all-reduces in bf16") {
  NcclCommunicator& comm = nccl_world();
  const int w = comm.world_size(), r = comm.rank();
  if (w != 2) {
    MESSAGE("the bf16 reduction's expected values are for 2 ranks (test_dist_emu_mpi2 runs them)");
    return;
  }
  const double step = std::ldexp(1.0, -7);
  Tensor x = Tensor::from_vector({1 + r * step, std::ldexp(1.0, -9)}, {2}, Dtype::bf16).to(Device::cuda());
  comm.all_reduce(x, ReduceOp::sum);
  CHECK(values(x) == std::vector<double>{2.0, std::ldexp(1.0, -8)});
  Tensor y = Tensor::from_vector({1 + r * step, 3.0}, {2}, Dtype::bf16).to(Device::cuda());
  comm.all_reduce(y, ReduceOp::average);  // 0.5 + (0.5 + 2^-8) = 1 + 2^-8: halfway, rounds to even (1)
  CHECK(values(y) == std::vector<double>{1.0, 3.0});
  Tensor scattered = Tensor::zeros({1}, Dtype::bf16, Device::cuda());
  comm.reduce_scatter(y, scattered, ReduceOp::average);
  CHECK(values(scattered) == std::vector<double>{r == 0 ? 1.0 : 3.0});

  // Gradients 1 + r·2^-7 + 2^-12 (rounded into the bf16 bucket to 1 + r·2^-7) average to 1 on both
  // ranks in bf16, where f32 keeps 1 + 2^-8 + 2^-12.
  Tensor weight = Tensor::zeros({2}, Dtype::f32, Device::cuda()).requires_grad_();
  DataParallel bf16_ddp(comm, {weight}, {.bucket_bytes = 1 << 20, .accumulation_steps = 1, .overlap = true,
                                         .reduce_dtype = Dtype::bf16});
  const double g = 1 + r * step + std::ldexp(1.0, -12);
  weight.set_grad(Tensor::from_vector({g, -g}, {2}, Dtype::f32).to(Device::cuda()));
  CHECK(bf16_ddp.reduce_gradients());
  CHECK(weight.grad().dtype() == Dtype::f32);
  CHECK(values(weight.grad()) == std::vector<double>{1.0, -1.0});
  DataParallel f32_ddp(comm, {weight}, {.bucket_bytes = 1 << 20});
  weight.set_grad(Tensor::from_vector({g, -g}, {2}, Dtype::f32).to(Device::cuda()));
  CHECK(f32_ddp.reduce_gradients());
  const double mean = 1 + std::ldexp(1.0, -8) + std::ldexp(1.0, -12);
  CHECK(values(weight.grad()) == std::vector<double>{mean, -mean});

  const ncclComm_t raw = raw_nccl_comm();
  CHECK(ncclAllReduce(x.raw_data(), x.raw_data(), 2, ncclBfloat16, ncclMax, raw, nullptr) ==
        ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(raw)).find("bfloat16 max is not emulated") != std::string::npos);
  ncclCommDestroy(raw);
}

TEST_CASE("emulated NCCL group calls run in order at ncclGroupEnd") {
  NcclCommunicator& main = nccl_world();
  const int w = main.world_size();
  ncclComm_t comm = raw_nccl_comm();
  Tensor a = Tensor::ones({4}, Dtype::f32, Device::cuda()), b = Tensor::ones({2}, Dtype::f64, Device::cuda());
  NCCL_CHECK(ncclGroupStart());
  NCCL_CHECK(ncclAllReduce(a.raw_data(), a.raw_data(), 4, ncclFloat32, ncclSum, comm, nullptr));
  NCCL_CHECK(ncclAllReduce(b.raw_data(), b.raw_data(), 2, ncclFloat64, ncclAvg, comm, nullptr));
  CHECK(values(a) == std::vector<double>(4, 1.0));  // queued, not run yet
  NCCL_CHECK(ncclGroupEnd());
  CHECK(values(a) == std::vector<double>(4, double(w)));
  CHECK(values(b) == std::vector<double>(2, 1.0));
  NCCL_CHECK(ncclCommDestroy(comm));
}

TEST_CASE("DataParallel and ZeRO-1 over the emulated NCCL on emulated GPUs match one CPU process") {
  NcclCommunicator& comm = nccl_world();
  using data_parallel_checks::check_matches_combined_batch;
  SUBCASE("one bucket") { check_matches_combined_batch(comm, Device::cuda(), 1, int64_t(1) << 20); }
  SUBCASE("a bucket per parameter or two, accumulation over 3 micro-steps") {
    check_matches_combined_batch(comm, Device::cuda(), 3, 64);
  }
  SUBCASE("all-reduced after the backward") { check_matches_combined_batch(comm, Device::cuda(), 1, 64, false, false); }
  SUBCASE("ZeRO-1") { check_matches_combined_batch(comm, Device::cuda(), 1, 0, true); }
  SUBCASE("ZeRO-1 with accumulation over 2 micro-steps") { check_matches_combined_batch(comm, Device::cuda(), 2, 0, true); }
}

TEST_CASE("the NCCL communicator refuses a tensor of another device") {
  NcclCommunicator& comm = nccl_world();
  if (engine::emu::device_count() < 2) return;
  const int other = (comm.device().index + 1) % engine::emu::device_count();
  Tensor x = Tensor::ones({3}, Dtype::f32, Device::cuda(other));
  CHECK_THROWS_WITH_AS(comm.all_reduce(x, ReduceOp::sum),
                       doctest::Contains(("communicator runs on " + comm.device().str()).c_str()), engine::Error);
}

// Every rank sees every rank's call before data moves: all report the same first difference.
TEST_CASE("a rank whose collective differs is reported on every rank, not hung") {
  if (world().world_size() == 1) return;
  const std::unique_ptr<NcclCommunicator> comm = fresh_communicator();
  Tensor x = Tensor::ones({10 + 2 * comm->rank()}, Dtype::f32, Device::cuda());
  CHECK_THROWS_WITH_AS(comm->all_reduce(x, ReduceOp::sum),
                       doctest::Contains("rank 1 issued collective #0: ncclAllReduce of 12 float32 (sum) where rank 0 "
                                         "issued collective #0: ncclAllReduce of 10 float32 (sum)"),
                       engine::Error);
  // The error sticks, as NCCL's asynchronous errors do.
  CHECK_THROWS_WITH_AS(comm->barrier(), doctest::Contains("the communicator failed earlier"), engine::Error);
}

// Its own ctest entry (test_dist_emu_timeout): the unanswered call leaves a message behind in MPI.
TEST_CASE("a collective another rank never joins times out, naming that rank") {
  if (world().world_size() == 1) return;
  const std::unique_ptr<NcclCommunicator> comm = fresh_communicator(/*timeout_seconds=*/1.0);
  if (comm->rank() == 0) {
    Tensor x = Tensor::ones({4}, Dtype::f32, Device::cuda());
    CHECK_THROWS_WITH_AS(comm->all_reduce(x, ReduceOp::sum),
                         doctest::Contains("collective #0: ncclAllReduce of 4 float32 (sum) did not finish within 1 s: "
                                           "rank(s) 1 never issued it"),
                         engine::Error);
  }
  world().barrier();
}

// Its own ctest entry (test_dist_emu_shared_gpu), run with ENGINE_EMU_DEVICES=1.
TEST_CASE("two ranks on one GPU are refused, naming both") {
  if (world().world_size() == 1) return;
  engine::cuda::init();
  REQUIRE(engine::emu::device_count() == 1);
  CHECK_THROWS_WITH_AS(select_cuda_device(world()), doctest::Contains("ranks 0 and 1 would share GPU GPU-"),
                       engine::Error);
}

// Its own ctest entry (test_dist_emu_watchdog), which passes on the watchdog's message: the
// watchdog ends the job (MPI_Abort), so this test case never returns. Emulated events always
// complete, so only the asynchronous-error path can be shown here; the timeout path needs a GPU.
TEST_CASE("the NCCL watchdog ends the job on an asynchronous error, naming the rank") {
  if (world().world_size() == 1) return;
  NcclCommunicator& main = nccl_world();
  ncclComm_t comm = raw_nccl_comm();
  Tensor x = Tensor::ones({4 + main.rank()}, Dtype::f32, Device::cuda());  // the ranks' counts differ
  CHECK(ncclAllReduce(x.raw_data(), x.raw_data(), size_t(x.numel()), ncclFloat32, ncclSum, comm, nullptr) ==
        ncclInvalidUsage);
  ncclResult_t async_error = ncclSuccess;
  NCCL_CHECK(ncclCommGetAsyncError(comm, &async_error));
  CHECK(async_error == ncclInvalidUsage);
  NcclWatchdog watchdog(comm, main.rank(), main.world_size(), main.device().index, 600);
  std::this_thread::sleep_for(std::chrono::seconds(10));  // the watchdog ends the process well before
  FAIL("the watchdog did not end the job");
}
