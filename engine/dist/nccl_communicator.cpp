// Legend: N elements of one rank's tensor, W world size.
#include "engine/dist/nccl_communicator.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"
#include "engine/cuda/device_guard.h"
#include "engine/cuda/nccl_check.h"
#include "engine/cuda/stream.h"
#include "engine/dist/device_select.h"
#include "engine/dist/nccl_watchdog.h"
#include "engine/error.h"

namespace engine::dist {

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  std::unique_ptr<cuda::Stream> communication;  // made by the first all_reduce_async
  std::unique_ptr<NcclWatchdog> watchdog;       // real NCCL only
  uint64_t collectives = 0;                     // issued so far (numbers them in the watchdog's messages)

  // Hands the collective just queued on `stream` to the watchdog, numbered and described.
  void watch(cudaStream_t stream, const char* op, const Tensor& tensor) {
    const uint64_t number = collectives++;
    if (watchdog)
      watchdog->watch(stream, engine::detail::concat("collective #", number, " (", op, " of ", tensor.numel(), " ",
                                                     dtype_name(tensor.dtype()), ")"));
  }
};

namespace {

constexpr double kDefaultTimeoutSeconds = 600;

ncclDataType_t nccl_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32: return ncclFloat32;
    case Dtype::f64: return ncclFloat64;
    case Dtype::i32: return ncclInt32;
    case Dtype::i64: return ncclInt64;
    case Dtype::bf16: return ncclBfloat16;  // gradients all-reduced in bf16 (DataParallelOptions::reduce_dtype)
  }
  throw Error(engine::detail::concat("NCCL: unsupported dtype ", dtype_name(dtype)));
}

ncclRedOp_t nccl_op(const char* op, const Tensor& tensor, ReduceOp reduce) {
  if (reduce == ReduceOp::sum) return ncclSum;
  ENGINE_CHECK(is_floating(tensor.dtype()), "NCCL ", op, ": average needs a floating tensor, got ", tensor.describe());
  return ncclAvg;
}

// options.timeout_seconds, else ENGINE_NCCL_TIMEOUT_S, else the default.
double timeout_from(const NcclOptions& options) {
  if (options.timeout_seconds > 0) return options.timeout_seconds;
  const char* text = std::getenv("ENGINE_NCCL_TIMEOUT_S");
  if (text == nullptr || *text == '\0') return kDefaultTimeoutSeconds;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  ENGINE_CHECK(end != text && *end == '\0' && seconds > 0, "ENGINE_NCCL_TIMEOUT_S='", text,
               "' is not a positive number of seconds");
  return seconds;
}

// An all-reduce queued on the communication stream; `done` marks its end there. Holding the tensor
// keeps its memory from returning to the allocator before the stream has used it.
class PendingNcclAllReduce final : public PendingCollective {
 public:
  PendingNcclAllReduce(Tensor tensor, std::unique_ptr<cuda::Event> done)
      : tensor_(std::move(tensor)), done_(std::move(done)) {}
  void wait() override {
    const cuda::DeviceGuard guard(tensor_.device());
    CUDA_CHECK(cudaStreamWaitEvent(cuda::current_stream(), done_->get(), 0));
  }
  bool test() override { return done_->ready(); }

 private:
  Tensor tensor_;
  std::unique_ptr<cuda::Event> done_;
};

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, NcclOptions options)
    : state_(std::make_unique<State>()),
      rank_(bootstrap.rank()),
      world_size_(bootstrap.world_size()),
      local_rank_(bootstrap.local_rank()),
      timeout_seconds_(timeout_from(options)) {
  device_ = options.device >= 0 ? options.device : select_cuda_device(bootstrap);
  const cuda::DeviceGuard guard(device());
  // The 128-byte unique id travels as i32 words over the bootstrap communicator.
  ncclUniqueId id;
  static_assert(sizeof(id) % sizeof(int32_t) == 0);
  Tensor words = Tensor::zeros({int64_t(sizeof(id) / sizeof(int32_t))}, Dtype::i32);
  if (rank_ == 0) {
    NCCL_CHECK(ncclGetUniqueId(&id));
    std::memcpy(words.raw_data(), &id, sizeof(id));
  }
  bootstrap.broadcast(words, 0);
  std::memcpy(&id, words.raw_data(), sizeof(id));
  NCCL_CHECK(ncclCommInitRank(&state_->comm, world_size_, id, rank_));
#if defined(ENGINE_CUDA_EMU)
  NCCL_CHECK(ncclEmuSetTimeout(state_->comm, timeout_seconds_));
#else
  state_->watchdog = std::make_unique<NcclWatchdog>(state_->comm, rank_, world_size_, device_, timeout_seconds_);
#endif
}

