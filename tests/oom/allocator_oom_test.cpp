// Out of memory where an exception must not escape: the host allocator's deallocate() runs in
// Storage's destructor, so when its bookkeeping cannot allocate, it must give the block back rather
// than throw (a throw there terminates the program). The whole executable's operator new is
// replaced by one that fails on demand, hence this test's own executable.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include "engine/allocator.h"
#include "engine/tensor.h"

namespace {

thread_local bool fail_operator_new = false;

// Makes operator new throw std::bad_alloc on this thread while alive.
struct FailingOperatorNew {
  FailingOperatorNew() { fail_operator_new = true; }
  ~FailingOperatorNew() { fail_operator_new = false; }
};

}  // namespace

void* operator new(std::size_t bytes) {
  if (fail_operator_new) throw std::bad_alloc();
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

TEST_CASE("deallocate never throws: with no memory for its cache bin, the block goes back to the system") {
  engine::CpuCachingAllocator allocator;
  const size_t bytes = 123 * 512;  // a size class this allocator has never cached: its bin must be created
  void* block = allocator.allocate(bytes);
  {
    FailingOperatorNew no_memory;
    CHECK_NOTHROW(allocator.deallocate(block, bytes));
  }
  CHECK(allocator.stats().bytes_in_use == 0);
  CHECK(allocator.stats().bytes_cached == 0);  // freed, not cached
}

TEST_CASE("a tensor freed while operator new fails does not terminate the program") {
  engine::Tensor tensor = engine::Tensor::empty({37, 41});  // a size class no other test uses
  {
    FailingOperatorNew no_memory;
    tensor = engine::Tensor();  // Storage's destructor returns the block to cpu_allocator()
  }
  CHECK_FALSE(tensor.defined());
}
