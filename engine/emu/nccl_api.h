// The subset of NCCL the engine calls, emulated with NCCL's names and signatures so that
// engine/dist/nccl_communicator.cpp compiles unchanged against it. The ranks are MPI processes:
// ncclCommInitRank joins the processes that pass the same unique id (MPI_Comm_split of
// MPI_COMM_WORLD), and a collective moves the emulated device memory (host memory) with MPI.
//
// What real NCCL cannot do, the emulator checks on every collective: before any data moves, each rank
// sends the others a description of the call (its sequence number, collective, element count, data
// type, reduction and root) and compares. When the ranks disagree, every rank's call fails with
// ncclInvalidUsage and ncclGetLastError names the first rank that differs and both calls (real NCCL
// would hang, or reduce garbage). When a rank does not issue its call within the timeout
// (ncclEmuSetTimeout, 600 s by default), the call fails with ncclRemoteError naming the ranks that
// are missing. Either error sticks to the communicator, as NCCL's asynchronous errors do:
// ncclCommGetAsyncError reports it and every later call fails.
//
// Calls are synchronous (the emulated streams are): the result is in the receive buffer when the
// call returns. Between ncclGroupStart and ncclGroupEnd the calls are queued and run, in order, by
// ncclGroupEnd. Buffers must be memory of the communicator's device (the device current at
// ncclCommInitRank), and so must the stream. Data types: int32, int64, float32, float64, and bfloat16
// (sum and avg only). bfloat16 reduces as NCCL does: each addition in f32, rounded to bf16 (nearest
// even) before the next, and avg multiplies every rank's value by 1/W (rounded to bf16) before the
// sum (NCCL's pre-multiplied sum for floating types); the other types' avg divides the sum.
#pragma once

#include <cstddef>

#include "engine/emu/runtime_api.h"

enum ncclResult_t {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
};

enum ncclDataType_t {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9,
};

enum ncclRedOp_t { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };

#define NCCL_UNIQUE_ID_BYTES 128
struct ncclUniqueId {
  char internal[NCCL_UNIQUE_ID_BYTES];
};

struct EmulatedNcclComm;
using ncclComm_t = EmulatedNcclComm*;

const char* ncclGetErrorString(ncclResult_t result);
// The detailed message of the calling thread's last failed call ("" if none).
const char* ncclGetLastError(ncclComm_t comm);

ncclResult_t ncclGetUniqueId(ncclUniqueId* id);
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
// Frees the communicator without waiting for other ranks (after an error).
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error);
ncclResult_t ncclCommCount(ncclComm_t comm, int* count);
ncclResult_t ncclCommUserRank(ncclComm_t comm, int* rank);

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream);
// recvbuff [nranks * sendcount] <- every rank's sendbuff [sendcount], in rank order.
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream);
// recvbuff [recvcount] <- this rank's slice of the reduction of every rank's sendbuff [nranks * recvcount].
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclGroupStart();
ncclResult_t ncclGroupEnd();

// Emulator only: seconds a collective waits for the other ranks before it fails (default 600).
ncclResult_t ncclEmuSetTimeout(ncclComm_t comm, double seconds);
