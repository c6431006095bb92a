// The GPU step model's FLOP counts (apps/step_model.h): against a small case counted by hand, and
// against 6·N·tokens + the attention matmuls for GPT-2 124M; its bytes and roofline on simple cases.
#include "apps/step_model.h"

#include <doctest/doctest.h>

#include <cmath>

#include "engine/error.h"

using apps::Kernel;
using apps::KernelKind;
using apps::ModelShape;
using apps::Plan;
using apps::Precision;

namespace {

double total(const std::vector<Kernel>& kernels, KernelKind kind, double Kernel::*field) {
  double sum = 0;
  for (const Kernel& k : kernels)
    if (k.kind == kind) sum += k.*field;
  return sum;
}

}  // namespace

TEST_CASE("step model: matmul FLOPs of a tiny GPT counted by hand") {
  // L = 1, C = 4, H = 2 (D = 2), T = 3, V = 5, B = 2: R = 6 rows, F = 16.
  const ModelShape tiny{2, 3, 4, 1, 2, 5};
  // Forward GEMMs, 2·M·N·K each: qkv 2·6·12·4 = 576, attention projection 2·6·4·4 = 192, fc
  // 2·6·16·4 = 768, MLP projection 2·6·4·16 = 768, classifier 2·6·5·4 = 240: 2544. The backward does
  // twice that (dgrad and wgrad): 7632 in all.
  // Attention: a causal head scores E = 3·4/2 = 6 pairs; one matmul over them costs 2·D·E = 24 per
  // head, 24·B·H·L = 96 per step. Forward 2 (QKᵀ, P·V), backward 4 (dV, dP, dS→dQ, dK): 576.
  for (Plan plan : {Plan::today, Plan::planned})
    for (Precision precision : {Precision::fp32, Precision::tf32, Precision::bf16}) {
      if (plan == Plan::today && precision == Precision::bf16) continue;
      CAPTURE(apps::plan_name(plan));
      CAPTURE(apps::precision_name(precision));
      const std::vector<Kernel> kernels = apps::step_kernels(tiny, plan, precision);
      CHECK(total(kernels, KernelKind::gemm, &Kernel::flops) == 7632);
      CHECK(total(kernels, KernelKind::gemm, &Kernel::model_flops) == 7632);
      CHECK(total(kernels, KernelKind::attention, &Kernel::model_flops) == 576);
    }
  // The hardware recomputes scores in the backward: the SIMT kernel twice (7 matmuls, 672 FLOPs),
  // cuDNN's once (5 matmuls: 480).
  CHECK(total(apps::step_kernels(tiny, Plan::today, Precision::fp32), KernelKind::attention, &Kernel::flops) ==
        96 * 9);
  CHECK(total(apps::step_kernels(tiny, Plan::planned, Precision::bf16), KernelKind::attention,
              &Kernel::flops) == 96 * 7);
  // Parameters: 12·C² + 13·C = 244 per block, V·C = 20, T·C = 12, 2C = 8: 284; 12·C²·L + V·C = 212.
  CHECK(apps::parameter_count(tiny) == 284);
  CHECK(apps::matmul_parameter_count(tiny) == 212);
  CHECK(apps::llmc_model_flops(tiny) == (6.0 * 284 + 6.0 * 1 * 4 * 3) * 6);
}

TEST_CASE("step model: GPT-2 124M matmul FLOPs are 6·N·tokens plus the causal attention matmuls") {
  const ModelShape gpt2;  // B = 16, T = 1024
  CHECK(apps::parameter_count(gpt2) == 124439808);  // GPT-2 small, as Hugging Face counts it
  const double tokens = 16.0 * 1024;
  const std::vector<Kernel> kernels = apps::step_kernels(gpt2, Plan::planned, Precision::bf16);
  const double gemm = total(kernels, KernelKind::gemm, &Kernel::model_flops);
  const double attention = total(kernels, KernelKind::attention, &Kernel::model_flops);
  // Exactly 6 FLOPs per matmul weight per token, and 6·L·C·(T + 1) per token for causal attention.
  CHECK(gemm == 6.0 * double(apps::matmul_parameter_count(gpt2)) * tokens);
  CHECK(attention == 6.0 * 12 * 768 * 1025 * tokens);
  // llm.c's 6·N + 6·L·C·T counts every parameter (wpe and biases too, 0.7% more) and T for T + 1.
  const double llmc = apps::llmc_model_flops(gpt2);
  CHECK(std::fabs((gemm + attention) / llmc - 1) < 0.01);
  CHECK(gemm + attention < llmc);
}

TEST_CASE("step model: bytes halve with bf16 activations; the roofline takes the slower roof") {
  const ModelShape gpt2;
  const std::vector<Kernel> f32 = apps::step_kernels(gpt2, Plan::planned, Precision::fp32);
  const std::vector<Kernel> bf16 = apps::step_kernels(gpt2, Plan::planned, Precision::bf16);
  REQUIRE(f32.size() == bf16.size());
  // The classifier GEMM reads R·C activations and V·C weights and writes R·V logits.
  const double R = 16 * 1024, C = 768, V = 50257;
  CHECK(f32[8].name == "classifier GEMM (logits)");
  CHECK(f32[8].bytes == 4 * (R * C + V * C + R * V));
  CHECK(bf16[8].bytes == 2 * (R * C + V * C + R * V));

  const apps::Efficiency e{0.5, 0.5, 0.5, 0.0};
  const apps::Gpu gpu{"test", 10, 20, 40, 1.0, 1, 1.0};  // 1 TB/s
  const Kernel memory{"copy", KernelKind::memory, 1, 1e12, 0, 1e9};
  CHECK(apps::kernel_seconds(memory, gpu, Plan::planned, Precision::bf16, e) == doctest::Approx(2e-3));
  const Kernel gemm{"gemm", KernelKind::gemm, 2, 4e12, 4e12, 1e9};  // 4 TFLOP at 20 TFLOP/s: 0.2 s
  CHECK(apps::kernel_seconds(gemm, gpu, Plan::planned, Precision::bf16, e) == doctest::Approx(0.2));
  const apps::Efficiency with_launches{0.5, 0.5, 0.5, 10.0};
  CHECK(apps::kernel_seconds(gemm, gpu, Plan::planned, Precision::bf16, with_launches) ==
        doctest::Approx(0.2 + 2e-5));
  // The step is the sum of its kernels; MFU divides llm.c's model FLOPs by it and the peak.
  const apps::StepPrediction p = apps::predict(gpt2, gpu, Plan::planned, Precision::tf32, e);
  double seconds = 0;
  for (const Kernel& k : apps::step_kernels(gpt2, Plan::planned, Precision::tf32))
    seconds += apps::kernel_seconds(k, gpu, Plan::planned, Precision::tf32, e);
  CHECK(p.seconds == doctest::Approx(seconds));
  CHECK(p.mfu_own_peak == doctest::Approx(apps::llmc_model_flops(gpt2) / (seconds * 20e12)));
  CHECK(p.mfu_bf16_peak == doctest::Approx(p.mfu_own_peak / 2));
  CHECK(p.tokens_per_second == doctest::Approx(16 * 1024 / seconds));
  CHECK_THROWS_WITH_AS(apps::step_kernels(gpt2, Plan::today, Precision::bf16),
                       doctest::Contains("f32 only"), engine::Error);
}
