// Which kernel runs the CPU's bf16 products (f32 inputs rounded to bf16, f32 accumulation): AMX
// tiles (TDPBF16PS) where the CPU and Linux allow them, AVX512-BF16 (VDPBF16PS) where the CPU has
// only that, the f32 kernel otherwise. Chosen once per process from CPUID; the environment variable
// ENGINE_BF16_KERNEL (amx | avx512_bf16 | fp32) or set_bf16_kernel forces one, so tests and
// benchmarks can run each kernel the CPU has. docs/gemm.md.
#pragma once

namespace ops::cpu {

enum class Bf16Kernel { amx, avx512_bf16, fp32 };

// "AMX", "AVX512-BF16" or "fp32 fallback": what the benchmarks and the training logs print.
const char* bf16_kernel_name(Bf16Kernel kernel);

// Whether this CPU (and, for AMX, Linux's permission to use the tile data) can run `kernel`. The
// first call for AMX asks Linux for the tile-data permission, once per process.
bool bf16_kernel_available(Bf16Kernel kernel);

// The kernel in use: forced by set_bf16_kernel or ENGINE_BF16_KERNEL, else the fastest available.
// Throws when ENGINE_BF16_KERNEL names an unknown kernel or one this CPU lacks.
Bf16Kernel bf16_kernel();

// Forces `kernel` for the rest of the process (tests); throws when it is not available here.
void set_bf16_kernel(Bf16Kernel kernel);

}  // namespace ops::cpu
