// An analytic model of one GPT-2 training step on a GPU, kernel by kernel: the FLOPs and HBM bytes of
// every kernel of the forward pass, the backward pass and the optimizer, and a roofline estimate of
// each kernel's time, for two kernel plans (the engine's kernels today and the planned vendor-library
// ones) in three precisions. apps/gpu_step_model prints it; docs/gpu_step_model.md records it and
// says what every number rests on.
//
//   B = batch (sequences per GPU), T = context, C = channels, L = layers, H = heads, V = vocabulary,
//   D = C / H (head size), F = 4C (MLP width), R = B·T (rows of every activation matrix),
//   E = T (T + 1) / 2 (query-key pairs a causal head scores)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace apps {

// GPT-2 small (124M) at context 1024, 16 sequences per GPU by default.
struct ModelShape {
  int64_t B = 16, T = 1024, C = 768, L = 12, H = 12, V = 50257;
};

// fp32: every GEMM on the CUDA cores; tf32: GEMMs on tensor cores with f32 storage; bf16: GEMM and
// attention operands and activations in bf16, with f32 accumulation, master weights, gradients and
// optimizer state.
enum class Precision { fp32, tf32, bf16 };
const char* precision_name(Precision precision);

// today: cublasSgemm, the hand-written SIMT attention, bias, GELU and layer norm as separate passes,
// the f32 logits and their gradient materialised (the engine's CUDA kernels as they are).
// planned: cuBLASLt with fused bias / bias+GELU epilogues and their gradient epilogues, cuDNN's
// fused attention (bf16 only: fp32 and tf32 keep the SIMT kernel), fused residual + layer norm, a
// fused classifier, 128-bit vectorised memory-bound kernels.
enum class Plan { today, planned };
const char* plan_name(Plan plan);

// What bounds a kernel: a GEMM (cuBLAS), the attention kernel, or HBM bandwidth.
enum class KernelKind { gemm, attention, memory };

// One kernel of the step, summed over its launches in the step.
struct Kernel {
  std::string name;
  KernelKind kind;
  int64_t launches;    // per step
  double flops;        // arithmetic the GPU does, recomputation included
  double model_flops;  // the model's matmul FLOPs (forward + backward) this kernel performs
  double bytes;        // HBM traffic: every tensor read and written once
};

// Every kernel of one training step (forward, backward, gradient norm, AdamW), in launch order.
// Refuses bf16 under Plan::today, whose kernels are f32 only.
std::vector<Kernel> step_kernels(const ModelShape& shape, Plan plan, Precision precision);

// A GPU's dense peaks (NVIDIA data sheets) and what the SIMT attention estimate needs.
struct Gpu {
  const char* name;
  double fp32_tflops, tf32_tflops, bf16_tflops;  // dense, no structured sparsity
  double hbm_tb_per_s;
  int sm_count;
  double boost_ghz;
};
extern const Gpu kA100;  // A100 SXM 80GB
extern const Gpu kH100;  // H100 SXM 80GB
double peak_tflops(const Gpu& gpu, Precision precision);

// The fractions of peak each kind of kernel reaches (docs/gpu_step_model.md justifies each).
struct Efficiency {
  double gemm;       // of the precision's dense tensor-core (or fp32) peak
  double attention;  // cuDNN SDPA: of the bf16 peak; SIMT kernel: of its shared-memory bound
  double memory;     // of HBM bandwidth
  double launch_us;  // gap per launch between dependent kernels
};
Efficiency nominal_efficiency(Plan plan, Precision precision);

// The attention kernel's achievable rate in FLOP/s under `plan` and `precision`.
double attention_flops_per_second(const Gpu& gpu, Plan plan, Precision precision, const Efficiency& efficiency);

// Roofline time of one kernel: max(flops / achievable rate, bytes / achievable bandwidth) plus the
// launch gaps.
double kernel_seconds(const Kernel& kernel, const Gpu& gpu, Plan plan, Precision precision,
                      const Efficiency& efficiency);

// Parameters of the model, all of them (GPT-2 124M: 124,439,808), and those that enter a matmul
// (12·L·C² + V·C: the four weight matrices per block and the tied classifier).
int64_t parameter_count(const ModelShape& shape);
int64_t matmul_parameter_count(const ModelShape& shape);

// The model FLOPs of a step as llm.c counts them for MFU, (6·N + 6·L·C·T)·B·T: 6 per parameter per
// token, plus the attention matmuls with causal masking halving the T² scores.
double llmc_model_flops(const ModelShape& shape);

// MFU against the GPU's dense bf16 peak (the headline figure llm.c and most reports quote, whatever
// precision ran) and against the dense peak of the precision that ran.
struct StepPrediction {
  double seconds;
  double tokens_per_second;
  double mfu_bf16_peak;  // llmc_model_flops / (seconds · bf16 dense peak)
  double mfu_own_peak;   // llmc_model_flops / (seconds · the precision's dense peak)
};
StepPrediction predict(const ModelShape& shape, const Gpu& gpu, Plan plan, Precision precision,
                       const Efficiency& efficiency);

}  // namespace apps
