// What SeqPE costs per training step, relative to the rest of the step (docs/seqpe.md records the
// result). A small GPT language model is trained for a few steps three ways, with the optimizer
// step included in each:
//   nope     the model alone (no position encoding): "the rest of the step"
//   seqpe    SeqPE attn_scalar + single W_qk, with the spec's step: one encoder forward over the main
//            positions, contrastive pivots and candidates and distillation students, and the total
//            loss task + 0.1·L_ct + 0.1·L_tr
//   encoder  the SeqPE step's encoder forward and auxiliary losses, forward and backward, alone
// The medians of each are printed; SeqPE's overhead is seqpe − nope.
//
// Usage: bench_seqpe [steps]    threads from OMP_NUM_THREADS
//
//   B = batch, T = block length, C = width, V = vocabulary
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "apps/bench_timing.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "seqpe/seqpe_position_encoding.h"

namespace {

using engine::Tensor;

constexpr int64_t kBatch = 8, kBlock = 256, kWidth = 256, kHeads = 4, kLayers = 4, kVocab = 4096;

models::GptConfig lm_config(const char* pe) {
  models::GptConfig c;
  c.vocab_size = kVocab;
  c.context = kBlock;
  c.layers = kLayers;
  c.channels = kWidth;
  c.heads = kHeads;
  c.position_encoding = pe;
  return c;
}

// The text configuration (SPEC 9) scaled to the small LM: encoder width = model width with 64-wide
// heads, 2 blocks, 5 digits; samplers at the spec's per-GPU sizes (B_ct 16, K 32, B_tr 16, n_t 32).
seqpe::SeqPeConfig seqpe_config() {
  seqpe::SeqPeConfig c = seqpe::SeqPeConfig::text_defaults();
  c.encoder.channels = kWidth;
  c.encoder.heads = kWidth / 64;
  c.encoder.out_features = kWidth;
  c.model_width = kWidth;
  c.model_heads = kHeads;
  c.model_layers = kLayers;
  c.transfer_heads = kWidth / 64;
  return c;
}

struct Batch {
  Tensor inputs, targets;  // (B, T) i64
};

Batch random_batch(engine::Generator& gen) {
  std::vector<int64_t> ids(size_t(kBatch * (kBlock + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(kVocab)));
  Tensor data = Tensor::from_indices(ids, {kBatch, kBlock + 1});
  return {data.narrow(1, 0, kBlock).contiguous(), data.narrow(1, 1, kBlock).contiguous()};
}

engine::optim::AdamW make_adamw(const engine::Module& model) {
  return engine::optim::AdamW({engine::optim::ParamGroup{model.named_parameters(), 1e-4, 0.0}});
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 5;
  engine::Generator gen(1);
  const Batch batch = random_batch(gen);
  std::printf("SeqPE step cost: GPT %lld layers, width %lld, %lld heads, batch %lld x %lld tokens, vocab %lld; "
              "%d threads, median of %d steps\n",
              (long long)kLayers, (long long)kWidth, (long long)kHeads, (long long)kBatch, (long long)kBlock,
              (long long)kVocab, omp_get_max_threads(), steps);

  models::Gpt nope(lm_config("nope"), gen);
  auto nope_optimizer = make_adamw(nope);
  const double nope_s = median_seconds([&] {
    nope_optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(nope.forward(batch.inputs, gen), batch.targets);
    loss.backward();
    nope_optimizer.step();
  }, 1, steps);

  auto pe = std::make_shared<seqpe::SeqPe>(seqpe_config(), gen);
  models::Gpt model(lm_config("seqpe"), gen, pe);
  auto optimizer = make_adamw(model);
  seqpe::MainPositionSamplerConfig main_config;
  main_config.block_shape = {kBlock};
  main_config.blocks_per_shifted_step = 2;
  seqpe::MainPositionSampler main_sampler(main_config, 1);
  seqpe::ContrastiveSampler contrastive_sampler(seqpe::ContrastiveSamplerConfig::text_defaults(), 2);
  seqpe::TransferSamplerConfig transfer_config = seqpe::TransferSamplerConfig::text_defaults();
  transfer_config.block_shape = {kBlock};
  seqpe::TransferSampler transfer_sampler(transfer_config, 3);
  // Unshifted steps (the 90 % case, and the costlier one: the distillation students are encoded).
  const seqpe::MainPositions main = main_sampler.default_positions();

  const double seqpe_s = median_seconds([&] {
    const auto contrastive = contrastive_sampler.next();
    const auto transfer = transfer_sampler.next();
    optimizer.zero_grad();
    const auto step = pe->encode_step(main, &contrastive, &transfer);
    Tensor loss = ops::cross_entropy(model.forward(batch.inputs, gen), batch.targets) +
                  pe->auxiliary_losses(step, &contrastive, &transfer).weighted;
    loss.backward();
    optimizer.step();
  }, 1, steps);

  const double encoder_s = median_seconds([&] {
    const auto contrastive = contrastive_sampler.next();
    const auto transfer = transfer_sampler.next();
    pe->zero_grad();
    const auto step = pe->encode_step(main, &contrastive, &transfer);
    Tensor loss = pe->auxiliary_losses(step, &contrastive, &transfer).weighted + ops::mean(step.main);
    loss.backward();
    pe->prepare({Tensor::arange(kBlock), 0, 0, false, kBatch});  // consume the step plan
  }, 1, steps);

  const int64_t positions = main.positions.size() + 16 + 16 * 32 + 16 * 32;
  std::printf("  encoder: %lld positions of %lld digits per step, %lld SeqPE parameters (model without PE: %lld)\n",
              (long long)positions, (long long)pe->tokenizer().sequence_length(), (long long)pe->parameter_count(),
              (long long)nope.parameter_count());
  std::printf("  nope  step  %8.1f ms\n", 1e3 * nope_s);
  std::printf("  seqpe step  %8.1f ms   overhead %+.1f ms = %.0f%% of the rest of the step\n", 1e3 * seqpe_s,
              1e3 * (seqpe_s - nope_s), 100.0 * (seqpe_s - nope_s) / nope_s);
  std::printf("  encoder + auxiliary losses alone (fwd + bwd) %8.1f ms\n", 1e3 * encoder_s);
  return 0;
}
