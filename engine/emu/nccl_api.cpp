// Legend: N elements of one rank's buffer, W ranks of the communicator.
#include "engine/emu/nccl_api.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/bfloat16.h"
#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/error.h"

struct EmulatedNcclComm {
  MPI_Comm mpi = MPI_COMM_NULL;  // the ranks, in NCCL rank order (null at W = 1)
  int rank = 0, nranks = 1;
  int device = 0;                // current at init: buffers and streams must be on it
  uint64_t calls = 0;            // collectives issued so far: the next one's sequence number
  double timeout_seconds = 600;
  ncclResult_t async_error = ncclSuccess;
  std::string async_message;
};

namespace {

constexpr char kIdMagic[8] = {'e', 'm', 'u', 'N', 'C', 'C', 'L', '1'};
constexpr int kHeaderTag = 0x4e43;  // "NC": the call descriptions, in their own tag

thread_local std::string last_error;
thread_local int group_depth = 0;
thread_local std::vector<std::function<ncclResult_t()>> group_calls;

enum class Collective : int32_t { all_reduce, broadcast, all_gather, reduce_scatter };

// What one rank says it is calling; every rank must say the same.
struct CallHeader {
  uint64_t sequence = 0;
  int32_t collective = 0;
  int32_t datatype = 0;
  int32_t op = -1;    // reduction, or -1
  int32_t root = -1;  // broadcast root, or -1
  uint64_t count = 0;
  bool operator==(const CallHeader&) const = default;
};

const char* collective_name(int32_t collective) {
  switch (Collective(collective)) {
    case Collective::all_reduce: return "ncclAllReduce";
    case Collective::broadcast: return "ncclBroadcast";
    case Collective::all_gather: return "ncclAllGather";
    case Collective::reduce_scatter: return "ncclReduceScatter";
  }
  return "an unknown collective";
}

const char* type_name(int32_t datatype) {
  switch (ncclDataType_t(datatype)) {
    case ncclInt8: return "int8";
    case ncclUint8: return "uint8";
    case ncclInt32: return "int32";
    case ncclUint32: return "uint32";
    case ncclInt64: return "int64";
    case ncclUint64: return "uint64";
    case ncclFloat16: return "float16";
    case ncclFloat32: return "float32";
    case ncclFloat64: return "float64";
    case ncclBfloat16: return "bfloat16";
  }
  return "an unknown type";
}

const char* op_name(int32_t op) {
  switch (ncclRedOp_t(op)) {
    case ncclSum: return "sum";
    case ncclProd: return "prod";
    case ncclMax: return "max";
    case ncclMin: return "min";
    case ncclAvg: return "avg";
  }
  return "an unknown reduction";
}

// "collective #3: ncclAllReduce of 10 float32 (sum)"
std::string describe(const CallHeader& call) {
  std::string text = engine::detail::concat("collective #", call.sequence, ": ", collective_name(call.collective), " of ",
                                            call.count, " ", type_name(call.datatype));
  if (call.op >= 0) text += engine::detail::concat(" (", op_name(call.op), ")");
  if (call.root >= 0) text += engine::detail::concat(" from root ", call.root);
  return text;
}

ncclResult_t fail(ncclResult_t result, const std::string& message) {
  last_error = message;
  return result;
}

// A failure that leaves the communicator unusable, as NCCL's asynchronous errors do.
ncclResult_t fail_comm(EmulatedNcclComm& comm, ncclResult_t result, const std::string& message) {
  comm.async_error = result;
  comm.async_message = message;
  return fail(result, message);
}

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, size_t(length));
}

std::string prefix(const EmulatedNcclComm& comm) {
  return engine::detail::concat("emulated NCCL rank ", comm.rank, " of ", comm.nranks, ": ");
}

size_t element_bytes(ncclDataType_t datatype) {
  switch (datatype) {
    case ncclInt32: return 4;
    case ncclFloat32: return 4;
    case ncclInt64: return 8;
    case ncclFloat64: return 8;
    case ncclBfloat16: return 2;
    default: return 0;  // not emulated
  }
}

