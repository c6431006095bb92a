// Gradients of permute by finite differences (f64), with permutations that are not their own inverse
// (3-cycles, a 4-D shuffle): PermuteBackward must apply the inverse permutation, and a transpose (its
// own inverse) cannot tell the inverse from the permutation itself.
#include <doctest/doctest.h>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("permute passes gradcheck for permutations that are not their own inverse") {
  engine::Generator gen(17);
  struct Case {
    engine::Shape shape;
    std::vector<int64_t> dims;
  };
  for (const Case& c : {Case{{2, 3, 4}, {1, 2, 0}}, Case{{2, 3, 4}, {2, 0, 1}}, Case{{2, 3, 4, 5}, {3, 1, 0, 2}}}) {
    CAPTURE(engine::shape_str(c.shape));
    const Tensor x = Tensor::randn(c.shape, gen, Dtype::f64).requires_grad_(true);
    // gradcheck weights every output element by its own random seed value, so a gradient sent back
    // through the wrong permutation lands on the wrong elements (or in the wrong shape).
    const auto fn = [&](const std::vector<Tensor>& in) { return in[0].permute(c.dims); };
    const engine::GradcheckResult result = engine::gradcheck(fn, {x});
    CHECK_MESSAGE(result.ok, result.message);
  }
}
