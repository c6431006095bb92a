// Fiber switches use _setjmp/_longjmp between stacks; the fortified longjmp refuses that.
#undef _FORTIFY_SOURCE

#include "engine/emu/scheduler.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <deque>
#include <vector>

#include "engine/error.h"

namespace engine::emu::detail {

thread_local EmulatedThread* current_thread = nullptr;
thread_local EmulatedBlock* current_block = nullptr;

namespace {

// Hardware limits of sm_80, the smallest architecture we build for (sm_90 allows more shared memory).
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535, 65535};
constexpr size_t kStaticSharedLimit = 48 * 1024;
constexpr size_t kDefaultDynamicSharedLimit = 48 * 1024;
constexpr size_t kSharedPerBlockOptIn = 163 * 1024;
constexpr unsigned kWarpSize = 32;

// Fiber stacks: kernels are shallow, but unoptimised and sanitizer builds use more stack per frame.
// A guard page below each stack turns an overflow into a crash instead of silent corruption.
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kGuardBytes = 4096;

// A fiber is created once (makecontext, entered with setcontext) and then runs fiber_main's loop:
// park, run one CUDA thread when resumed, park again. Switches are _setjmp/_longjmp, which unlike
// swapcontext make no system call, so one costs nanoseconds instead of microseconds. A fiber left
// inside a kernel by a failed launch is not parked and is rebuilt before its next use.
struct Fiber {
  ucontext_t context;
  jmp_buf resume;           // where the fiber continues when the scheduler switches to it
  char* mapping = nullptr;  // guard page + stack
  bool parked = false;      // waiting in fiber_main for a thread to run
};

// The fibers of this host thread, reused by every block and launch it runs. A deque, because a
// parked fiber's stack holds a reference to its Fiber (and getcontext pointers into it): growing the
// pool for a wider block must not move the fibers already made.
struct FiberPool {
  std::deque<Fiber> fibers;
  ~FiberPool() {
    for (Fiber& fiber : fibers) munmap(fiber.mapping, kStackBytes + kGuardBytes);
  }
  void reserve(size_t count) {
    while (fibers.size() < count) {
      void* mapping = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      ENGINE_CHECK(mapping != MAP_FAILED, "kernel emulator: could not map a fiber stack");
      mprotect(mapping, kGuardBytes, PROT_NONE);
      fibers.emplace_back();
      fibers.back().mapping = static_cast<char*>(mapping);
    }
  }
};

thread_local FiberPool fiber_pool;
thread_local jmp_buf scheduler_resume;  // where the scheduler continues when a fiber yields
thread_local Fiber* starting_fiber = nullptr;

// Static shared arrays of the running block, keyed by declaration site.
struct SharedSite {
  const void* site;
  size_t offset;
  size_t bytes;
};

// The order shuffle: ENGINE_EMU_SEED (default 1; 0 keeps the natural order), read once. Each launch
// draws its own generator from the seed and its launch number, so a run is reproducible.
uint64_t read_shuffle_seed() {
  const char* text = std::getenv("ENGINE_EMU_SEED");
  if (text == nullptr || *text == '\0') return 1;
  char* end = nullptr;
  const unsigned long long seed = std::strtoull(text, &end, 10);
  ENGINE_CHECK(end != text && *end == '\0', "kernel emulator: ENGINE_EMU_SEED='", text,
               "' is not a non-negative integer (0 runs blocks and threads in order)");
  return seed;
}

// The seed in force: ENGINE_EMU_SEED until set_shuffle_seed; announced once on stderr, so that a
// failing test's output says how to reproduce its orders.
std::atomic<uint64_t>& seed_in_force() {
  static std::atomic<uint64_t> seed{read_shuffle_seed()};
  return seed;
}

uint64_t announced_seed() {
  static std::once_flag announced;
  const uint64_t seed = seed_in_force().load();
  std::call_once(announced, [seed] {
    if (seed != 0)
      std::fprintf(stderr, "kernel emulator: blocks and threads run in an order shuffled per launch, "
                           "ENGINE_EMU_SEED=%llu (0 runs them in order)\n", static_cast<unsigned long long>(seed));
  });
  return seed;
}

std::atomic<uint64_t> launch_counter{0};

// Everything the scheduler knows about the block it is running.
struct BlockRun {
  EmulatedBlock block;
  std::vector<EmulatedThread> threads;
  const std::function<void()>* body = nullptr;
  std::exception_ptr thread_error;
  std::vector<SharedSite> shared_sites;
  size_t static_shared_used = 0;
  std::unique_ptr<unsigned char[]> static_shared;
  std::unique_ptr<unsigned char[]> dynamic_shared;
  bool shuffle = false;
  std::mt19937_64 order_rng;     // draws the block order and each round's thread order
  std::vector<unsigned> order;   // the order threads are resumed in this round (linear indices)
};

thread_local BlockRun* current_run = nullptr;

std::mutex attribute_mutex;
std::map<const void*, size_t> max_dynamic_shared;  // kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize

std::string dims(dim3 d) { return engine::detail::concat("(", d.x, ", ", d.y, ", ", d.z, ")"); }

std::string site_str(const std::source_location& site) {
  return engine::detail::concat(site.file_name(), ":", site.line());
}

const char* collective_name(Collective op) {
  switch (op) {
    case Collective::syncwarp: return "__syncwarp";
    case Collective::shfl_idx: return "__shfl_sync";
    case Collective::shfl_up: return "__shfl_up_sync";
    case Collective::shfl_down: return "__shfl_down_sync";
    case Collective::shfl_xor: return "__shfl_xor_sync";
    case Collective::ballot: return "__ballot_sync";
    case Collective::any: return "__any_sync";
    case Collective::all: return "__all_sync";
  }
  return "?";
}

[[noreturn]] void fail(const BlockRun& run, const std::string& what) {
  throw engine::Error(engine::detail::concat("kernel ", run.block.kernel, " block ", dims(run.block.block_idx), ": ",
                                             what));
}

std::string thread_str(const EmulatedThread& t) {
  return engine::detail::concat("thread ", dims(t.thread_idx), " (warp ", t.linear / kWarpSize, " lane ",
                                t.linear % kWarpSize, ")");
}

std::string hex(unsigned mask) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%08x", mask);
  return buffer;
}

