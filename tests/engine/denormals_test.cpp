// set_flush_denormal: the calling thread and every OpenMP thread flush, and switching back restores
// gradual underflow.
#include <doctest/doctest.h>
#include <omp.h>

#include <cstddef>
#include <vector>

#include "engine/denormals.h"

namespace {

// 1e-30 · 1e-10 = 1e-40, a denormal f32; volatile keeps the compiler from folding it.
float tiny_product() {
  volatile float a = 1e-30f, b = 1e-10f;
  return a * b;
}

// The product on each OpenMP thread of a 2-thread team.
std::vector<float> tiny_products_per_thread() {
  std::vector<float> out(2, -1.f);
#pragma omp parallel num_threads(2)
  out[std::size_t(omp_get_thread_num())] = tiny_product();
  return out;
}

}  // namespace

TEST_CASE("set_flush_denormal flushes on the caller and on the OpenMP threads, and switches back") {
#if defined(__x86_64__)
  REQUIRE(engine::set_flush_denormal(false));
  CHECK_FALSE(engine::flush_denormal());
  CHECK(tiny_product() > 0.f);
  for (float p : tiny_products_per_thread()) CHECK(p > 0.f);

  REQUIRE(engine::set_flush_denormal(true));
  CHECK(engine::flush_denormal());
  CHECK(tiny_product() == 0.f);
  for (float p : tiny_products_per_thread()) CHECK(p == 0.f);

  engine::set_flush_denormal(false);
  CHECK(tiny_product() > 0.f);
  for (float p : tiny_products_per_thread()) CHECK(p > 0.f);
#else
  CHECK_FALSE(engine::set_flush_denormal(true));
#endif
}
