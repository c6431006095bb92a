// CPU benchmark: GEMM throughput, forward+backward of one transformer block at a few sizes, and one
// GPT training step in the configuration of the PyTorch peer torch_gpt_step.py (scripts/bench_cpu.sh
// runs both and prints the ratio); `recompute` runs that step with each activation-recompute mode
// (models/recompute.h), the modes interleaved step by step, and prints each one's median step time
// and the CPU allocator's peak over a step. Figures are compared with the peaks of the threads measured at
// start-up (apps/fma_peak.h): f32 FMA, and with bf16 products the peak of the bf16 kernel that runs.
//
// Usage: bench [gemm|block|gpt|recompute|all] [GPT steps, default 10] [--precision fp32|bf16]
//              [--layers 6] [--width 256] [--heads 8] [--context 256] [--batch 8]   (the GPT step's model)
// Threads from OMP_NUM_THREADS; ENGINE_BF16_KERNEL=amx|avx512_bf16|fp32 forces a bf16 kernel.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/bench_timing.h"
#include "apps/fma_peak.h"
#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "engine/allocator.h"
#include "engine/error.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "models/recompute.h"
#include "models/transformer_block.h"
#include "ops/cpu/bf16_kernel.h"
#include "ops/cross_entropy.h"
#include "ops/matmul.h"
#include "ops/precision.h"

namespace {

using engine::Tensor;

// The peaks measured in main before anything else runs.
apps::Peaks peaks;

// The multiply-add peak of the instructions that run this precision's products: the bf16 kernel's,
// or the f32 FMA's.
double product_peak_gflops() {
  if (ops::precision() == ops::Precision::fp32) return peaks.fp32.gflops;
  switch (ops::cpu::bf16_kernel()) {
    case ops::cpu::Bf16Kernel::amx: return peaks.amx_bf16.gflops;
    case ops::cpu::Bf16Kernel::avx512_bf16: return peaks.avx512_bf16.gflops;
    case ops::cpu::Bf16Kernel::fp32: return peaks.fp32.gflops;
  }
  return peaks.fp32.gflops;
}

void print_peaks() {
  std::printf("threads %d, core clock %.2f GHz (one thread, integer chain); multiply-add peaks measured now, "
              "GFLOP/s (FLOP per cycle per thread):\n",
              peaks.threads, peaks.clock_ghz);
  std::printf("  f32 FMA      %7.0f (%5.1f; documented 64: 2 AVX-512 FMA units x 16 lanes x 2)\n", peaks.fp32.gflops,
              peaks.fp32.flops_per_cycle);
  auto optional = [](const char* name, const apps::Peak& peak, const char* documented) {
    if (peak.gflops > 0)
      std::printf("  %-12s %7.0f (%5.1f; %s)\n", name, peak.gflops, peak.flops_per_cycle, documented);
    else
      std::printf("  %-12s not on this CPU\n", name);
  };
  optional("AVX512-BF16", peaks.avx512_bf16, "VDPBF16PS, 64 FLOP each");
  optional("AMX bf16", peaks.amx_bf16, "documented 1024: one TDPBF16PS, 16384 FLOP, per 16 cycles");
}

void bench_gemm() {
  std::printf("\nGEMM C = A·B (ops::matmul, f32 tensors, products in %s)\n%6s %10s %10s %6s\n",
              ops::precision_description(ops::precision()).c_str(), "N", "ms", "GFLOP/s", "peak%");
  engine::Generator gen(0);
  for (int64_t n : {256, 512, 1024, 2048}) {
    Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen);
    const double seconds = apps::median_seconds([&] { ops::matmul(a, b); }, 2, 7);
    const double gflops = 2.0 * double(n * n * n) / seconds / 1e9;
    std::printf("%6lld %10.2f %10.1f %5.0f%%\n", (long long)n, seconds * 1e3, gflops,
                100 * gflops / product_peak_gflops());
  }
}

void bench_block() {
  std::printf("\ntransformer block forward+backward (causal, products in %s)\n%4s %5s %5s %3s %10s %10s %10s %6s\n",
              ops::precision_description(ops::precision()).c_str(), "B", "T", "C", "H", "ms", "tokens/s", "GFLOP/s",
              "MFU");
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
    const double seconds = apps::median_seconds(
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
                100 * gflops / product_peak_gflops());
  }
}

