// All-reduce bandwidth of the CPU communicator (MPI under mpirun), as nccl-tests reports it:
// algorithm bandwidth = bytes / time, bus bandwidth = algorithm bandwidth x 2 (W - 1) / W (what each
// rank's link carries in a ring). Median of several calls per size, f32, ReduceOp::average.
//
// Usage: mpirun -np 2 bench_allreduce [max MiB, default 64]   (--help lists the arguments)
#include <cstdio>

#include "apps/bench_timing.h"
#include "apps/cli_options.h"
#include "apps/dist_job.h"
#include "engine/error.h"
#include "engine/tensor.h"

int main(int argc, char** argv) {
  return apps::run_dist_job("bench_allreduce", [&](apps::Job& job) {
    int64_t max_mib = 64;
    apps::CommandLine cli("bench_allreduce", "All-reduce bandwidth of the CPU communicator (MPI under mpirun).",
                          "mpirun -np 2 bench_allreduce 64");
    cli.option("max_mib", max_mib, "largest message in MiB (from 1 KiB, 4 times larger each)", 1);
    cli.parse(argc, argv);
    ENGINE_CHECK(max_mib <= 65536, "max_mib must be at most 65536 (64 GiB), got ", max_mib);
    engine::dist::Communicator& comm = job.communicator();
    const int w = job.world_size();
    std::printf("all_reduce (average, f32) over %d ranks, %s\n", w, comm.name());
    std::printf("%10s %12s %14s %14s\n", "bytes", "time ms", "algbw GB/s", "busbw GB/s");
    for (int64_t bytes = 1 << 10; bytes <= max_mib << 20; bytes *= 4) {
      engine::Tensor t = engine::Tensor::ones({bytes / 4});
      const int repeats = bytes <= (1 << 20) ? 50 : 10;
      const double seconds = apps::median_seconds([&] { comm.all_reduce(t, engine::dist::ReduceOp::average); }, 2, repeats);
      const double algbw = double(bytes) / seconds / 1e9;
      std::printf("%10lld %12.3f %14.3f %14.3f\n", (long long)bytes, seconds * 1e3, algbw, algbw * 2.0 * (w - 1) / w);
    }
  });
}