// Hands control from the running fiber back to the scheduler until it is resumed.
void yield_to_scheduler(Fiber& self) {
  if (_setjmp(self.resume) == 0) _longjmp(scheduler_resume, 1);
}

// Runs fiber `f` until it yields or finishes its thread.
void switch_to(Fiber& f) {
  if (_setjmp(scheduler_resume) == 0) _longjmp(f.resume, 1);
}

[[noreturn]] void fiber_main() {
  Fiber& self = *starting_fiber;
  while (true) {
    self.parked = true;
    yield_to_scheduler(self);
    self.parked = false;
    BlockRun* run = current_run;
    try {
      (*run->body)();
    } catch (...) {
      if (!run->thread_error) run->thread_error = std::current_exception();
    }
    current_thread->wait = ThreadWait::done;
  }
}

// (Re)creates a fiber's context and runs it up to its first park.
void start_fiber(Fiber& f) {
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.mapping + kGuardBytes;
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = nullptr;
  makecontext(&f.context, fiber_main, 0);
  starting_fiber = &f;
  if (_setjmp(scheduler_resume) == 0) setcontext(&f.context);
}

void check_launch_shape(const char* kernel, const void* kernel_address, dim3 grid, dim3 block, size_t dynamic_bytes) {
  auto invalid = [&](const std::string& why) {
    throw engine::Error(engine::detail::concat("kernel ", kernel, ": invalid launch with grid ", dims(grid), " and block ",
                                               dims(block), ": ", why));
  };
  const unsigned grid_dims[3] = {grid.x, grid.y, grid.z}, block_dims[3] = {block.x, block.y, block.z};
  for (int d = 0; d < 3; ++d) {
    if (grid_dims[d] == 0 || block_dims[d] == 0) invalid("a dimension is zero");
    if (block_dims[d] > kMaxBlockDim[d])
      invalid(engine::detail::concat("block dimension ", "xyz"[d], " is ", block_dims[d], ", the limit is ", kMaxBlockDim[d]));
    if (grid_dims[d] > kMaxGridDim[d])
      invalid(engine::detail::concat("grid dimension ", "xyz"[d], " is ", grid_dims[d], ", the limit is ", kMaxGridDim[d]));
  }
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads > kMaxThreadsPerBlock)
    invalid(engine::detail::concat("a block has ", threads, " threads, the limit is ", kMaxThreadsPerBlock));
  size_t dynamic_limit = kDefaultDynamicSharedLimit;
  {
    std::lock_guard<std::mutex> lock(attribute_mutex);
    auto it = max_dynamic_shared.find(kernel_address);
    if (it != max_dynamic_shared.end()) dynamic_limit = it->second;
  }
  if (dynamic_bytes > dynamic_limit)
    invalid(engine::detail::concat(dynamic_bytes, " bytes of dynamic shared memory, the limit is ", dynamic_limit,
                                   " (raise it with cudaFuncSetAttribute(kernel, "
                                   "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes))"));
}

