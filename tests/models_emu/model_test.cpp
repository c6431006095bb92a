// GPT, ViT and SeqPE under the kernel emulator against the CPU (tests/common/model_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/model_checks.h"

TEST_CASE("a tiny GPT on emulated CUDA matches the CPU with each position encoding") {
  if (!cuda_ready()) return;
  for (const std::string pe : {"ape", "sin", "rope", "alibi", "nope", "seqpe"}) {
    CAPTURE(pe);
    model_checks::check_gpt(pe);
  }
}

TEST_CASE("a tiny ViT on emulated CUDA matches the CPU with each position encoding") {
  if (!cuda_ready()) return;
  for (const std::string pe : {"ape", "rope2d", "rope_mixed", "seqpe"}) {
    CAPTURE(pe);
    model_checks::check_vit(pe);
  }
}
