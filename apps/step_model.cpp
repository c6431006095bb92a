// The analytic GPU step model (step_model.h): the kernel lists of both plans and the roofline.
//
//   B, T, C, L, H, V, D, F, R, E as in step_model.h; a = bytes of an activation element, w = bytes of a
//   weight as the GEMMs read it, g = bytes of a gradient or optimizer element (always f32), s = f32
//   statistics (layer-norm mean and rstd, attention log-sum-exp)
#include "apps/step_model.h"

#include <algorithm>

#include "engine/error.h"

namespace apps {

const Gpu kA100 = {"A100 SXM 80GB", 19.5, 156.0, 312.0, 2.039, 108, 1.41};
const Gpu kH100 = {"H100 SXM", 66.9, 494.7, 989.4, 3.35, 132, 1.98};

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

const char* plan_name(Plan plan) { return plan == Plan::today ? "today" : "planned"; }

double peak_tflops(const Gpu& gpu, Precision precision) {
  switch (precision) {
    case Precision::fp32: return gpu.fp32_tflops;
    case Precision::tf32: return gpu.tf32_tflops;
    case Precision::bf16: return gpu.bf16_tflops;
  }
  return 0;
}

int64_t matmul_parameter_count(const ModelShape& s) { return 12 * s.L * s.C * s.C + s.V * s.C; }

int64_t parameter_count(const ModelShape& s) {
  // Per block: qkv (C·3C + 3C), projection (C·C + C), fc (C·4C + 4C), projection (4C·C + C), two
  // layer norms (2·2C); then wte (V·C), wpe (T·C) and the final layer norm (2C).
  const int64_t per_block = 12 * s.C * s.C + 13 * s.C;
  return s.L * per_block + s.V * s.C + s.T * s.C + 2 * s.C;
}

double llmc_model_flops(const ModelShape& s) {
  const double per_token = 6.0 * double(parameter_count(s)) + 6.0 * double(s.L * s.C * s.T);
  return per_token * double(s.B * s.T);
}

namespace {

constexpr double kF32 = 4, kStat = 4, kIndex = 8;

// Collects kernels in launch order.
class StepBuilder {
 public:
  explicit StepBuilder(const ModelShape& s, Precision precision)
      : s_(s), R(double(s.B * s.T)), C(double(s.C)), F(4.0 * double(s.C)), V(double(s.V)),
        a(precision == Precision::bf16 ? 2.0 : 4.0), w(a) {}

  // A GEMM (M×K)·(K×N), `count` launches: 2·M·N·K each; bytes as given (per launch).
  void gemm(const std::string& name, int64_t count, double M, double N, double K, double bytes) {
    const double flops = 2.0 * M * N * K * double(count);
    kernels_.push_back({name, KernelKind::gemm, count, flops, flops, bytes * double(count)});
  }
  void attention(const std::string& name, int64_t launches, double flops, double model_flops, double bytes) {
    kernels_.push_back({name, KernelKind::attention, launches, flops, model_flops, bytes});
  }
  // A memory-bound kernel with `flops_per_element` arithmetic on `elements` (not model FLOPs).
  void memory(const std::string& name, int64_t launches, double bytes, double elements, double flops_per_element) {
    kernels_.push_back({name, KernelKind::memory, launches, elements * flops_per_element, 0.0, bytes});
  }

  std::vector<Kernel> take() { return std::move(kernels_); }

  const ModelShape& s_;
  const double R, C, F, V;
  const double a, w;