// The GPT step's model; the defaults are torch_gpt_step.py's: 6 layers, width 256, 8 heads,
// context 256, vocab 4096, batch 8, tied head, AdamW(lr 3e-4, weight decay 0.1), no dropout.
struct GptBenchConfig {
  int64_t layers = 6, width = 256, heads = 8, context = 256, batch = 8, vocab = 4096;
};

models::GptConfig gpt_config(const GptBenchConfig& bench_config) {
  models::GptConfig config;
  config.vocab_size = bench_config.vocab;
  config.context = bench_config.context;
  config.layers = bench_config.layers;
  config.channels = bench_config.width;
  config.heads = bench_config.heads;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  return config;
}

// A batch of B random sequences of T + 1 tokens: inputs (B, T) and their next tokens (B, T).
std::pair<Tensor, Tensor> random_batch(int64_t B, int64_t T, int64_t vocab, engine::Generator& gen) {
  std::vector<int64_t> ids(size_t(B * (T + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(vocab)));
  Tensor data = Tensor::from_indices(ids, {B, T + 1});
  return {data.narrow(1, 0, T).contiguous(), data.narrow(1, 1, T).contiguous()};
}

void bench_gpt_step(const GptBenchConfig& bench_config, int steps) {
  const models::GptConfig config = gpt_config(bench_config);
  engine::Generator gen(0);
  models::Gpt model(config, gen);
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 3e-4, 0.1}});
  const int64_t B = bench_config.batch, T = bench_config.context;
  const auto [inputs, targets] = random_batch(B, T, config.vocab_size, gen);
  double loss = 0;
  const double seconds = apps::median_seconds(
      [&] {
        optimizer.zero_grad();
        Tensor l = ops::cross_entropy(model.forward(inputs, gen), targets);
        l.backward();
        optimizer.step();
        loss = l.item();
      },
      3, steps);
  // As torch_gpt_step.py counts: 6 · (parameters less the position table) · tokens + attention
  // (4·B·T²·C per layer forward, ×3 with the backward; the causal kernels do about half of it).
  const double dense = double(model.parameter_count() - config.context * config.channels);
  const double flops = 6 * dense * double(B * T) + 3.0 * double(config.layers) * 4 * double(B * T * T) *
                                                        double(config.channels);
  const double gflops = flops / seconds / 1e9;
  std::printf("\nGPT step (%lld layers, width %lld, %lld heads, context %lld, batch %lld, products in %s): %.2fM "
              "params, median step %.1f ms, %.0f tokens/s, ~%.1f GFLOP/s (%.0f%% of the f32 FMA peak",
              (long long)config.layers, (long long)config.channels, (long long)config.heads, (long long)T,
              (long long)B, ops::precision_description(ops::precision()).c_str(),
              double(model.parameter_count()) / 1e6, seconds * 1e3, double(B * T) / seconds, gflops,
              100 * gflops / peaks.fp32.gflops);
  if (ops::precision() == ops::Precision::bf16 && product_peak_gflops() != peaks.fp32.gflops)
    std::printf(", %.1f%% of the bf16 kernel's", 100 * gflops / product_peak_gflops());
  std::printf("), loss %.3f\n", loss);
}