// Computes the results of a complete warp collective over the lanes of `mask` (warp starts at `base`).
void complete_collective(BlockRun& run, size_t base, unsigned mask) {
  std::vector<EmulatedThread>& threads = run.threads;
  const EmulatedThread& first = threads[base + unsigned(__builtin_ctz(mask))];
  unsigned votes = 0;
  for (unsigned lane = 0; lane < kWarpSize; ++lane)
    if ((mask >> lane & 1) && threads[base + lane].value != 0) votes |= 1u << lane;
  for (unsigned lane = 0; lane < kWarpSize; ++lane) {
    if (!(mask >> lane & 1)) continue;
    EmulatedThread& t = threads[base + lane];
    const unsigned width = unsigned(t.width);
    if (first.op >= Collective::shfl_idx && first.op <= Collective::shfl_xor &&
        (width == 0 || width > kWarpSize || (width & (width - 1)) != 0))
      fail(run, engine::detail::concat(thread_str(t), ": ", collective_name(t.op), " width ", t.width,
                                       " is not a power of two in [1, 32]"));
    const unsigned segment = lane & ~(width - 1);  // first lane of this lane's width-sized group
    unsigned source = lane;
    switch (t.op) {
      case Collective::syncwarp: t.result = 0; continue;
      case Collective::ballot: t.result = votes; continue;
      case Collective::any: t.result = votes != 0; continue;
      case Collective::all: t.result = votes == mask; continue;
      case Collective::shfl_idx: source = segment + (unsigned(t.param) & (width - 1)); break;
      case Collective::shfl_up:
        if (lane - segment >= unsigned(t.param)) source = lane - unsigned(t.param);
        break;
      case Collective::shfl_down:
        if (lane - segment + unsigned(t.param) < width) source = lane + unsigned(t.param);
        break;
      case Collective::shfl_xor: {
        const unsigned target = (lane ^ unsigned(t.param)) & (kWarpSize - 1);
        if ((target & ~(width - 1)) <= segment) source = target;  // later groups read their own value
        break;
      }
    }
    if (!(mask >> source & 1))
      fail(run, engine::detail::concat(thread_str(t), ": ", collective_name(t.op), " reads lane ", source,
                                       ", which is not in the mask ", hex(mask), " (its value is undefined)"));
    t.result = threads[base + source].value;
  }
  for (unsigned lane = 0; lane < kWarpSize; ++lane)
    if (mask >> lane & 1) threads[base + lane].wait = ThreadWait::running;
}

// Releases every warp collective whose lanes have all arrived; reports ones that never can.
bool release_warps(BlockRun& run) {
  std::vector<EmulatedThread>& threads = run.threads;
  bool released = false;
  for (size_t base = 0; base < threads.size(); base += kWarpSize) {
    const unsigned lanes = unsigned(std::min<size_t>(kWarpSize, threads.size() - base));
    for (unsigned lane = 0; lane < lanes; ++lane) {
      const EmulatedThread& t = threads[base + lane];
      if (t.wait != ThreadWait::warp) continue;
      const unsigned mask = t.mask;
      const std::string who = thread_str(t) + " in " + collective_name(t.op) + " with mask " + hex(mask);
      if (!(mask >> lane & 1)) fail(run, who + ": the mask does not include the calling lane");
      bool complete = true;
      for (unsigned other = 0; other < kWarpSize && complete; ++other) {
        if (!(mask >> other & 1)) continue;
        if (other >= lanes)
          fail(run, engine::detail::concat(who, ": the mask names lane ", other, ", which does not exist (the block has ",
                                           threads.size(), " threads)"));
        const EmulatedThread& o = threads[base + other];
        switch (o.wait) {
          case ThreadWait::done: fail(run, engine::detail::concat(who, ": lane ", other, " has exited"));
          case ThreadWait::block_barrier:
            fail(run, engine::detail::concat(who, ": lane ", other, " waits at __syncthreads at ",
                                             site_str(o.barrier_site), " instead"));
          case ThreadWait::running: complete = false; break;
          case ThreadWait::warp:
            if (o.mask != mask || o.op != t.op)
              fail(run, engine::detail::concat(who, ": lane ", other, " waits in ", collective_name(o.op), " with mask ",
                                               hex(o.mask), " instead"));
            break;
        }
      }
      if (complete) {
        complete_collective(run, base, mask);
        released = true;
      }
    }
  }
  return released;
}