NcclCommunicator::~NcclCommunicator() {
  state_->watchdog.reset();  // stop watching before the communicator goes
  if (state_->comm) ncclCommDestroy(state_->comm);
}

void NcclCommunicator::check_tensor(const char* op, const Tensor& tensor) const {
  detail::check_collective_tensor("NCCL", op, tensor);
  ENGINE_CHECK(tensor.device().is_cuda(), "NCCL ", op, ": the NCCL backend takes CUDA tensors, got ",
               tensor.describe(), " (use the MPI communicator for CPU tensors)");
  ENGINE_CHECK(tensor.device() == device(), "NCCL ", op, ": tensor ", tensor.describe(), " is on ", tensor.device().str(),
               " but rank ", rank_, "'s communicator runs on ", device().str(),
               " (make the model's tensors on Device::cuda(), this rank's GPU)");
}

void NcclCommunicator::all_reduce(Tensor& tensor, ReduceOp op) {
  check_tensor("all_reduce", tensor);
  const cuda::DeviceGuard guard(device());
  NCCL_CHECK(ncclAllReduce(tensor.raw_data(), tensor.raw_data(), size_t(tensor.numel()), nccl_type(tensor.dtype()),
                           nccl_op("all_reduce", tensor, op), state_->comm, cuda::current_stream()));
  state_->watch(cuda::current_stream(), "all_reduce", tensor);
}

std::unique_ptr<PendingCollective> NcclCommunicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  check_tensor("all_reduce_async", tensor);
  const cuda::DeviceGuard guard(device());
  if (!state_->communication) state_->communication = std::make_unique<cuda::Stream>();
  const cuda::Stream& stream = *state_->communication;
  // The communication stream starts once the current stream has produced the tensor.
  cuda::Event produced;
  produced.record(cuda::current_stream());
  stream.wait(produced);
  NCCL_CHECK(ncclAllReduce(tensor.raw_data(), tensor.raw_data(), size_t(tensor.numel()), nccl_type(tensor.dtype()),
                           nccl_op("all_reduce_async", tensor, op), state_->comm, stream.get()));
  state_->watch(stream.get(), "all_reduce_async", tensor);
  auto done = std::make_unique<cuda::Event>();
  done->record(stream.get());
  return std::make_unique<PendingNcclAllReduce>(tensor, std::move(done));
}

void NcclCommunicator::broadcast(Tensor& tensor, int root) {
  check_tensor("broadcast", tensor);
  ENGINE_CHECK(root >= 0 && root < world_size_, "NCCL broadcast: root ", root, " is outside world size ", world_size_);
  const cuda::DeviceGuard guard(device());
  NCCL_CHECK(ncclBroadcast(tensor.raw_data(), tensor.raw_data(), size_t(tensor.numel()), nccl_type(tensor.dtype()),
                           root, state_->comm, cuda::current_stream()));
  state_->watch(cuda::current_stream(), "broadcast", tensor);
}

void NcclCommunicator::all_gather(const Tensor& input, Tensor& output) {
  check_tensor("all_gather", input);
  check_tensor("all_gather", output);
  detail::check_gather_sizes(name(), "all_gather", input, output, world_size_);
  const cuda::DeviceGuard guard(device());
  NCCL_CHECK(ncclAllGather(input.raw_data(), output.raw_data(), size_t(input.numel()), nccl_type(input.dtype()),
                           state_->comm, cuda::current_stream()));
  state_->watch(cuda::current_stream(), "all_gather", input);
}

void NcclCommunicator::reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  check_tensor("reduce_scatter", input);
  check_tensor("reduce_scatter", output);
  detail::check_gather_sizes(name(), "reduce_scatter", output, input, world_size_);
  const cuda::DeviceGuard guard(device());
  NCCL_CHECK(ncclReduceScatter(input.raw_data(), output.raw_data(), size_t(output.numel()), nccl_type(input.dtype()),
                               nccl_op("reduce_scatter", input, op), state_->comm, cuda::current_stream()));
  state_->watch(cuda::current_stream(), "reduce_scatter", output);
}

// NCCL has no barrier: an all-reduce of one element, waited for on the host.
void NcclCommunicator::barrier() {
  const cuda::DeviceGuard guard(device());
  Tensor one = Tensor::ones({1}, Dtype::f32, device());
  all_reduce(one, ReduceOp::sum);
  CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
}

}  // namespace engine::dist
