// ops::cpu::gemm called directly: every transpose, sizes around the AVX-512 kernel's micro-tile
// (12 x 32) and blocks (96 rows, 128-512 columns, depth 256), leading dimensions wider than the
// matrices, alpha and beta, and beta == 0 over a C full of NaN (C must not be read); an element's
// bits do not depend on the part of C a call covers; threaded products start no threads of their own;
// the epilogue sees each element once, final.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "ops/gemm_case.h"

namespace {

using Case = GemmCase;

// Runs one case with leading dimensions 3 wider than needed; returns ‖C − reference‖ / ‖reference‖,
// the reference computed in double, and checks that C's padding columns were left alone.
double relative_error(const Case& c, engine::Generator& gen) {
  GemmOperands m(c, gen);
  ops::cpu::gemm<float>(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, m.A.data(), m.lda, m.B.data(), m.ldb, c.beta,
                        m.C.data(), m.ldc);

  double diff = 0, norm = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < c.K; ++k) sum += double(m.a(c, i, k)) * double(m.b(c, k, j));
      double want = double(c.alpha) * sum;
      if (c.beta != 0.f) want += double(c.beta) * m.C_before[size_t(i * m.ldc + j)];
      const double got = m.C[size_t(i * m.ldc + j)];
      diff += (got - want) * (got - want);
      norm += want * want;
    }
    REQUIRE(m.padding_intact(c, i));
  }
  return std::sqrt(diff / norm);
}

// The process's threads now (Linux: one entry per thread under /proc/self/task).
int64_t thread_count() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/task"), std::filesystem::directory_iterator());
}

}  // namespace

TEST_CASE("f32 gemm matches a double reference around the kernel's tile and block edges") {
  engine::Generator gen(11);
  std::vector<Case> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({ta, tb, 1, 1, 1, 1.f, 0.f});
      cases.push_back({ta, tb, 13, 33, 7, 1.f, 0.f});   // one row and one column past a micro-tile
      cases.push_back({ta, tb, 12, 32, 256, 0.5f, 0.f});  // exactly one tile and one depth block
      cases.push_back({ta, tb, 37, 47, 257, 1.f, 1.f});   // a second depth block of 1
      cases.push_back({ta, tb, 200, 530, 600, -1.5f, 0.25f});  // past a row block and a column tile
    }
  for (const Case& c : cases) {
    CAPTURE(c.trans_a);
    CAPTURE(c.trans_b);
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    CHECK(relative_error(c, gen) < 1e-5);
  }
}

TEST_CASE("f32 gemm gives an element the same bits whatever part of C a call covers") {
  engine::Generator gen(12);
  check_same_bits_whatever_part<float>(
      [](int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
         int64_t ldc, const ops::cpu::GemmEpilogue&) {
        ops::cpu::gemm<float>(false, true, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc);
      },
      50, 70, 300, gen);
}

// Regression: batched_gemm used to wrap a batch of one in an inactive `parallel for if (false)`, so
// the GEMM inside opened a nested team and libgomp created a thread for every product (~50 per GPT
// training step, a third of the step). A watcher samples the thread count while products run.
TEST_CASE("threaded products reuse the OpenMP threads: no thread is created per product") {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  engine::Generator gen(5);
  const int64_t M = 300, N = 260, K = 128;  // 10M multiply-adds: tiles of C shared by the threads
  const std::vector<float> A = random_floats(M * K, gen), B = random_floats(K * N, gen);
  std::vector<float> C(size_t(M * N));
  const int64_t zero_offset = 0;
  auto batch_of_one = [&] {
    ops::cpu::batched_gemm<float>(1, &zero_offset, &zero_offset, false, false, M, N, K, A.data(), K, B.data(), N,
                                  C.data());
  };
  batch_of_one();  // the OpenMP pool exists from here on

  std::atomic<bool> done{false};
  std::atomic<int64_t> most{0};
  std::thread watcher([&] {
    while (!done) most = std::max<int64_t>(most, thread_count());
  });
  const int64_t with_watcher = thread_count();  // this thread, the pool, the watcher
  for (int i = 0; i < 40; ++i) {
    batch_of_one();
    ops::cpu::gemm<float>(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, C.data(), N);
  }
  done = true;
  watcher.join();
  omp_set_num_threads(previous_threads);
  const int64_t most_seen = most;
  CHECK(most_seen <= with_watcher);
}

// The epilogue on the AVX-512 kernel (f32) and on Eigen's tiles (f64), K > 256 with several depth
// blocks, threaded and on one thread.
TEST_CASE_TEMPLATE("the gemm epilogue sees every element of C once, with its final value", T, float, double) {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  engine::Generator gen(21);
  const GemmUnderTest<T> gemm = [](int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                                   T* C, int64_t ldc, const ops::cpu::GemmEpilogue& epilogue) {
    ops::cpu::gemm<T>(false, true, M, N, K, T(1), A, lda, B, ldb, T(0), C, ldc, epilogue);
  };
  struct Shape {
    int64_t M, N, K;
  };
  for (const Shape s : {Shape{13, 33, 7}, Shape{37, 47, 600}, Shape{300, 530, 520}}) {
    CAPTURE(s.M);
    check_epilogue_sees_each_element_once<T>(gemm, s.M, s.N, s.K, gen);
  }
  omp_set_num_threads(previous_threads);
}
