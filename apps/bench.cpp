// CPU benchmark: sgemm throughput, forward+backward of one transformer block at a few sizes, and
// one GPT training step in the configuration of ../shared/bench/torch_gpt_step.py (the PyTorch
// peer; scripts/bench_cpu.sh runs both and prints the ratio). Figures are compared with the FP32
// peak of the threads measured at start-up (apps/fma_peak.h); the GPT step also with FACTS.md's
// 224 GFLOP/s per core (AVX-512 FMA, ~3.5 GHz), the reference of issue #6's target.
//
// Usage: bench [gemm|block|gpt|all] [GPT steps, default 10]    threads from OMP_NUM_THREADS
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "apps/bench_timing.h"
#include "apps/fma_peak.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "models/transformer_block.h"
#include "ops/cross_entropy.h"
#include "ops/matmul.h"

namespace {

using engine::Tensor;

constexpr double kFactsPeakGflopsPerCore = 224.0;

double facts_peak_gflops() { return kFactsPeakGflopsPerCore * omp_get_max_threads(); }

// The threads' FP32 peak, measured once in main before anything else runs.
double measured_peak_gflops = 0;

void bench_gemm() {
  std::printf("\nsgemm C = A·B (ops::matmul, f32)\n%6s %10s %10s %6s\n", "N", "ms", "GFLOP/s", "peak%");
  engine::Generator gen(0);
  for (int64_t n : {256, 512, 1024, 2048}) {
    Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen);
    const double seconds = median_seconds([&] { ops::matmul(a, b); }, 2, 7);
    const double gflops = 2.0 * double(n * n * n) / seconds / 1e9;
    std::printf("%6lld %10.2f %10.1f %5.0f%%\n", (long long)n, seconds * 1e3, gflops,
                100 * gflops / measured_peak_gflops);
  }
}

void bench_block() {
  std::printf("\ntransformer block forward+backward (causal, f32)\n%4s %5s %5s %3s %10s %10s %10s %6s\n", "B", "T",
              "C", "H", "ms", "tokens/s", "GFLOP/s", "MFU");
  struct Size { int64_t B, T, C, H; };
  for (Size s : {Size{8, 256, 256, 8}, Size{4, 512, 512, 8}, Size{2, 1024, 768, 12}}) {
    engine::Generator gen(0);
    models::BlockConfig config;
    config.channels = s.C;
    config.heads = s.H;
    models::TransformerBlock block(config, gen);
    Tensor x = Tensor::randn({s.B, s.T, s.C}, gen);
    x.requires_grad_();
    Tensor seed = Tensor::randn({s.B, s.T, s.C}, gen);
    const double seconds = median_seconds(
        [&] {
          block.zero_grad();
          block.forward(x, 0, nullptr, gen).backward(seed);
        },
        1, 5);
    // Per token forward: 24·C² for the four projections (q,k,v,o: 4C², MLP: 8C², times 2 for
    // multiply-add), 2·T·C for causal attention (q·kᵀ and p·v over T/2 keys on average, ×2).
    // Backward costs twice the forward.
    const double tokens = double(s.B * s.T);
    const double flops = 3.0 * tokens * (24.0 * double(s.C * s.C) + 2.0 * double(s.T * s.C));
    const double gflops = flops / seconds / 1e9;
    std::printf("%4lld %5lld %5lld %3lld %10.1f %10.0f %10.1f %5.0f%%\n", (long long)s.B, (long long)s.T,
                (long long)s.C, (long long)s.H, seconds * 1e3, tokens / seconds, gflops,
                100 * gflops / measured_peak_gflops);
  }
}

// The configuration of torch_gpt_step.py: 6 layers, width 256, 8 heads, context 256, vocab 4096,
// batch 8, tied head, AdamW(lr 3e-4, weight decay 0.1), no dropout.
void bench_gpt_step(int steps) {
  models::GptConfig config;
  config.vocab_size = 4096;
  config.context = 256;
  config.layers = 6;
  config.channels = 256;
  config.heads = 8;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  engine::Generator gen(0);
  models::Gpt model(config, gen);
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 3e-4, 0.1}});
  const int64_t B = 8, T = 256;
  std::vector<int64_t> ids(size_t(B * (T + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(4096));
  Tensor data = Tensor::from_indices(ids, {B, T + 1});
  Tensor inputs = data.narrow(1, 0, T).contiguous(), targets = data.narrow(1, 1, T).contiguous();
  double loss = 0;
  const double seconds = median_seconds(
      [&] {
        optimizer.zero_grad();
        Tensor l = ops::cross_entropy(model.forward(inputs, gen), targets);
        l.backward();
        optimizer.step();
        loss = l.item();
      },
      3, steps);
  // As torch_gpt_step.py counts: 6 · (parameters less the position table) · tokens + attention.
  const double dense = double(model.parameter_count() - config.context * config.channels);
  const double flops = 6 * dense * double(B * T) + 3.0 * 6 * 4 * double(B * T * T) * 256;
  const double gflops = flops / seconds / 1e9;
  std::printf("\nGPT step (torch_gpt_step.py config): %.2fM params, median step %.1f ms, %.0f tokens/s, "
              "~%.1f GFLOP/s (MFU %.0f%% of the measured peak, %.0f%% of FACTS.md's), loss %.3f\n",
              double(model.parameter_count()) / 1e6, seconds * 1e3, double(B * T) / seconds, gflops,
              100 * gflops / measured_peak_gflops, 100 * gflops / facts_peak_gflops(), loss);
}

}  // namespace

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "all";
  measured_peak_gflops = bench::measured_fp32_peak_gflops();
  std::printf("threads %d, FP32 peak measured now %.0f GFLOP/s (FACTS.md: %.0f)\n", omp_get_max_threads(),
              measured_peak_gflops, facts_peak_gflops());
  const bool all = std::strcmp(what, "all") == 0;
  if (all || std::strcmp(what, "gemm") == 0) bench_gemm();
  if (all || std::strcmp(what, "block") == 0) bench_block();
  if (all || std::strcmp(what, "gpt") == 0) bench_gpt_step(argc > 2 ? std::max(1, std::atoi(argv[2])) : 10);
  return 0;
}