MPI_Datatype mpi_type(ncclDataType_t datatype) {
  switch (datatype) {
    case ncclInt32: return MPI_INT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclBfloat16: return MPI_UINT16_T;  // moved as bits; summed by bf16_sum_op()
    default: return MPI_DOUBLE;
  }
}

// inout[i] = bf16(f32(in[i]) + f32(inout[i])): one addition of NCCL's bf16 reduction, rounded to bf16
// before the next (an MPI user function over the bits).
void bf16_sum(void* in, void* inout, int* length, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *length; ++i)
    b[i] = engine::bf16_bits_from_f32(engine::f32_from_bf16_bits(a[i]) + engine::f32_from_bf16_bits(b[i]));
}

// The MPI operation of bf16_sum, created on first use (after MPI_Init) and kept until exit.
MPI_Op bf16_sum_op() {
  static const MPI_Op op = [] {
    MPI_Op created = MPI_OP_NULL;
    MPI_Op_create(&bf16_sum, 1, &created);
    return created;
  }();
  return op;
}

// x[i] = bf16(f32(x[i]) / W): ncclAvg's pre-multiplication of a bf16 buffer before its sum.
void premultiply_bf16(void* x, size_t n, int ranks) {
  uint16_t* values = static_cast<uint16_t*>(x);
  const float scale = 1.0f / float(ranks);
  for (size_t i = 0; i < n; ++i)
    values[i] = engine::bf16_bits_from_f32(engine::f32_from_bf16_bits(values[i]) * scale);
}

MPI_Op mpi_op(ncclRedOp_t op, ncclDataType_t datatype) {
  if (datatype == ncclBfloat16) return bf16_sum_op();  // sum and avg (check_reduction refuses the rest)
  switch (op) {
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    case ncclMin: return MPI_MIN;
    default: return MPI_SUM;  // sum, and avg before its division
  }
}

// x[i] /= W: finishes ncclAvg after a sum.
template <typename T>
void divide(void* x, size_t n, int ranks) {
  T* values = static_cast<T*>(x);
  for (size_t i = 0; i < n; ++i) values[i] /= T(ranks);
}

void finish_average(void* x, size_t n, ncclDataType_t datatype, int ranks) {
  switch (datatype) {
    case ncclBfloat16: break;  // pre-multiplied before the sum
    case ncclInt32: divide<int32_t>(x, n, ranks); break;
    case ncclInt64: divide<int64_t>(x, n, ranks); break;
    case ncclFloat32: divide<float>(x, n, ranks); break;
    default: divide<double>(x, n, ranks); break;
  }
}

// Polls `requests` until all complete or the communicator's timeout passes; on timeout cancels the
// unfinished ones and returns the indices that did not complete.
std::vector<size_t> wait_all(EmulatedNcclComm& comm, std::vector<MPI_Request>& requests) {
  const auto start = std::chrono::steady_clock::now();
  for (long polls = 0;; ++polls) {
    bool all_done = true;
    for (MPI_Request& request : requests) {
      if (request == MPI_REQUEST_NULL) continue;
      int done = 0;
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      all_done = all_done && done;
    }
    if (all_done) return {};
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > comm.timeout_seconds) break;
    if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  std::vector<size_t> unfinished;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i] == MPI_REQUEST_NULL) continue;
    unfinished.push_back(i);
    MPI_Cancel(&requests[i]);
    MPI_Request_free(&requests[i]);
  }
  return unfinished;
}

