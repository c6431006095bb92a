// The mixed-precision setting (ops/precision.h).
#include "ops/precision.h"

#include <atomic>

#include "engine/error.h"
#include "ops/cpu/bf16_kernel.h"

namespace ops {

namespace {

std::atomic<Precision> current{Precision::fp32};

}  // namespace

Precision precision() { return current.load(std::memory_order_relaxed); }

void set_precision(Precision precision) { current.store(precision, std::memory_order_relaxed); }

Precision parse_precision(const std::string& text, const std::string& option) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  throw engine::Error(engine::detail::concat(option, " ", text, ": expected fp32 or bf16"));
}

const char* precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

std::string precision_description(Precision precision) {
  if (precision == Precision::fp32) return "fp32";
  const cpu::Bf16Kernel kernel = cpu::bf16_kernel();
  if (kernel == cpu::Bf16Kernel::fp32) return "bf16 on the fp32 fallback (rounded operands, f32 kernel)";
  return std::string("bf16 on ") + cpu::bf16_kernel_name(kernel);
}

}  // namespace ops
