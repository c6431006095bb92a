// The test program's communicator over all ranks: an MpiCommunicator under mpirun, else world size 1.
// Made once per process (MPI initialises once).
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

inline engine::dist::Communicator& world() {
  static const std::unique_ptr<engine::dist::Communicator> comm = engine::dist::create_communicator();
  return *comm;
}