// Every rank sends its call's description to every other and compares: a rank whose call differs,
// or that does not call within the timeout, fails the call on every rank that notices.
ncclResult_t agree_on_call(EmulatedNcclComm& comm, const CallHeader& mine) {
  if (comm.nranks == 1) return ncclSuccess;
  std::vector<CallHeader> calls(size_t(comm.nranks));
  calls[size_t(comm.rank)] = mine;
  std::vector<MPI_Request> receives(size_t(comm.nranks), MPI_REQUEST_NULL), sends(size_t(comm.nranks), MPI_REQUEST_NULL);
  for (int peer = 0; peer < comm.nranks; ++peer) {
    if (peer == comm.rank) continue;
    MPI_Irecv(&calls[size_t(peer)], int(sizeof(CallHeader)), MPI_BYTE, peer, kHeaderTag, comm.mpi, &receives[size_t(peer)]);
    MPI_Isend(&mine, int(sizeof(CallHeader)), MPI_BYTE, peer, kHeaderTag, comm.mpi, &sends[size_t(peer)]);
  }
  const std::vector<size_t> missing = wait_all(comm, receives);
  if (!missing.empty()) {
    for (MPI_Request& send : sends)
      if (send != MPI_REQUEST_NULL) MPI_Request_free(&send);
    std::string ranks;
    for (size_t peer : missing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(peer);
    return fail_comm(comm, ncclRemoteError,
                     engine::detail::concat(prefix(comm), describe(mine), " did not finish within ", comm.timeout_seconds,
                                            " s: rank(s) ", ranks, " never issued it (stopped, stuck, or issuing fewer "
                                            "collectives than this rank); the job cannot go on"));
  }
  wait_all(comm, sends);  // the peers have posted their receives: these complete
  // Every rank sees the same descriptions, so every rank reports the same first difference.
  for (int peer = 1; peer < comm.nranks; ++peer)
    if (!(calls[size_t(peer)] == calls[0]))
      return fail_comm(comm, ncclInvalidUsage,
                       engine::detail::concat(prefix(comm), "ranks issue different collectives: rank ", peer, " issued ",
                                              describe(calls[size_t(peer)]), " where rank 0 issued ", describe(calls[0]),
                                              " (every rank must issue the same collectives in the same order with the "
                                              "same counts and types)"));
  return ncclSuccess;
}

// Checks shared by every collective: a live communicator on the current device, a stream of that
// device, an emulated data type, and buffers inside allocations of that device.
ncclResult_t check_call(EmulatedNcclComm* comm, const char* name, ncclDataType_t datatype, cudaStream_t stream,
                        const void* sendbuff, size_t send_bytes, const void* recvbuff, size_t recv_bytes) {
  if (comm == nullptr) return fail(ncclInvalidArgument, std::string(name) + ": the communicator is null");
  if (comm->async_error != ncclSuccess)
    return fail(ncclInvalidUsage, engine::detail::concat(prefix(*comm), name, ": the communicator failed earlier (",
                                                         comm->async_message, ")"));
  if (element_bytes(datatype) == 0)
    return fail(ncclInvalidArgument, engine::detail::concat(prefix(*comm), name, ": data type ", type_name(datatype),
                                                            " is not emulated (int32, int64, float32, float64, "
                                                            "bfloat16 are)"));
  if (engine::emu::current_device() != comm->device)
    return fail(ncclInvalidUsage, engine::detail::concat(prefix(*comm), name, ": called on device ",
                                                         engine::emu::current_device(), " but the communicator belongs to device ",
                                                         comm->device));
  try {
    engine::emu::check_stream_device(stream, name);
    if (send_bytes) engine::emu::check_device_range(sendbuff, send_bytes, (std::string(name) + " sendbuff").c_str());
    if (recv_bytes) engine::emu::check_device_range(recvbuff, recv_bytes, (std::string(name) + " recvbuff").c_str());
  } catch (const engine::Error& e) {
    return fail(ncclInvalidArgument, prefix(*comm) + e.what());
  }
  return ncclSuccess;
}

// bfloat16 reduces by sum and avg only (what the engine uses); the others are not emulated.
ncclResult_t check_reduction(const EmulatedNcclComm& comm, const char* name, ncclDataType_t datatype, ncclRedOp_t op) {
  if (datatype == ncclBfloat16 && op != ncclSum && op != ncclAvg)
    return fail(ncclInvalidArgument, engine::detail::concat(prefix(comm), name, ": bfloat16 ", op_name(op),
                                                            " is not emulated (sum and avg are)"));
  return ncclSuccess;
}

// Runs the call now, or queues it when inside ncclGroupStart/ncclGroupEnd.
ncclResult_t run_or_queue(std::function<ncclResult_t()> call) {
  if (group_depth > 0) {
    group_calls.push_back(std::move(call));
    return ncclSuccess;
  }
  return call();
}

// One MPI collective started by `start`, waited for within the timeout.
ncclResult_t move_data(EmulatedNcclComm& comm, const CallHeader& call, const std::function<int(MPI_Request*)>& start) {
  std::vector<MPI_Request> request(1, MPI_REQUEST_NULL);
  const int code = start(&request[0]);
  if (code != MPI_SUCCESS)
    return fail_comm(comm, ncclSystemError, prefix(comm) + describe(call) + ": MPI failed: " + mpi_error(code));
  if (!wait_all(comm, request).empty())
    return fail_comm(comm, ncclRemoteError,
                     engine::detail::concat(prefix(comm), describe(call), " did not finish moving its data within ",
                                            comm.timeout_seconds, " s"));
  return ncclSuccess;
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

ncclResult_t check_count(EmulatedNcclComm& comm, const char* name, size_t count) {
  if (count > size_t(INT_MAX))
    return fail(ncclInvalidArgument, engine::detail::concat(prefix(comm), name, ": ", count,
                                                            " elements exceed what the emulator moves in one call"));
  return ncclSuccess;
}

}  // namespace

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
  }
  return "unknown result code";
}