 private:
  std::vector<Kernel> kernels_;
};

// One causal attention matmul over every head of every sequence of every layer: 2·D·E·B·H·L.
double attention_unit(const ModelShape& s) {
  const double pairs = double(s.T) * double(s.T + 1) / 2.0;
  return 2.0 * double(s.C / s.H) * pairs * double(s.B * s.H * s.L);
}

// The engine's CUDA kernels as they are (ops/matmul.cpp, ops/cuda/*.cu), f32 storage throughout.
std::vector<Kernel> today_kernels(const ModelShape& s, Precision precision) {
  StepBuilder k(s, precision);
  const double R = k.R, C = k.C, F = k.F, V = k.V, a = k.a, w = k.w, g = kF32, T = double(s.T);
  const int64_t L = s.L;
  const double stats = double(s.B * s.H * s.T) * kStat;  // attention lse, (B, H, T)
  const double unit = attention_unit(s);
  // Forward.
  k.memory("token + position embedding (3 passes)", 3, R * kIndex + 4 * R * C * a + 3 * T * C * a, R * C, 1);
  k.memory("layer norm forward", 2 * L + 1, (2 * L + 1) * (2 * R * C * a + 2 * R * kStat), (2 * L + 1) * R * C, 8);
  k.gemm("qkv GEMM", L, R, 3 * C, C, R * C * a + 3 * C * C * w + 3 * R * C * a);
  k.memory("bias add, separate pass (qkv, both projections)", 3 * L, L * 2 * R * 5 * C * a, L * R * 5 * C, 1);
  k.attention("attention forward (SIMT)", L, 2 * unit, 2 * unit, L * 4 * R * C * a + stats * double(L));
  k.memory("attention output to (B, T, C) copy", L, L * 2 * R * C * a, L * R * C, 0);
  k.gemm("attention projection GEMM", L, R, C, C, R * C * a + C * C * w + R * C * a);
  k.memory("residual add", 2 * L, 2 * L * 3 * R * C * a, 2 * L * R * C, 1);
  k.gemm("MLP fc GEMM", L, R, F, C, R * C * a + F * C * w + R * F * a);
  k.memory("bias + GELU, separate pass (keeps the input)", L, L * 3 * R * F * a, L * R * F, 12);
  k.gemm("MLP projection GEMM", L, R, C, F, R * F * a + C * F * w + R * C * a);
  k.gemm("classifier GEMM (f32 logits)", 1, R, V, C, R * C * a + V * C * w + R * V * a);
  k.memory("cross-entropy forward", 1, R * V * a + 2 * R * kStat, R * V, 4);
  // Backward.
  k.memory("cross-entropy backward (f32 logits gradient)", 1, 2 * R * V * a + R * kStat, R * V, 3);
  k.gemm("classifier dgrad GEMM", 1, R, C, V, R * V * a + V * C * w + R * C * a);
  k.gemm("classifier wgrad GEMM", 1, V, C, R, R * V * a + R * C * a + V * C * g);
  k.memory("layer norm backward (dx, then dweight/dbias)", 2 * (2 * L + 1),
           (2 * L + 1) * (4 * R * C * a + 2 * R * kStat), (2 * L + 1) * R * C, 12);
  k.memory("residual gradient accumulation", 2 * L, 2 * L * 3 * R * C * a, 2 * L * R * C, 1);
  k.gemm("MLP projection dgrad GEMM", L, R, F, C, R * C * a + C * F * w + R * F * a);
  k.gemm("MLP projection wgrad GEMM", L, C, F, R, R * C * a + R * F * a + C * F * g);
  k.memory("bias gradient, column sums (4 per block)", 4 * L, L * R * 9 * C * a, L * R * 9 * C, 1);
  k.memory("GELU backward", L, L * 3 * R * F * a, L * R * F, 14);
  k.gemm("MLP fc dgrad GEMM", L, R, C, F, R * F * a + F * C * w + R * C * a);
  k.gemm("MLP fc wgrad GEMM", L, F, C, R, R * F * a + R * C * a + F * C * g);
  k.gemm("attention projection dgrad GEMM", L, R, C, C, R * C * a + C * C * w + R * C * a);
  k.gemm("attention projection wgrad GEMM", L, C, C, R, 2 * R * C * a + C * C * g);
  k.memory("attention output copy backward", L, L * 2 * R * C * a, L * R * C, 0);
  // delta pass; dK, dV (recompute P, then dV, dP, dK: 4 units); dQ (recompute P, dP, dQ: 3 units).
  k.attention("attention backward (SIMT, 3 launches)", 3 * L, 7 * unit, 4 * unit,
              L * (3 * R * C * a + 2 * (6 * R * C * a) + 3 * R * C * a) + 2 * stats * double(L));
  k.memory("q, k, v gradients joined (split backward)", L, L * 6 * R * C * a, L * 3 * R * C, 0);
  k.gemm("qkv dgrad GEMM", L, R, C, 3 * C, 3 * R * C * a + 3 * C * C * w + R * C * a);
  k.gemm("qkv wgrad GEMM", L, 3 * C, C, R, 3 * R * C * a + R * C * a + 3 * C * C * g);
  k.memory("embedding backward (wte scatter-add, wpe sum)", 2, 2 * R * C * a + R * kIndex + 2 * R * C * g + T * C * g,
           2 * R * C, 1);
  k.memory("tied wte gradient accumulation", 1, 3 * V * C * g, V * C, 1);
  // Optimizer: gradients are set, not zeroed (zero_grad drops them); norm, then one fused AdamW.
  const double N = double(parameter_count(s));
  k.memory("gradient norm", 2, N * g, N, 2);
  k.memory("AdamW (fused multi-tensor)", 1, N * (4 * g + 3 * g), N, 12);
  return k.take();
}

// The plan: cuBLASLt epilogues, cuDNN SDPA in bf16, fused residual + layer norm, fused classifier.
std::vector<Kernel> planned_kernels(const ModelShape& s, Precision precision) {
  StepBuilder k(s, precision);
  const double R = k.R, C = k.C, F = k.F, V = k.V, a = k.a, w = k.w, g = kF32, T = double(s.T);
  const int64_t L = s.L;
  const bool cudnn = precision == Precision::bf16;
  const double stats = double(s.B * s.H * s.T) * kStat;
  const double unit = attention_unit(s);
  // Forward. Layer norm 0 is plain; every other one (ln_2 of each block, ln_1 of blocks 1.., ln_f)
  // first adds the residual branch that ends before it.
  k.memory("token + position embedding (fused)", 1, R * kIndex + R * C * w + T * C * w + R * C * a, R * C, 1);
  k.memory("layer norm forward (block 0's ln_1)", 1, 2 * R * C * a + 2 * R * kStat, R * C, 8);
  k.memory("residual add + layer norm forward (fused)", 2 * L, 2 * L * (4 * R * C * a + 2 * R * kStat), 2 * L * R * C,
           9);
  k.gemm("qkv GEMM + bias epilogue", L, R, 3 * C, C, R * C * a + 3 * C * C * w + 3 * R * C * a);
  if (cudnn)
    k.attention("attention forward (cuDNN SDPA, strided from qkv)", L, 2 * unit, 2 * unit,
                L * 4 * R * C * a + stats * double(L));
  else
    k.attention("attention forward (SIMT, strided from qkv)", L, 2 * unit, 2 * unit,
                L * 4 * R * C * a + stats * double(L));
  k.gemm("attention projection GEMM + bias epilogue", L, R, C, C, R * C * a + C * C * w + R * C * a);
  k.gemm("MLP fc GEMM + bias + GELU epilogue (keeps pre-GELU)", L, R, F, C, R * C * a + F * C * w + 2 * R * F * a);
  k.gemm("MLP projection GEMM + bias epilogue", L, R, C, F, R * F * a + C * F * w + R * C * a);
  k.gemm("classifier GEMM (logits)", 1, R, V, C, R * C * a + V * C * w + R * V * a);
  k.memory("fused classifier: loss and logits gradient in place", 1, 3 * R * V * a + R * kStat, R * V, 7);
  // Backward. Weight gradients accumulate in place in f32 (beta = 1) with the bias gradient from the
  // epilogue; the GELU backward rides the projection's dgrad epilogue.
  k.gemm("classifier dgrad GEMM", 1, R, C, V, R * V * a + V * C * w + R * C * a);
  k.gemm("classifier wgrad GEMM (accumulates)", 1, V, C, R, R * V * a + R * C * a + 2 * V * C * g);
  k.memory("layer norm backward (adds into the residual gradient)", 2 * L + 1,
           (2 * L + 1) * (5 * R * C * a + 2 * R * kStat), (2 * L + 1) * R * C, 14);
  k.gemm("MLP projection dgrad GEMM + GELU-backward + bias-grad epilogue", L, R, F, C,
         R * C * a + C * F * w + 2 * R * F * a);
  k.gemm("MLP projection wgrad GEMM + bias-grad epilogue", L, C, F, R, R * C * a + R * F * a + 2 * C * F * g);
  k.gemm("MLP fc dgrad GEMM", L, R, C, F, R * F * a + F * C * w + R * C * a);
  k.gemm("MLP fc wgrad GEMM + bias-grad epilogue", L, F, C, R, R * F * a + R * C * a + 2 * F * C * g);
  k.gemm("attention projection dgrad GEMM", L, R, C, C, R * C * a + C * C * w + R * C * a);
  k.gemm("attention projection wgrad GEMM + bias-grad epilogue", L, C, C, R, 2 * R * C * a + 2 * C * C * g);
  if (cudnn)  // deterministic; assumed: cuDNN's engine accumulates dQ in an f32 workspace (written, read once)
    k.attention("attention backward (cuDNN SDPA, deterministic)", L, 5 * unit, 4 * unit,
                L * (3 * R * C * a + 2 * R * C * a + 3 * R * C * a + 2 * R * C * kF32) + stats * double(L));
  else
    k.attention("attention backward (SIMT, 3 launches, strided)", 3 * L, 7 * unit, 4 * unit,
                L * (3 * R * C * a + 2 * (6 * R * C * a) + 3 * R * C * a) + 2 * stats * double(L));
  k.gemm("qkv dgrad GEMM", L, R, C, 3 * C, 3 * R * C * a + 3 * C * C * w + R * C * a);
  k.gemm("qkv wgrad GEMM + bias-grad epilogue", L, 3 * C, C, R, 3 * R * C * a + R * C * a + 2 * 3 * C * C * g);
  k.memory("embedding backward (deterministic wte, wpe)", 2, 2 * R * C * a + R * kIndex + 2 * R * C * g + 2 * T * C * g,
           2 * R * C, 1);
  // Optimizer: one memset of the flat gradient buffer, the norm, one AdamW over the flat buffers
  // (in bf16 it also writes the bf16 copy of the weights that the GEMMs read).
  const double N = double(parameter_count(s));
  k.memory("zero gradients (one memset)", 1, N * g, N, 0);
  k.memory("gradient norm", 2, N * g, N, 2);
  k.memory(cudnn ? "AdamW (fused, writes the bf16 weight copy)" : "AdamW (fused)", 1,
           N * (4 * g + 3 * g + (cudnn ? 2.0 : 0.0)), N, 12);
  return k.take();
}

}  // namespace

std::vector<Kernel> step_kernels(const ModelShape& shape, Plan plan, Precision precision) {
  ENGINE_CHECK(shape.C % shape.H == 0, "step model: channels ", shape.C, " must divide into ", shape.H, " heads");
  if (plan == Plan::planned) return planned_kernels(shape, precision);
  ENGINE_CHECK(precision != Precision::bf16, "step model: today's kernels are f32 only; bf16 needs the planned plan");
  return today_kernels(shape, precision);
}

// GEMM fractions: cuBLAS SGEMM on CUDA cores ~80% of the fp32 peak at these sizes; tensor-core GEMMs
// 65% (tf32) and 70% (bf16) with K = 768. Attention: cuDNN SDPA at D = 64, T = 1024 causal ~35% of
// the bf16 peak; the SIMT kernel ~70% of its shared-memory bound. HBM: scalar loads ~60%, 128-bit
// vectorised ~80%. Launch gap ~3 µs. docs/gpu_step_model.md gives the sources.
Efficiency nominal_efficiency(Plan plan, Precision precision) {
  const double gemm = precision == Precision::fp32 ? 0.80 : precision == Precision::tf32 ? 0.65 : 0.70;
  const bool cudnn = plan == Plan::planned && precision == Precision::bf16;
  return {gemm, cudnn ? 0.35 : 0.70, plan == Plan::today ? 0.60 : 0.80, 3.0};
}

// The SIMT kernel computes one output element per thread with both operands in shared memory: every
// FMA takes two shared-memory loads (a conflict-free row and a broadcast), and an SM issues one warp
// load per clock, so an SM does at most 16 FMAs (32 flops) per clock, whatever the precision.
double attention_flops_per_second(const Gpu& gpu, Plan plan, Precision precision, const Efficiency& efficiency) {
  if (plan == Plan::planned && precision == Precision::bf16) return efficiency.attention * gpu.bf16_tflops * 1e12;
  const double shared_memory_bound = double(gpu.sm_count) * gpu.boost_ghz * 1e9 * 32.0;
  return efficiency.attention * shared_memory_bound;
}

double kernel_seconds(const Kernel& kernel, const Gpu& gpu, Plan plan, Precision precision,
                      const Efficiency& efficiency) {
  double rate = 0;  // FLOP/s
  switch (kernel.kind) {
    case KernelKind::gemm: rate = efficiency.gemm * peak_tflops(gpu, precision) * 1e12; break;
    case KernelKind::attention: rate = attention_flops_per_second(gpu, plan, precision, efficiency); break;
    case KernelKind::memory: rate = 0; break;  // its arithmetic hides under its memory traffic
  }
  const double compute = rate > 0 ? kernel.flops / rate : 0.0;
  const double memory = kernel.bytes / (efficiency.memory * gpu.hbm_tb_per_s * 1e12);
  return std::max(compute, memory) + double(kernel.launches) * efficiency.launch_us * 1e-6;
}

StepPrediction predict(const ModelShape& shape, const Gpu& gpu, Plan plan, Precision precision,
                       const Efficiency& efficiency) {
  double seconds = 0;
  for (const Kernel& kernel : step_kernels(shape, plan, precision))
    seconds += kernel_seconds(kernel, gpu, plan, precision, efficiency);
  const double tokens = double(shape.B * shape.T), achieved = llmc_model_flops(shape) / seconds;
  return {seconds, tokens / seconds, achieved / (gpu.bf16_tflops * 1e12),
          achieved / (peak_tflops(gpu, precision) * 1e12)};
}

}  // namespace apps
