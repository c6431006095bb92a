// Kernel 0 of GELU: the readable version of the activation (ops::gelu in ops/elementwise.h, and
// linear's GELU epilogue in ops/matmul.h), GPT-2's tanh approximation in double, the oracle the
// tests compare the fast kernels against (ops/cpu/gelu.h):
//   gelu(x) = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
#pragma once

namespace ops::reference {

double gelu(double x);

}  // namespace ops::reference
