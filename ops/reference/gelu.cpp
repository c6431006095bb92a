// Kernel 0 of GELU (ops/reference/gelu.h): the formula as written.
#include "ops/reference/gelu.h"

#include <cmath>
#include <numbers>

namespace ops::reference {

double gelu(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

}  // namespace ops::reference