// Runs the threads of one block to completion.
void run_block(BlockRun& run) {
  std::vector<EmulatedThread>& threads = run.threads;
  std::deque<Fiber>& fibers = fiber_pool.fibers;
  for (EmulatedThread& t : threads) {
    t.wait = ThreadWait::running;
    if (!fibers[t.linear].parked) start_fiber(fibers[t.linear]);
  }
  run.shared_sites.clear();
  run.static_shared_used = 0;
  if (run.block.dynamic_shared_bytes) std::memset(run.dynamic_shared.get(), 0xff, run.block.dynamic_shared_bytes);
  while (true) {
    // Between two synchronisation points the threads may run in any order on hardware: shuffle it.
    if (run.shuffle) std::shuffle(run.order.begin(), run.order.end(), run.order_rng);
    for (unsigned linear : run.order) {
      EmulatedThread& t = threads[linear];
      if (t.wait != ThreadWait::running) continue;
      current_thread = &t;
      switch_to(fibers[t.linear]);
      current_thread = nullptr;
      if (run.thread_error) {
        try {
          std::rethrow_exception(run.thread_error);
        } catch (const engine::Error& e) {
          fail(run, thread_str(t) + ": " + e.what());
        }
      }
    }
    size_t done = 0, at_barrier = 0;
    for (const EmulatedThread& t : threads) {
      done += t.wait == ThreadWait::done;
      at_barrier += t.wait == ThreadWait::block_barrier;
    }
    if (done == threads.size()) return;
    if (release_warps(run)) continue;
    if (at_barrier + done == threads.size()) {
      const EmulatedThread* waiting = nullptr;
      const EmulatedThread* exited = nullptr;
      for (const EmulatedThread& t : threads) {
        if (t.wait == ThreadWait::done && !exited) exited = &t;
        if (t.wait != ThreadWait::block_barrier) continue;
        if (!waiting) waiting = &t;
        if (t.barrier_site.line() != waiting->barrier_site.line() ||
            std::strcmp(t.barrier_site.file_name(), waiting->barrier_site.file_name()) != 0)
          fail(run, engine::detail::concat("divergent barrier: ", thread_str(*waiting), " waits at __syncthreads at ",
                                           site_str(waiting->barrier_site), " but ", thread_str(t), " at ",
                                           site_str(t.barrier_site)));
      }
      if (exited)
        fail(run, engine::detail::concat("divergent barrier: ", thread_str(*waiting), " waits at __syncthreads at ",
                                         site_str(waiting->barrier_site), " but ", thread_str(*exited), " (and ", done - 1,
                                         " others) exited without reaching it"));
      for (EmulatedThread& t : threads) t.wait = ThreadWait::running;
      continue;
    }
    // Some threads wait at __syncthreads while others wait in warp collectives that cannot complete.
    for (const EmulatedThread& t : threads)
      if (t.wait == ThreadWait::warp)
        fail(run, engine::detail::concat("deadlock: ", thread_str(t), " waits in ", collective_name(t.op),
                                         " while other threads of its block wait at __syncthreads"));
    ENGINE_ASSERT(false);
  }
}

}  // namespace