const char* ncclGetLastError(ncclComm_t) { return last_error.c_str(); }

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId: id is null");
  *id = ncclUniqueId{};
  std::memcpy(id->internal, kIdMagic, sizeof kIdMagic);
  std::random_device device;
  const uint64_t words[3] = {(uint64_t(device()) << 32) ^ device(),
                             uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()), uint64_t(getpid())};
  std::memcpy(id->internal + sizeof kIdMagic, words, sizeof words);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (comm == nullptr) return fail(ncclInvalidArgument, "ncclCommInitRank: comm is null");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, engine::detail::concat("ncclCommInitRank: rank ", rank, " is outside ", nranks, " ranks"));
  if (std::memcmp(id.internal, kIdMagic, sizeof kIdMagic) != 0)
    return fail(ncclInvalidArgument, "ncclCommInitRank: the unique id was not made by ncclGetUniqueId (pass rank 0's "
                                     "id to every rank)");
  auto made = std::make_unique<EmulatedNcclComm>();
  made->rank = rank;
  made->nranks = nranks;
  made->device = engine::emu::current_device();
  if (nranks > 1) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
      return fail(ncclInvalidUsage, engine::detail::concat("ncclCommInitRank: the emulated NCCL's ", nranks,
                                                           " ranks are MPI processes, but MPI is not initialised (start "
                                                           "them with mpirun and bootstrap over the MPI communicator)"));
    // The processes with this id form the communicator, ordered by NCCL rank.
    uint64_t hash = 0xcbf29ce484222325ull;
    for (char byte : id.internal) hash = (hash ^ uint8_t(byte)) * 0x100000001b3ull;
    int code = MPI_Comm_split(MPI_COMM_WORLD, int(hash & 0x7fffffff), rank, &made->mpi);
    if (code != MPI_SUCCESS) return fail(ncclSystemError, "ncclCommInitRank: MPI_Comm_split failed: " + mpi_error(code));
    int size = 0;
    MPI_Comm_size(made->mpi, &size);
    std::vector<ncclUniqueId> ids(static_cast<size_t>(size));
    std::vector<int> ranks(static_cast<size_t>(size));
    MPI_Allgather(&id, sizeof id, MPI_BYTE, ids.data(), sizeof id, MPI_BYTE, made->mpi);
    MPI_Allgather(&rank, 1, MPI_INT, ranks.data(), 1, MPI_INT, made->mpi);
    std::string problem;
    if (size != nranks) problem = engine::detail::concat(size, " processes joined with this unique id, not ", nranks);
    for (int r = 0; r < size && problem.empty(); ++r) {
      if (ranks[size_t(r)] != r) problem = engine::detail::concat("two processes claim rank ", ranks[size_t(r)]);
      if (std::memcmp(&ids[size_t(r)], &id, sizeof id) != 0) problem = "the processes hold different unique ids";
    }
    if (!problem.empty()) {
      MPI_Comm_free(&made->mpi);
      return fail(ncclInvalidUsage, engine::detail::concat("ncclCommInitRank (rank ", rank, " of ", nranks, "): ", problem));
    }
  }
  *comm = made.release();
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (comm->mpi != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm->mpi);
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (comm == nullptr || async_error == nullptr) return fail(ncclInvalidArgument, "ncclCommGetAsyncError: null argument");
  *async_error = comm->async_error;
  if (comm->async_error != ncclSuccess) last_error = comm->async_message;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) return fail(ncclInvalidArgument, "ncclCommCount: null argument");
  *count = comm->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) return fail(ncclInvalidArgument, "ncclCommUserRank: null argument");
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclEmuSetTimeout(ncclComm_t comm, double seconds) {
  if (comm == nullptr || !(seconds > 0)) return fail(ncclInvalidArgument, "ncclEmuSetTimeout: null comm or timeout <= 0");
  comm->timeout_seconds = seconds;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = count * element_bytes(datatype);
  if (ncclResult_t r = check_call(comm, "ncclAllReduce", datatype, stream, sendbuff, bytes, recvbuff, bytes)) return r;
  if (ncclResult_t r = check_count(*comm, "ncclAllReduce", count)) return r;
  if (ncclResult_t r = check_reduction(*comm, "ncclAllReduce", datatype, op)) return r;
  const CallHeader call{comm->calls++, int32_t(Collective::all_reduce), datatype, op, -1, count};
  return run_or_queue([=] {
    if (ncclResult_t r = agree_on_call(*comm, call)) return r;
    const bool premultiply = datatype == ncclBfloat16 && op == ncclAvg;
    if (premultiply) {  // in place, on this rank's copy of its input
      if (sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, bytes);
      premultiply_bf16(recvbuff, count, comm->nranks);
    }
    if (comm->nranks > 1) {
      const void* source = sendbuff == recvbuff || premultiply ? MPI_IN_PLACE : sendbuff;
      if (ncclResult_t r = move_data(*comm, call, [&](MPI_Request* request) {
            return MPI_Iallreduce(source, recvbuff, int(count), mpi_type(datatype), mpi_op(op, datatype), comm->mpi,
                                  request);
          }))
        return r;
    } else if (sendbuff != recvbuff && !premultiply) {
      std::memmove(recvbuff, sendbuff, bytes);
    }
    if (op == ncclAvg) finish_average(recvbuff, count, datatype, comm->nranks);
    return ncclSuccess;
  });
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = count * element_bytes(datatype);
  const bool is_root = comm != nullptr && comm->rank == root;
  if (ncclResult_t r = check_call(comm, "ncclBroadcast", datatype, stream, sendbuff, is_root ? bytes : 0, recvbuff, bytes))
    return r;
  if (ncclResult_t r = check_count(*comm, "ncclBroadcast", count)) return r;
  if (root < 0 || root >= comm->nranks)
    return fail(ncclInvalidArgument, engine::detail::concat(prefix(*comm), "ncclBroadcast: root ", root, " is outside ",
                                                            comm->nranks, " ranks"));
  const CallHeader call{comm->calls++, int32_t(Collective::broadcast), datatype, -1, root, count};
  return run_or_queue([=] {
    if (ncclResult_t r = agree_on_call(*comm, call)) return r;
    if (is_root && sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, bytes);
    if (comm->nranks == 1) return ncclSuccess;
    return move_data(*comm, call, [&](MPI_Request* request) {
      return MPI_Ibcast(recvbuff, int(count), mpi_type(datatype), root, comm->mpi, request);
    });
  });
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = sendcount * element_bytes(datatype);
  const size_t ranks = comm ? size_t(comm->nranks) : 1;
  if (ncclResult_t r = check_call(comm, "ncclAllGather", datatype, stream, sendbuff, bytes, recvbuff, bytes * ranks))
    return r;
  if (ncclResult_t r = check_count(*comm, "ncclAllGather", sendcount)) return r;
  const CallHeader call{comm->calls++, int32_t(Collective::all_gather), datatype, -1, -1, sendcount};
  return run_or_queue([=] {
    if (ncclResult_t r = agree_on_call(*comm, call)) return r;
    // The input may be this rank's slot of the output (NCCL's in-place form) or overlap it otherwise.
    std::vector<unsigned char> input(static_cast<const unsigned char*>(sendbuff),
                                     static_cast<const unsigned char*>(sendbuff) + bytes);
    if (comm->nranks == 1) {
      std::memcpy(recvbuff, input.data(), bytes);
      return ncclSuccess;
    }
    return move_data(*comm, call, [&](MPI_Request* request) {
      return MPI_Iallgather(input.data(), int(sendcount), mpi_type(datatype), recvbuff, int(sendcount),
                            mpi_type(datatype), comm->mpi, request);
    });
  });
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = recvcount * element_bytes(datatype);
  const size_t ranks = comm ? size_t(comm->nranks) : 1;
  if (ncclResult_t r = check_call(comm, "ncclReduceScatter", datatype, stream, sendbuff, bytes * ranks, recvbuff, bytes))
    return r;
  if (ncclResult_t r = check_count(*comm, "ncclReduceScatter", recvcount * ranks)) return r;
  if (ncclResult_t r = check_reduction(*comm, "ncclReduceScatter", datatype, op)) return r;
  const CallHeader call{comm->calls++, int32_t(Collective::reduce_scatter), datatype, op, -1, recvcount};
  return run_or_queue([=] {
    if (ncclResult_t r = agree_on_call(*comm, call)) return r;
    std::vector<unsigned char> input;
    const void* source = sendbuff;
    const bool premultiply = datatype == ncclBfloat16 && op == ncclAvg;
    if (premultiply || overlaps(sendbuff, bytes * ranks, recvbuff, bytes)) {
      input.assign(static_cast<const unsigned char*>(sendbuff), static_cast<const unsigned char*>(sendbuff) + bytes * ranks);
      source = input.data();
      if (premultiply) premultiply_bf16(input.data(), recvcount * ranks, comm->nranks);
    }
    if (comm->nranks > 1) {
      if (ncclResult_t r = move_data(*comm, call, [&](MPI_Request* request) {
            return MPI_Ireduce_scatter_block(source, recvbuff, int(recvcount), mpi_type(datatype), mpi_op(op, datatype),
                                             comm->mpi, request);
          }))
        return r;
    } else {
      std::memmove(recvbuff, source, bytes);
    }
    if (op == ncclAvg) finish_average(recvbuff, recvcount, datatype, comm->nranks);
    return ncclSuccess;
  });
}

ncclResult_t ncclGroupStart() {
  ++group_depth;
  return ncclSuccess;
}

// Runs the queued calls in order; the first failure ends the group (the rest are dropped).
ncclResult_t ncclGroupEnd() {
  if (group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--group_depth > 0) return ncclSuccess;
  std::vector<std::function<ncclResult_t()>> calls = std::move(group_calls);
  group_calls.clear();
  for (const auto& call : calls)
    if (ncclResult_t r = call()) return r;
  return ncclSuccess;
}
