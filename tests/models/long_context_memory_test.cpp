// Evaluating a GPT trained at length T on 16·T tokens must take memory linear in the length: the
// attention op works in tiles of keys with an online softmax and no PE materialises a (T × T)
// tensor (RoPE rotates q and k, ALiBi's bias is computed inside the op). Measured with the host
// allocator's peak over one evaluation forward.
//
//   T = evaluation length, C = width, H = heads, V = vocabulary
#include <doctest/doctest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "models/model_config.h"

using engine::Tensor;

namespace {

// Bytes the allocator's peak rose above what was in use before one no-grad forward of T tokens.
size_t evaluation_peak(models::Gpt& model, int64_t T, engine::Generator& gen) {
  std::vector<int64_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = int64_t(gen.randint(50));
  const Tensor tokens = Tensor::from_indices(ids, {1, T});
  engine::NoGradGuard no_grad;
  engine::Allocator& allocator = engine::cpu_allocator();
  allocator.reset_peak_stats();
  const size_t before = allocator.stats().bytes_in_use;
  Tensor logits = model.forward(tokens, gen);
  CHECK(logits.shape() == engine::Shape{1, T, 50});
  return allocator.stats().peak_bytes_in_use - before;
}

}  // namespace

TEST_CASE("a GPT trained at T = 32 evaluates at 16·T = 512 in linear memory (rope, alibi)") {
  for (const std::string pe : {"rope", "alibi"}) {
    CAPTURE(pe);
    engine::Generator gen(41);
    const models::GptConfig config = models::gpt_config_from_json(
        {{"vocab_size", 50}, {"context", 32}, {"layers", 2}, {"channels", 32}, {"heads", 4},
         {"position_encoding", pe}});
    models::Gpt model(config, gen, models::make_position_encoding(config, gen));
    model.eval();
    evaluation_peak(model, 32, gen);  // warm-up: the first call may size lazily built tables
    const size_t short_peak = evaluation_peak(model, 32, gen);
    const size_t long_peak = evaluation_peak(model, 512, gen);
    MESSAGE(pe << ": peak " << short_peak << " B at T = 32, " << long_peak << " B at T = 512 ("
               << double(long_peak) / double(short_peak) << "x for 16x the tokens)");
    // Linear growth gives ~16x; one (H, 512, 512) f32 score tensor alone would be 4 MiB, far more
    // than 24x the short peak (~50 KiB). 64 KiB of slack for fixed-size buffers.
    CHECK(long_peak < 24 * short_peak + 64 * 1024);
    CHECK(long_peak > 8 * short_peak);  // the measure does see the activations grow
  }
}
