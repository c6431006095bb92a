// Reading rank, world size and local rank from mpirun's, PMI launchers' or Slurm's environment
// (engine/dist/launch_env.h).
#include "engine/dist/launch_env.h"

#include <cstdlib>
#include <string>

#include "engine/error.h"

namespace engine::dist {

namespace {

// Parses a launcher variable as a non-negative integer; errors name the variable.
int parse_int(const char* variable, const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  ENGINE_CHECK(end != text && *end == '\0' && value >= 0 && value < (1L << 30), "launch environment: ",
               variable, "='", text, "' is not a non-negative integer");
  return int(value);
}

}  // namespace

LaunchInfo detect_launch(const std::function<const char*(const char*)>& getenv_fn) {
  const auto get = [&](const char* name) -> const char* { return getenv_fn ? getenv_fn(name) : std::getenv(name); };
  struct Scheme {
    const char* launcher;
    const char* rank;
    const char* size;
    const char* local_rank;
  };
  const Scheme schemes[] = {
      {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
      {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
      {"env", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
  };
  for (const Scheme& scheme : schemes) {
    const char* rank = get(scheme.rank);
    const char* size = get(scheme.size);
    if (!rank || !size) continue;
    LaunchInfo info;
    info.launcher = scheme.launcher;
    info.rank = parse_int(scheme.rank, rank);
    info.world_size = parse_int(scheme.size, size);
    const char* local = get(scheme.local_rank);
    info.local_rank = local ? parse_int(scheme.local_rank, local) : 0;
    ENGINE_CHECK(info.world_size >= 1 && info.rank < info.world_size, "launch environment (", scheme.launcher,
                 "): rank ", info.rank, " is outside world size ", info.world_size);
    return info;
  }
  return LaunchInfo{};
}

}  // namespace engine::dist
