// Where this process sits in a multi-process launch, read from the launcher's environment:
// Open MPI's mpirun (OMPI_COMM_WORLD_*), MPICH/Hydra and other PMI launchers, srun --mpi=pmi2
// included (PMI_RANK, PMI_SIZE, MPI_LOCALRANKID), Slurm's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID) and plain environment launchers such as torchrun (RANK, WORLD_SIZE, LOCAL_RANK),
// in that order. Under MPI the communicator takes rank and local rank from MPI itself
// (engine/dist/mpi_communicator.h); these variables are the fallback and the cross-check.
#pragma once

#include <functional>
#include <string>

namespace engine::dist {

struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string launcher = "none";  // "openmpi", "pmi", "slurm", "env" or "none"
};

// `getenv` returns nullptr for an unset variable (std::getenv by default; tests pass their own).
LaunchInfo detect_launch(const std::function<const char*(const char*)>& getenv = {});

}  // namespace engine::dist
