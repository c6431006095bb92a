// The choice of each rank's GPU at startup and the check that no two ranks share one
// (engine/dist/device_select.h).
#include "engine/dist/device_select.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace engine::dist {

namespace {

constexpr int kUuidWords = 4;  // 16 bytes as i32 words, to travel over the CPU communicator

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi names a GPU.
std::string uuid_string(const unsigned char* bytes) {
  std::string text = "GPU-";
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    std::snprintf(hex, sizeof hex, "%02x", bytes[i]);
    text += hex;
  }
  return text;
}

}  // namespace

int choose_local_device(int local_rank, int visible_devices) {
  ENGINE_CHECK(visible_devices >= 1, "no CUDA device is visible to this rank (local rank ", local_rank,
               "): check CUDA_VISIBLE_DEVICES and the launcher's GPU options (srun --gpus-per-task)");
  if (visible_devices == 1) return 0;
  ENGINE_CHECK(local_rank < visible_devices, "local rank ", local_rank, " has no GPU of its own: this node shows ",
               visible_devices, " GPUs to each rank but runs at least ", local_rank + 1,
               " ranks; start at most one rank per GPU (mpirun -np / srun --ntasks-per-node)");
  return local_rank;
}

std::string cuda_device_description(int device) {
  cudaDeviceProp properties;
  CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  return std::string(properties.name) + " " +
         uuid_string(reinterpret_cast<const unsigned char*>(properties.uuid.bytes));
}

int select_cuda_device(Communicator& comm) {
  int visible = 0;
  CUDA_CHECK(cudaGetDeviceCount(&visible));
  const int device = choose_local_device(comm.local_rank(), visible);
  CUDA_CHECK(cudaSetDevice(device));
  set_default_cuda_device(device);

  cudaDeviceProp properties;
  CUDA_CHECK(cudaGetDeviceProperties(&properties, device));
  Tensor mine = Tensor::zeros({kUuidWords}, Dtype::i32);
  std::memcpy(mine.raw_data(), properties.uuid.bytes, sizeof properties.uuid.bytes);
  Tensor all = Tensor::zeros({kUuidWords * comm.world_size()}, Dtype::i32);
  comm.all_gather(mine, all);
  const auto* uuids = static_cast<const unsigned char*>(all.raw_data());
  const size_t uuid_bytes = kUuidWords * sizeof(int32_t);
  for (int a = 0; a < comm.world_size(); ++a)
    for (int b = a + 1; b < comm.world_size(); ++b)
      ENGINE_CHECK(std::memcmp(uuids + size_t(a) * uuid_bytes, uuids + size_t(b) * uuid_bytes, uuid_bytes) != 0,
                   "ranks ", a, " and ", b, " would share GPU ", uuid_string(uuids + size_t(a) * uuid_bytes),
                   " (each of this node's ranks sees ", visible, " GPU(s)): NCCL needs one GPU per rank. Give each "
                   "rank its own GPU (CUDA_VISIBLE_DEVICES, srun --gpus-per-task=1) or start fewer ranks per node");
  std::fprintf(stderr, "rank %d of %d (local rank %d): cuda:%d = %s\n", comm.rank(), comm.world_size(), comm.local_rank(),
               device, cuda_device_description(device).c_str());
  return device;
}

}  // namespace engine::dist
