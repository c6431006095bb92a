// Choosing the next token from a language model's logits: greedy (argmax) or temperature sampling,
// optionally among the k most likely tokens only (top-k), as Hugging Face's generate() does with
// do_sample, temperature and top_k.
//
//   B = batch, V = vocabulary
#pragma once

#include <cstdint>
#include <optional>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace models {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy; > 0: sample from softmax(logits / temperature)
  int64_t top_k = 0;       // > 0: sample among the k highest logits only (ignored when greedy)
  // Generation stops once every row has produced this token (e.g. <|endoftext|>).
  std::optional<int64_t> stop_token;
};

// logits (B, V) -> (B, 1) i64 on the logits' device: per row the argmax (the first on ties) when
// the temperature is 0, else a draw from the tempered, top-k-restricted softmax using one
// gen.uniform() per row, so a seeded generator reproduces the draws.
engine::Tensor next_tokens(const engine::Tensor& logits, const SamplingOptions& options, engine::Generator& gen);

}  // namespace models
