// Setting MXCSR's flush-to-zero and denormals-are-zero bits on the calling thread and every OpenMP
// thread (engine/denormals.h); a no-op off x86-64.
#include "engine/denormals.h"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace engine {

#if defined(__x86_64__)
namespace {

// MXCSR bits: FTZ (results that would be denormal become zero) and DAZ (denormal inputs read as zero).
constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;

void set_on_this_thread(bool on) {
  const unsigned bits = kFlushToZero | kDenormalsAreZero;
  _mm_setcsr(on ? (_mm_getcsr() | bits) : (_mm_getcsr() & ~bits));
}

}  // namespace

bool set_flush_denormal(bool on) {
  set_on_this_thread(on);
#pragma omp parallel
  set_on_this_thread(on);
  return true;
}

bool flush_denormal() {
  return (_mm_getcsr() & (kFlushToZero | kDenormalsAreZero)) == (kFlushToZero | kDenormalsAreZero);
}
#else
bool set_flush_denormal(bool) { return false; }
bool flush_denormal() { return false; }
#endif

}  // namespace engine