void run_grid(const char* kernel, const void* kernel_address, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              const std::function<void()>& thread_body) {
  ENGINE_CHECK(current_run == nullptr, "kernel ", kernel, ": launched from inside another emulated kernel");
  check_launch_shape(kernel, kernel_address, grid, block, dynamic_shared_bytes);
  const size_t n_threads = size_t(block.x) * block.y * block.z;
  fiber_pool.reserve(n_threads);

  BlockRun run;
  run.block.kernel = kernel;
  run.block.grid = grid;
  run.block.block = block;
  run.block.dynamic_shared_bytes = dynamic_shared_bytes;
  run.body = &thread_body;
  run.threads.resize(n_threads);
  for (unsigned z = 0, i = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x, ++i) {
        run.threads[i].thread_idx = dim3(x, y, z);
        run.threads[i].linear = i;
      }
  run.static_shared.reset(new (std::align_val_t(128)) unsigned char[kStaticSharedLimit]);
  if (dynamic_shared_bytes) run.dynamic_shared.reset(new (std::align_val_t(128)) unsigned char[dynamic_shared_bytes]);

  const uint64_t seed = announced_seed(), launch = launch_counter++;
  run.shuffle = seed != 0;
  run.order_rng.seed(seed * 0x9e3779b97f4a7c15ull + launch);
  run.order.resize(n_threads);
  std::iota(run.order.begin(), run.order.end(), 0u);
  // Blocks run one at a time, in a shuffled order: the hardware promises none.
  const uint64_t n_blocks = uint64_t(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> blocks(n_blocks);
  std::iota(blocks.begin(), blocks.end(), uint64_t(0));
  if (run.shuffle) std::shuffle(blocks.begin(), blocks.end(), run.order_rng);

  struct Scope {  // clears the thread-local pointers however the launch ends
    BlockRun* run;
    explicit Scope(BlockRun* r) : run(r) { current_run = r; current_block = &r->block; }
    ~Scope() { current_run = nullptr; current_block = nullptr; current_thread = nullptr; }
  } scope(&run);
  try {
    for (const uint64_t b : blocks) {
      run.block.block_idx = dim3(unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / grid.x / grid.y));
      run_block(run);
    }
  } catch (const engine::Error& e) {
    if (!run.shuffle) throw;
    throw engine::Error(engine::detail::concat(e.what(), " [kernel emulator: launch ", launch,
                                               " in an order shuffled with ENGINE_EMU_SEED=", seed, "]"));
  }
}

uint64_t shuffle_seed() { return seed_in_force().load(); }

void set_shuffle_seed(uint64_t seed) { seed_in_force().store(seed); }

void sync_block(std::source_location site) {
  ENGINE_CHECK(current_thread != nullptr, "__syncthreads called outside an emulated kernel");
  current_thread->wait = ThreadWait::block_barrier;
  current_thread->barrier_site = site;
  yield_to_scheduler(fiber_pool.fibers[current_thread->linear]);
}

uint64_t warp_collective(Collective op, unsigned mask, uint64_t value, int param, int width) {
  ENGINE_CHECK(current_thread != nullptr, collective_name(op), " called outside an emulated kernel");
  EmulatedThread* self = current_thread;
  self->wait = ThreadWait::warp;
  self->op = op;
  self->mask = mask;
  self->value = value;
  self->param = param;
  self->width = width;
  yield_to_scheduler(fiber_pool.fibers[self->linear]);
  return self->result;
}

void* shared_array(const void* site, size_t bytes, size_t alignment) {
  ENGINE_CHECK(current_run != nullptr, "shared memory declared outside an emulated kernel");
  BlockRun& run = *current_run;
  for (const SharedSite& s : run.shared_sites) {
    if (s.site != site) continue;
    if (s.bytes != bytes)
      fail(run, engine::detail::concat(thread_str(*current_thread), ": a shared array declared with ", s.bytes,
                                       " bytes is declared again with ", bytes, " (sizes must be compile-time uniform)"));
    return run.static_shared.get() + s.offset;
  }
  const size_t offset = (run.static_shared_used + alignment - 1) / alignment * alignment;
  if (offset + bytes > kStaticSharedLimit)
    fail(run, engine::detail::concat("static shared memory exceeds ", kStaticSharedLimit, " bytes"));
  if (offset + bytes + run.block.dynamic_shared_bytes > kSharedPerBlockOptIn)
    fail(run, engine::detail::concat("static plus dynamic shared memory exceeds ", kSharedPerBlockOptIn, " bytes"));
  run.static_shared_used = offset + bytes;
  run.shared_sites.push_back({site, offset, bytes});
  std::memset(run.static_shared.get() + offset, 0xff, bytes);  // poison: uninitialised floats read as NaN
  return run.static_shared.get() + offset;
}

void* dynamic_shared() {
  ENGINE_CHECK(current_run != nullptr, "dynamic shared memory used outside an emulated kernel");
  return current_run->dynamic_shared.get();
}

void set_max_dynamic_shared(const void* kernel_address, size_t bytes) {
  ENGINE_CHECK(bytes <= kSharedPerBlockOptIn, "cudaFuncSetAttribute: ", bytes,
               " bytes of dynamic shared memory exceed the sm_80 limit of ", kSharedPerBlockOptIn);
  std::lock_guard<std::mutex> lock(attribute_mutex);
  max_dynamic_shared[kernel_address] = bytes;
}

}  // namespace engine::emu::detail
