// MPI_CHECK(call): throws engine::Error naming the call, file and line and MPI's description of
// the error code. Needs the communicator's errors to return (MPI_ERRORS_RETURN), which
// MpiCommunicator sets; otherwise MPI aborts the job itself, which also takes every rank down.
#pragma once

#include <mpi.h>

#include "engine/error.h"

namespace engine::dist::detail {

[[noreturn]] inline void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char message[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, message, &length) != MPI_SUCCESS) length = 0;
  throw Error(engine::detail::concat("MPI error at ", file, ":", line, ": ", call, " failed: ",
                                     length > 0 ? message : "unknown error", " (code ", code, ")"));
}

}  // namespace engine::dist::detail

#define MPI_CHECK(CALL)                                                                   \
  do {                                                                                    \
    const int engine_mpi_result_ = (CALL);                                                \
    if (engine_mpi_result_ != MPI_SUCCESS)                                                \
      ::engine::dist::detail::throw_mpi_error(engine_mpi_result_, #CALL, __FILE__, __LINE__); \
  } while (0)
