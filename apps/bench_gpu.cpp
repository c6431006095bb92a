// GPU benchmark: cuBLAS GEMM (FP32 and TF32) and the engine's matmul with bf16 products, the
// attention op (forward, forward+backward), and one transformer block forward+backward on
// Device::cuda(), reporting TFLOP/s, tokens/s and MFU against
// the GPU's peak from the table below (matched on cudaDeviceProp::name). Times come from CUDA events
// on the engine's stream: median over repeats, after warm-up.
//
// Usage: bench_gpu [gemm|attention|block|all]
//   B = batch, T = time, C = channels, H = heads, D = head dim
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/attention_options.h"
#include "apps/cli_options.h"
#include "engine/autograd.h"
#include "engine/cuda/check.h"
#include "engine/cuda/init.h"
#include "engine/cuda/stream.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "models/transformer_block.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/precision.h"

namespace {

using engine::Device;
using engine::Tensor;

// Dense (no structured sparsity) peak throughput in TFLOP/s, from NVIDIA's data sheets.
struct GpuPeak {
  const char* name_contains;  // matched in order: more specific names first
  double fp32, tf32, bf16;
};
constexpr GpuPeak kPeaks[] = {
    {"H100 PCIe", 51.2, 378.0, 756.0},  {"H100", 66.9, 494.7, 989.4},   {"H200", 66.9, 494.7, 989.4},
    {"H800", 66.9, 494.7, 989.4},       {"GH200", 66.9, 494.7, 989.4},  {"A100", 19.5, 156.0, 312.0},
    {"A800", 19.5, 156.0, 312.0},       {"L40S", 91.6, 183.0, 362.1},   {"L40", 90.5, 90.5, 181.0},
    {"L4", 30.3, 60.0, 121.0},          {"A10", 31.2, 62.5, 125.0},     {"RTX 4090", 82.6, 82.6, 165.2},
    {"RTX 3090", 35.6, 35.6, 71.0},     {"RTX A6000", 38.7, 77.4, 154.8},
};

const GpuPeak* find_peak(const std::string& name) {
  for (const GpuPeak& peak : kPeaks)
    if (name.find(peak.name_contains) != std::string::npos) return &peak;
  return nullptr;
}

// Median milliseconds of `run` on the engine's stream over `repeats` calls after `warmup` calls.
double median_ms(const std::function<void()>& run, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) run();
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> times;
  engine::cuda::Event start, stop;
  for (int i = 0; i < repeats; ++i) {
    start.record(engine::cuda::current_stream());
    run();
    stop.record(engine::cuda::current_stream());
    stop.synchronize();
    times.push_back(stop.elapsed_ms_since(start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double percent(double tflops, double peak) { return peak > 0 ? 100.0 * tflops / peak : 0.0; }

// C = A·B with cuBLAS in FP32 and in TF32 (tensor cores, 10-bit mantissa inputs), and ops::matmul
// with --precision bf16 (cuBLASLt on bf16 copies of A and B, f32 sums: the conversions included).
void bench_gemm(const GpuPeak& peak) {
  std::printf("\ncuBLAS GEMM C = A·B (f32 storage); bf16: ops::matmul, bf16 products\n"
              "%6s %10s %10s %7s %10s %10s %7s %10s %10s %7s\n",
              "N", "fp32 ms", "TFLOP/s", "peak%", "tf32 ms", "TFLOP/s", "peak%", "bf16 ms", "TFLOP/s", "peak%");
  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  CUBLAS_CHECK(cublasSetStream(handle, engine::cuda::current_stream()));
  engine::Generator gen(0);
  for (int n : {1024, 2048, 4096, 8192}) {
    const Tensor a = Tensor::randn({n, n}, gen).to(Device::cuda()), b = Tensor::randn({n, n}, gen).to(Device::cuda());
    Tensor c = Tensor::empty({n, n}, engine::Dtype::f32, Device::cuda());
    const float alpha = 1.0f, beta = 0.0f;
    auto gemm = [&](cublasComputeType_t compute) {
      CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, b.data<float>(), CUDA_R_32F, n,
                                a.data<float>(), CUDA_R_32F, n, &beta, c.data<float>(), CUDA_R_32F, n, compute,
                                CUBLAS_GEMM_DEFAULT));
    };
    const double flops = 2.0 * double(n) * n * n;
    const double fp32_ms = median_ms([&] { gemm(CUBLAS_COMPUTE_32F); }, 2, 10);
    const double tf32_ms = median_ms([&] { gemm(CUBLAS_COMPUTE_32F_FAST_TF32); }, 2, 10);
    const double bf16_ms = median_ms(
        [&] {
          const ops::PrecisionScope bf16(ops::Precision::bf16);
          c = ops::matmul(a, b);
        },
        2, 10);
    const double fp32_tflops = flops / fp32_ms / 1e9, tf32_tflops = flops / tf32_ms / 1e9;
    const double bf16_tflops = flops / bf16_ms / 1e9;
    std::printf("%6d %10.3f %10.1f %6.0f%% %10.3f %10.1f %6.0f%% %10.3f %10.1f %6.0f%%\n", n, fp32_ms, fp32_tflops,
                percent(fp32_tflops, peak.fp32), tf32_ms, tf32_tflops, percent(tf32_tflops, peak.tf32), bf16_ms,
                bf16_tflops, percent(bf16_tflops, peak.bf16));
  }
  CUBLAS_CHECK(cublasDestroy(handle));
}

// ops::attention on f32 tensors: the hand-written tiled kernel, or cuDNN's fused attention on bf16
// copies with --attention cudnn (or --attention auto with --precision bf16: the conversions
// included; its peak% is against the bf16 peak). FLOPs as FlashAttention counts them: forward
// 4·B·H·Tq·Tk·D (halved when causal), backward 2.5× that.
void bench_attention(const GpuPeak& peak) {
  const bool cudnn = ops::cudnn_attention_requested();
  std::printf("\nattention (ops::attention, f32 tensors, causal, %s)\n%4s %3s %6s %4s %10s %10s %10s %10s %7s\n",
              cudnn ? "cuDNN on bf16 copies" : "hand-written f32 kernel", "B", "H", "T", "D", "fwd ms", "TFLOP/s",
              "fwd+bwd ms", "TFLOP/s", "peak%");
  struct Size {
    int64_t B, H, T, D;
  };
  for (Size s : {Size{8, 12, 512, 64}, Size{4, 12, 1024, 64}, Size{2, 16, 2048, 128}}) {
    engine::Generator gen(0);
    auto input = [&](bool grad) {
      Tensor t = Tensor::randn({s.B, s.H, s.T, s.D}, gen).to(Device::cuda());
      return grad ? t.requires_grad_() : t;
    };
    Tensor q = input(true), k = input(true), v = input(true), seed = input(false);
    ops::AttentionOptions options;
    options.causal = true;
    const double forward_flops = 0.5 * 4.0 * double(s.B * s.H) * double(s.T) * double(s.T) * double(s.D);
    const double forward_ms = median_ms(
        [&] {
          engine::NoGradGuard no_grad;
          ops::attention(q, k, v, options);
        },
        2, 10);
    const double training_ms = median_ms([&] { ops::attention(q, k, v, options).backward(seed); }, 2, 10);
    const double forward_tflops = forward_flops / forward_ms / 1e9;
    const double training_tflops = 3.5 * forward_flops / training_ms / 1e9;
    std::printf("%4lld %3lld %6lld %4lld %10.3f %10.2f %10.3f %10.2f %6.1f%%\n", (long long)s.B, (long long)s.H,
                (long long)s.T, (long long)s.D, forward_ms, forward_tflops, training_ms, training_tflops,
                percent(training_tflops, cudnn ? peak.bf16 : peak.fp32));
  }
}

// One pre-LN transformer block (models::TransformerBlock) forward+backward in f32 on the GPU. Needs
// every op the block uses to have CUDA kernels; reports the missing one otherwise.
void bench_block(const GpuPeak& peak) {
  std::printf("\ntransformer block forward+backward (causal, f32)\n%4s %5s %5s %3s %10s %12s %10s %8s %8s\n", "B",
              "T", "C", "H", "ms", "tokens/s", "TFLOP/s", "MFU32", "MFUtf32");
  struct Size {
    int64_t B, T, C, H;
  };
  for (Size s : {Size{8, 1024, 768, 12}, Size{4, 2048, 1024, 16}}) {
    try {
      engine::Generator gen(0);
      models::BlockConfig config;
      config.channels = s.C;
      config.heads = s.H;
      models::TransformerBlock block(config, gen);
      block.to_(Device::cuda());
      Tensor x = Tensor::randn({s.B, s.T, s.C}, gen).to(Device::cuda()).requires_grad_();
      const Tensor seed = Tensor::randn({s.B, s.T, s.C}, gen).to(Device::cuda());
      const double ms = median_ms(
          [&] {
            block.zero_grad();
            block.forward(x, 0, nullptr, gen).backward(seed);
          },
          2, 10);
      // Per token forward: 24·C² (q, k, v, o projections 4C² and the MLP 8C², ×2 for multiply-add)
      // plus 2·T·C for causal attention; the backward costs twice the forward.
      const double tokens = double(s.B * s.T);
      const double flops = 3.0 * tokens * (24.0 * double(s.C * s.C) + 2.0 * double(s.T * s.C));
      const double tflops = flops / ms / 1e9;
      std::printf("%4lld %5lld %5lld %3lld %10.2f %12.0f %10.2f %7.1f%% %7.1f%%\n", (long long)s.B, (long long)s.T,
                  (long long)s.C, (long long)s.H, ms, tokens / (ms / 1e3), tflops, percent(tflops, peak.fp32),
                  percent(tflops, peak.tf32));
    } catch (const engine::Error& error) {
      std::printf("%4lld %5lld %5lld %3lld  skipped: %s\n", (long long)s.B, (long long)s.T, (long long)s.C,
                  (long long)s.H, error.what());
    }
  }
}

// The benchmarks the command line asks for, on GPU 0.
void bench_gpu(int argc, char** argv) {
  std::string what = "all";
  apps::CommandLine cli("bench_gpu", "GEMM, attention and transformer-block throughput on the GPU (TFLOP/s, MFU).",
                        "bench_gpu all");
  cli.option("what", what, "gemm, attention, block or all");
  apps::attention_options(cli);
  cli.parse(argc, argv);
  ENGINE_CHECK(what == "all" || what == "gemm" || what == "attention" || what == "block", "unknown benchmark '",
               what, "': use gemm, attention, block or all");
  std::string reason;
  ENGINE_CHECK(engine::cuda::available(&reason), "no usable GPU (", reason,
               "); run it on a machine with an NVIDIA GPU and driver");
  engine::cuda::init();

  cudaDeviceProp prop;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  const GpuPeak* found = find_peak(prop.name);
  const GpuPeak peak = found ? *found : GpuPeak{"unknown", 0.0, 0.0, 0.0};
  if (found)
    std::printf("%s (sm_%d%d): peak FP32 %.1f, TF32 %.1f, BF16 %.1f TFLOP/s (dense)\n", prop.name, prop.major,
                prop.minor, peak.fp32, peak.tf32, peak.bf16);
  else
    std::printf("%s (sm_%d%d): not in the peak table (apps/bench_gpu.cpp kPeaks); MFU shown as 0\n", prop.name,
                prop.major, prop.minor);

  const bool all = what == "all";
  if (all || what == "gemm") bench_gemm(peak);
  if (all || what == "attention") bench_attention(peak);
  if (all || what == "block") bench_block(peak);
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("bench_gpu", [&] { bench_gpu(argc, argv); });
}
