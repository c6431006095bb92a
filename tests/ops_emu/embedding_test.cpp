// embedding on the emulated CUDA backend against the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/embedding_checks.h"

TEST_CASE("embedding on emulated CUDA matches the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(47);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64})
    for (engine::Dtype index_dtype : {engine::Dtype::i32, engine::Dtype::i64}) {
      CAPTURE(engine::dtype_name(dtype));
      CAPTURE(engine::dtype_name(index_dtype));
      embedding_checks::check_embedding(gen, dtype, index_dtype);
    }
}
