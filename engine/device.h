// Where a tensor's memory lives. CPU memory is host memory; CUDA memory belongs to one GPU (or, in
// test builds, to the kernel emulator, which stands in for GPUs with tracked host memory).
//
// Device::cuda() without an index is this process's GPU: the one chosen for its rank at startup
// (engine/dist/device_select.h calls set_default_cuda_device), 0 in a process that never chose.
// So code written for one GPU (`--device cuda`, `Device::cuda()`) runs on each rank's own GPU in a
// multi-GPU job instead of every rank landing on GPU 0.
#pragma once

#include <string>

namespace engine {

enum class DeviceType { cpu, cuda };

// The CUDA device index Device::cuda() names (0 until set).
int default_cuda_device();
void set_default_cuda_device(int index);

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda() { return {DeviceType::cuda, default_cuda_device()}; }
  static Device cuda(int index) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& other) const { return type == other.type && index == other.index; }
  bool operator!=(const Device& other) const { return !(*this == other); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

}  // namespace engine
