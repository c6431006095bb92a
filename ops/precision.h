// The mixed-precision setting of matrix products: fp32, or bf16 (PyTorch's autocast to bf16 with f32
// storage). With bf16, the GEMMs of matmul and linear on f32 tensors, forward and backward, round
// their operands to bf16 (nearest even) and sum the products in f32: on the CPU in
// ops::cpu::gemm_bf16 (AMX or AVX512-BF16 where the CPU has them), on CUDA in cuBLASLt from bf16
// copies of the operands (ops/cuda/gemm.h). On the CPU the attention op's tile products (Q·Kᵀ, P·V
// and those of its backward; more than 16 keys) do the same; on CUDA, attention runs cuDNN's fused
// attention on bf16 copies of q, k, v by default (ops/attention.h: --attention, and the calls cuDNN
// cannot express). Tensors, parameters (the f32 master weights), AdamW's moments and gradients
// stay f32; the bias and GELU epilogues act on the f32 sums; everything else (attention's softmax
// and its statistics, layer norm, softmax, cross-entropy, the losses, the gradient norm, the
// optimizer) runs in f32 as before.
// f64 tensors (gradient checks) are not affected. TF32 (ops/cuda/gemm.h) is the separate f32-GEMM
// option on GPUs.
//
// Process-wide, fp32 unless set; a backward runs in the precision its forward ran in. bf16 needs no
// loss scaling: it keeps f32's exponent range, so small gradients do not underflow as in fp16.
#pragma once

#include <string>

namespace ops {

enum class Precision { fp32, bf16 };

Precision precision();
void set_precision(Precision precision);

// "fp32" or "bf16", as --precision spells them; the error names `option` (e.g. "--precision").
Precision parse_precision(const std::string& text, const std::string& option = "--precision");
const char* precision_name(Precision precision);

// What runs the products of `precision` here, for the log line of a run: "fp32", or "bf16 on AMX",
// "bf16 on AVX512-BF16", "bf16 on the fp32 fallback (rounded operands, f32 kernel)".
std::string precision_description(Precision precision);

// Sets the precision for its lifetime, then restores the previous one.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision precision) : previous_(ops::precision()) { set_precision(precision); }
  ~PrecisionScope() { set_precision(previous_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision previous_;
};

}  // namespace ops