// The GPT step with each activation-recompute mode: one model per mode from the same seed, the
// modes taking turns step by step (so load from other processes hits them alike); per mode the
// median step time and the CPU allocator's peak bytes in use over a step (parameters, gradients,
// AdamW's moments and the activations), and the last loss, which must agree.
void bench_recompute(const GptBenchConfig& bench_config, int steps) {
  const models::GptConfig config = gpt_config(bench_config);
  const std::vector<models::Recompute> modes = {models::Recompute::none, models::Recompute::gelu,
                                                models::Recompute::block};
  struct Run {
    std::unique_ptr<models::Gpt> model;
    std::unique_ptr<engine::optim::AdamW> optimizer;
    std::vector<double> seconds;
    size_t peak_bytes = 0;
    double loss = 0;
  };
  std::vector<Run> runs(modes.size());
  for (Run& run : runs) {
    engine::Generator init(0);
    run.model = std::make_unique<models::Gpt>(config, init);
    run.optimizer = std::make_unique<engine::optim::AdamW>(
        std::vector<engine::optim::ParamGroup>{{run.model->named_parameters(), 3e-4, 0.1}});
  }
  engine::Generator data_gen(1);
  const auto [inputs, targets] = random_batch(bench_config.batch, bench_config.context, config.vocab_size, data_gen);
  engine::Allocator& allocator = engine::cpu_allocator();
  for (int step = 0; step < steps + 1; ++step) {  // step 0 warms up
    for (size_t m = 0; m < modes.size(); ++m) {
      const models::RecomputeScope scope(modes[m]);
      Run& run = runs[m];
      engine::Generator dropout_gen(2);
      allocator.reset_peak_stats();
      const auto start = std::chrono::steady_clock::now();
      run.optimizer->zero_grad();
      Tensor loss = ops::cross_entropy(run.model->forward(inputs, dropout_gen), targets);
      loss.backward();
      run.optimizer->step();
      run.loss = loss.item();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      run.peak_bytes = std::max(run.peak_bytes, allocator.stats().peak_bytes_in_use);
      if (step > 0) run.seconds.push_back(seconds);
    }
  }
  std::printf("\nGPT step with activation recompute (%lld layers, width %lld, %lld heads, context %lld, batch %lld, "
              "products in %s), %d steps per mode, interleaved:\n%-6s %12s %18s %10s\n",
              (long long)config.layers, (long long)config.channels, (long long)config.heads,
              (long long)bench_config.context, (long long)bench_config.batch,
              ops::precision_description(ops::precision()).c_str(), steps, "mode", "median ms", "peak MiB in use",
              "loss");
  for (size_t m = 0; m < modes.size(); ++m) {
    std::vector<double>& times = runs[m].seconds;
    std::sort(times.begin(), times.end());
    std::printf("%-6s %12.1f %18.1f %10.6f\n", models::recompute_name(modes[m]), times[times.size() / 2] * 1e3,
                double(runs[m].peak_bytes) / double(1 << 20), runs[m].loss);
  }
}

// The benchmark's command line (header comment) and the runs it asks for.
void run(int argc, char** argv) {
  std::string what = "all", precision = "fp32";
  int steps = 10;
  GptBenchConfig gpt;
  apps::CommandLine cli("bench", "CPU benchmark: GEMM, transformer block and GPT training step against the FMA peak.",
                        "OMP_NUM_THREADS=2 bench gpt 10 --precision bf16 --layers 6 --width 256");
  cli.option("what", what, "gemm, block, gpt, recompute or all");
  cli.option("steps", steps, "GPT training steps timed", 1);
  cli.option("--precision", precision, "matrix products in fp32 or bf16");
  cli.option("--layers", gpt.layers, "the GPT step's layers", 1);
  cli.option("--width", gpt.width, "the GPT step's width C", 1);
  cli.option("--heads", gpt.heads, "the GPT step's heads H", 1);
  cli.option("--context", gpt.context, "the GPT step's context T", 1);
  cli.option("--batch", gpt.batch, "the GPT step's batch B", 1);
  cli.parse(argc, argv);
  ENGINE_CHECK(what == "all" || what == "gemm" || what == "block" || what == "gpt" || what == "recompute",
               "unknown benchmark '", what, "': use gemm, block, gpt, recompute or all");
  ops::set_precision(ops::parse_precision(precision));

  peaks = apps::measure_peaks();
  print_peaks();
  // The run's one report of what computes its products.
  std::printf("precision %s: products in %s\n", ops::precision_name(ops::precision()),
              ops::precision_description(ops::precision()).c_str());
  const bool all = what == "all";
  if (all || what == "gemm") bench_gemm();
  if (all || what == "block") bench_block();
  if (all || what == "gpt") bench_gpt_step(gpt, steps);
  if (what == "recompute") bench_recompute(gpt, steps);
}

}  // namespace

int main(int argc, char** argv) { return apps::run_app("bench", [&] { run(argc, argv); }); }
