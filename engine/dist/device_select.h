// Which GPU each rank of a job uses, chosen once at startup (before any CUDA tensor is made):
//
//   - one GPU visible to the process: device 0 (the launcher gave each rank its own GPU, e.g.
//     CUDA_VISIBLE_DEVICES per rank or `srun --gpus-per-task=1`);
//   - several visible: device `local rank` (the rank among the processes of its node, from
//     MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), else the launcher's variables), refused when the
//     node has more ranks than GPUs;
//   - then every rank compares its GPU's UUID with the others' and the job stops with an error
//     naming both ranks when two would share a GPU (NCCL cannot run two ranks on one GPU, and one
//     rank per GPU is what the throughput figures assume).
//
// The chosen device becomes the calling thread's current device and what Device::cuda() names
// (engine/device.h), so `--device cuda` means "this rank's GPU" on every rank.
// Built with the CUDA backend (engine_dist_nccl) and with the emulator (engine_dist_nccl_emu, where
// ENGINE_EMU_DEVICES sets how many GPUs a node has).
#pragma once

#include <string>

#include "engine/dist/communicator.h"

namespace engine::dist {

// The device index a rank with `local_rank` uses when `visible_devices` GPUs are visible to it;
// throws engine::Error naming the counts when there is none to give it.
int choose_local_device(int local_rank, int visible_devices);

// Chooses this rank's GPU as above over the CPU communicator `comm` (a collective: every rank
// calls it), makes it current and the default, prints one line on stderr saying which GPU the rank
// uses ("rank 1 of 2 (local rank 1): cuda:1 = NVIDIA H100 80GB HBM3 GPU-1f3a...") and returns it.
int select_cuda_device(Communicator& comm);

// "NVIDIA H100 80GB HBM3 GPU-1f3a0c2e-...": the device's name and UUID, as nvidia-smi -L prints them.
std::string cuda_device_description(int device);

}  // namespace engine::dist
