// The kernel emulator's execution model: runs a CUDA grid on the host thread that launched it.
//
// Blocks run one after another. Inside a block every CUDA thread is a cooperative user-space fiber
// with its own stack (created with makecontext, switched with _setjmp/_longjmp). A thread runs until
// it reaches a synchronisation point (__syncthreads, __syncwarp, a shuffle or vote) and then yields
// to the block's scheduler, which resumes it once every thread the point waits for has arrived.
// The order of the blocks, and of the threads between two synchronisation points, is shuffled per
// launch with a generator seeded from ENGINE_EMU_SEED (default 1, printed at the first launch; 0
// keeps the natural order) and the launch number, so a kernel that relies on an order the hardware
// does not promise (a missing __syncthreads) reads another thread's unwritten, poisoned shared
// memory. A run is reproducible: the same seed gives the same orders. Errors name seed and launch.
//
//   - __syncthreads releases when all threads of the block wait at the same call site;
//   - a warp collective releases when every lane of its mask (warp = 32 consecutive threads in
//     linear thread order) waits in the same collective with the same mask, and then exchanges the
//     lanes' values exactly as the hardware does.
// Anything the hardware leaves undefined is reported as engine::Error naming the kernel, block and
// threads: a thread that exits while others wait at a barrier, barriers at different call sites,
// a mask naming an exited, absent or differently-synchronising lane, a shuffle reading a lane
// outside the mask, an invalid launch shape, too much shared memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>

// CUDA's 3-component size type (global, as in CUDA).
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

namespace engine::emu::detail {

// The warp-level operations a thread can wait in.
enum class Collective : uint8_t { syncwarp, shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all };

// What one emulated CUDA thread is doing, as seen by the scheduler.
enum class ThreadWait : uint8_t { running, block_barrier, warp, done };

struct EmulatedThread {
  dim3 thread_idx;
  unsigned linear = 0;  // x + y * blockDim.x + z * blockDim.x * blockDim.y
  ThreadWait wait = ThreadWait::running;
  std::source_location barrier_site;  // where it waits in __syncthreads
  // The warp collective it waits in, its operand, and the result the scheduler computed.
  Collective op = Collective::syncwarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int param = 0;  // source lane, delta or lane mask
  int width = 32;
  uint64_t result = 0;
};

// The launch and block a CUDA thread belongs to.
struct EmulatedBlock {
  const char* kernel = "";
  dim3 grid, block, block_idx;
  size_t dynamic_shared_bytes = 0;
};

// The thread whose fiber is running, and its block (set by the scheduler before each resume).
extern thread_local EmulatedThread* current_thread;
extern thread_local EmulatedBlock* current_block;

// Runs `thread_body` once per thread of the grid; throws engine::Error for invalid shapes, for any
// synchronisation the hardware would not complete, and rethrows an exception thrown by a thread.
void run_grid(const char* kernel, const void* kernel_address, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              const std::function<void()>& thread_body);

// The seed of the block and thread order shuffle (0: natural order), and a way for tests to change
// it (the environment's ENGINE_EMU_SEED is read once, at the first launch).
uint64_t shuffle_seed();
void set_shuffle_seed(uint64_t seed);

// Blocks the calling CUDA thread at __syncthreads.
void sync_block(std::source_location site);
// Blocks the calling CUDA thread in a warp collective; returns its result bits.
uint64_t warp_collective(Collective op, unsigned mask, uint64_t value, int param, int width);

// The per-block storage of one static shared array, identified by its declaration site.
void* shared_array(const void* site, size_t bytes, size_t alignment);
// The block's dynamic shared memory (the launch's `smem` bytes).
void* dynamic_shared();
// Raises the dynamic shared memory a kernel may ask for (cudaFuncSetAttribute).
void set_max_dynamic_shared(const void* kernel_address, size_t bytes);

}  // namespace engine::emu::detail
