// Prints the analytic model of a GPT-2 124M training step on an A100 and an H100 (apps/step_model.h):
// every kernel's launches, FLOPs, HBM bytes and predicted time, for today's kernels and the planned
// ones, in fp32, tf32 and bf16, then the step time, throughput and MFU of each. Markdown tables, as
// docs/gpu_step_model.md records them. Needs no GPU.
//
// Usage: gpu_step_model [--batch B] [--context T] [--summary]
#include <cstdio>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "apps/step_model.h"
#include "engine/error.h"

namespace {

using apps::Efficiency;
using apps::Gpu;
using apps::Kernel;
using apps::KernelKind;
using apps::ModelShape;
using apps::Plan;
using apps::Precision;

struct Variant {
  Plan plan;
  Precision precision;
};
constexpr Variant kVariants[] = {{Plan::today, Precision::fp32},
                                 {Plan::today, Precision::tf32},
                                 {Plan::planned, Precision::fp32},
                                 {Plan::planned, Precision::tf32},
                                 {Plan::planned, Precision::bf16}};

const char* kind_name(KernelKind kind) {
  switch (kind) {
    case KernelKind::gemm: return "GEMM";
    case KernelKind::attention: return "attention";
    case KernelKind::memory: return "memory";
  }
  return "?";
}

// Which roof a kernel sits under on `gpu`: compute or HBM.
const char* bound_by(const Kernel& kernel, const Gpu& gpu, const Variant& v, const Efficiency& e) {
  if (kernel.kind == KernelKind::memory) return "HBM";
  const double rate = kernel.kind == KernelKind::gemm
                          ? e.gemm * apps::peak_tflops(gpu, v.precision) * 1e12
                          : apps::attention_flops_per_second(gpu, v.plan, v.precision, e);
  return kernel.flops / rate >= kernel.bytes / (e.memory * gpu.hbm_tb_per_s * 1e12) ? "compute" : "HBM";
}

// One table per plan and precision: every kernel with its time on both GPUs.
void print_kernels(const ModelShape& shape, const Variant& v) {
  const Efficiency e = apps::nominal_efficiency(v.plan, v.precision);
  std::printf("\n### %s kernels, %s\n\n", apps::plan_name(v.plan), apps::precision_name(v.precision));
  std::printf("| kernel | kind | launches | GFLOP | GB | A100 ms | H100 ms | H100 bound |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---|\n");
  double totals[2] = {0, 0}, flops = 0, bytes = 0;
  int64_t launches = 0;
  for (const Kernel& k : apps::step_kernels(shape, v.plan, v.precision)) {
    const double a100 = apps::kernel_seconds(k, apps::kA100, v.plan, v.precision, e);
    const double h100 = apps::kernel_seconds(k, apps::kH100, v.plan, v.precision, e);
    std::printf("| %s | %s | %lld | %.1f | %.2f | %.3f | %.3f | %s |\n", k.name.c_str(), kind_name(k.kind),
                static_cast<long long>(k.launches), k.flops * 1e-9, k.bytes * 1e-9, a100 * 1e3, h100 * 1e3,
                bound_by(k, apps::kH100, v, e));
    totals[0] += a100;
    totals[1] += h100;
    flops += k.flops;
    bytes += k.bytes;
    launches += k.launches;
  }
  std::printf("| **step** | | %lld | %.1f | %.2f | %.2f | %.2f | |\n", static_cast<long long>(launches), flops * 1e-9,
              bytes * 1e-9, totals[0] * 1e3, totals[1] * 1e3);
  std::printf("\nEfficiencies: GEMM %.0f%% of the %s peak, attention %.0f%% (%s), HBM %.0f%%, %.0f µs per launch.\n",
              e.gemm * 100, apps::precision_name(v.precision), e.attention * 100,
              v.plan == Plan::planned && v.precision == Precision::bf16 ? "of the bf16 peak"
                                                                        : "of the SIMT shared-memory bound",
              e.memory * 100, e.launch_us);
}

void print_summary(const ModelShape& shape) {
  std::printf("\n### Step time and MFU\n\n");
  std::printf("MFU = (6·N + 6·L·C·T)·B·T / (step time · dense peak), as llm.c counts it, against the bf16 peak\n"
              "(the headline figure) and, in brackets, against the peak of the precision that ran.\n\n");
  std::printf("| plan | precision | A100 step ms | A100 tokens/s | A100 MFU | H100 step ms | H100 tokens/s | H100 MFU |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Variant& v : kVariants) {
    const Efficiency e = apps::nominal_efficiency(v.plan, v.precision);
    const apps::StepPrediction a100 = apps::predict(shape, apps::kA100, v.plan, v.precision, e);
    const apps::StepPrediction h100 = apps::predict(shape, apps::kH100, v.plan, v.precision, e);
    std::printf("| %s | %s | %.1f | %.0f | %.1f%% (%.0f%%) | %.1f | %.0f | %.1f%% (%.0f%%) |\n",
                apps::plan_name(v.plan), apps::precision_name(v.precision), a100.seconds * 1e3,
                a100.tokens_per_second, a100.mfu_bf16_peak * 100, a100.mfu_own_peak * 100, h100.seconds * 1e3,
                h100.tokens_per_second, h100.mfu_bf16_peak * 100, h100.mfu_own_peak * 100);
  }
  // How far the planned bf16 prediction moves if every library kernel does worse than assumed.
  Efficiency low = apps::nominal_efficiency(Plan::planned, Precision::bf16);
  low.gemm = 0.55;
  low.attention = 0.25;
  low.memory = 0.65;
  low.launch_us = 5.0;
  const apps::StepPrediction pessimistic =
      apps::predict(shape, apps::kH100, Plan::planned, Precision::bf16, low);
  std::printf("\nPlanned bf16 on the H100 with GEMMs at 55%%, attention at 25%%, HBM at 65%% and 5 µs per launch: "
              "%.1f ms, MFU %.1f%%.\n",
              pessimistic.seconds * 1e3, pessimistic.mfu_bf16_peak * 100);
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("gpu_step_model", [&] {
    ModelShape shape;
    bool summary_only = false;
    apps::CommandLine cli("gpu_step_model",
                          "The analytic model of a GPT-2 124M training step on an A100 and an H100, kernel by kernel.",
                          "gpu_step_model --batch 16 --context 1024 --summary");
    cli.option("--batch", shape.B, "batch B", 1);
    cli.option("--context", shape.T, "context T", 1);
    cli.flag("--summary", summary_only, "the summary table only, not every kernel");
    cli.parse(argc, argv);
    const double tokens = double(shape.B * shape.T);
    std::printf("## GPT-2 (L=%lld, C=%lld, H=%lld, V=%lld) training step, B=%lld, T=%lld: %.0f tokens\n\n",
                static_cast<long long>(shape.L), static_cast<long long>(shape.C), static_cast<long long>(shape.H),
                static_cast<long long>(shape.V), static_cast<long long>(shape.B), static_cast<long long>(shape.T),
                tokens);
    std::printf("Parameters N = %lld, of which %lld enter a matmul; model FLOPs (llm.c's count) %.2f TFLOP.\n",
                static_cast<long long>(apps::parameter_count(shape)),
                static_cast<long long>(apps::matmul_parameter_count(shape)),
                apps::llmc_model_flops(shape) * 1e-12);
    print_summary(shape);
    if (!summary_only)
      for (const Variant& v : kVariants) print_kernels(shape, v);
  });
}
