// What SeqPE costs per training step, relative to the rest of the step (docs/seqpe.md records the
// result). The same GPT language model is trained two ways, with the optimizer step included:
//   ape      learned absolute positions (GPT-2's wpe): the baseline step
//   seqpe    SeqPE as train_lm runs it (the SPEC's text options sized to the model: encoder as wide
//            as the model with as many heads, 2 blocks, 5 digits, attn_scalar + single W_qk;
//            B_ct 16, K 32, B_tr 16, n_t 32; random shift 0.1): one encoder forward over the main
//            positions, contrastive pivots and candidates and distillation students, and the total
//            loss task + 0.1·L_ct + 0.1·L_tr
// plus, for the breakdown, SeqPE's own part alone (encoder forward and auxiliary losses, forward and
// backward, no main model). The three are interleaved step by step (their order rotating), so that
// a load change on a shared machine hits all of them alike, and each step's SeqPE time is divided by
// the neighbouring APE step's: the figures are medians over the steps of those ratios.
//
// Usage: bench_seqpe [steps] [issue6|lm|all|gpt2]   threads from OMP_NUM_THREADS
//   issue6  6 layers, width 256, 8 heads, context 256, vocab 4096, batch 8 (issue #6's benchmark)
//   lm      4 layers, width 128, 4 heads, context 128, vocab 2048, batch 8 (train_lm's defaults)
//   all     issue6 and lm
//   gpt2    the paper's GPT-2 small at its training length (12 layers, width 768, 12 heads, context
//           512, vocab 50257), batch 16: half the paper's 32 sequences per GPU, for a 24 GiB host;
//           ~1 min per step on 2 cores
//
//   B = batch, T = context, C = width, V = vocabulary
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "seqpe/seqpe_models.h"

namespace {

using engine::Tensor;

struct Setting {
  const char* name;
  int64_t layers, width, heads, context, vocab, batch;
  bool in_all;  // run by "all"
};

const Setting kSettings[] = {{"issue6", 6, 256, 8, 256, 4096, 8, true},
                             {"lm", 4, 128, 4, 128, 2048, 8, true},
                             {"gpt2", 12, 768, 12, 512, 50257, 16, false}};

models::GptConfig gpt_config(const Setting& s, const char* pe) {
  models::GptConfig c;
  c.vocab_size = s.vocab;
  c.context = s.context;
  c.layers = s.layers;
  c.channels = s.width;
  c.heads = s.heads;
  c.position_encoding = pe;
  return c;
}

struct Batch {
  Tensor inputs, targets;  // (B, T) i64
};

Batch random_batch(const Setting& s, engine::Generator& gen) {
  std::vector<int64_t> ids(size_t(s.batch * (s.context + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(s.vocab)));
  Tensor data = Tensor::from_indices(ids, {s.batch, s.context + 1});
  return {data.narrow(1, 0, s.context).contiguous(), data.narrow(1, 1, s.context).contiguous()};
}

engine::optim::AdamW make_adamw(const engine::Module& model) {
  return engine::optim::AdamW({engine::optim::ParamGroup{model.named_parameters(), 1e-4, 0.0}});
}

double seconds_of(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void bench(const Setting& s, int steps) {
  engine::Generator gen(1);
  const Batch batch = random_batch(s, gen);

  models::Gpt ape(gpt_config(s, "ape"), gen);
  auto ape_optimizer = make_adamw(ape);
  auto ape_step = [&] {
    ape_optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(ape.forward(batch.inputs, gen), batch.targets);
    loss.backward();
    ape_optimizer.step();
  };

  // train_lm's SeqPE: the default options for this model, P cut to a divisor of the batch.
  const models::GptConfig config = seqpe::with_full_seqpe_options(gpt_config(s, "seqpe"));
  seqpe::SeqPeOptions options = seqpe::seqpe_options(config);
  options.main_sampler.blocks_per_shifted_step = std::gcd(options.main_sampler.blocks_per_shifted_step, s.batch);
  auto pe = std::dynamic_pointer_cast<seqpe::SeqPe>(seqpe::make_position_encoding(config, gen, 2));
  models::Gpt model(config, gen, pe);
  auto optimizer = make_adamw(model);
  seqpe::MainPositionSampler main_sampler(options.main_sampler, 3);
  seqpe::ContrastiveSampler contrastive_sampler(options.contrastive, 4);
  seqpe::TransferSampler transfer_sampler(options.transfer, 5);
  int64_t encoded = 0;  // positions encoded by the latest step
  auto seqpe_step = [&] {
    const auto main = main_sampler.next();
    const auto contrastive = contrastive_sampler.next();
    const auto transfer = transfer_sampler.next();
    optimizer.zero_grad();
    const auto step = pe->encode_step(main, &contrastive, &transfer);
    encoded = main.positions.size() + contrastive.pivots.size() + contrastive.candidates.size() +
              (step.students.defined() ? transfer.students.size() : 0);
    Tensor loss = ops::cross_entropy(model.forward(batch.inputs, gen), batch.targets) +
                  pe->auxiliary_losses(step, &contrastive, &transfer).weighted;
    loss.backward();
    optimizer.step();
  };
  // SeqPE's part alone: the same encoder forward and auxiliary losses, forward and backward.
  const seqpe::MainPositions unshifted = main_sampler.default_positions();
  auto seqpe_part = [&] {
    const auto contrastive = contrastive_sampler.next();
    const auto transfer = transfer_sampler.next();
    pe->zero_grad();
    const auto step = pe->encode_step(unshifted, &contrastive, &transfer);
    Tensor loss = pe->auxiliary_losses(step, &contrastive, &transfer).weighted + ops::mean(step.main);
    loss.backward();
    pe->prepare({Tensor::arange(s.context), 0, 0, false, s.batch});  // consume the step plan
  };

  ape_step();  // warm-up: first-touch allocations
  seqpe_step();
  seqpe_part();
  std::vector<double> ape_s, seqpe_s, part_s, seqpe_ratio, part_ratio;
  std::vector<int64_t> encoded_counts;
  for (int i = 0; i < steps; ++i) {
    double a = 0, b = 0, c = 0;
    switch (i % 3) {  // rotate the order so that none always runs right after another
      case 0: a = seconds_of(ape_step); b = seconds_of(seqpe_step); c = seconds_of(seqpe_part); break;
      case 1: b = seconds_of(seqpe_step); c = seconds_of(seqpe_part); a = seconds_of(ape_step); break;
      default: c = seconds_of(seqpe_part); a = seconds_of(ape_step); b = seconds_of(seqpe_step); break;
    }
    ape_s.push_back(a);
    seqpe_s.push_back(b);
    part_s.push_back(c);
    seqpe_ratio.push_back(b / a);
    part_ratio.push_back(c / a);
    encoded_counts.push_back(encoded);
  }
  std::sort(encoded_counts.begin(), encoded_counts.end());
  std::printf("%s: GPT %lld layers, width %lld, %lld heads, batch %lld x %lld tokens, vocab %lld; %d threads, "
              "%d interleaved steps\n",
              s.name, (long long)s.layers, (long long)s.width, (long long)s.heads, (long long)s.batch,
              (long long)s.context, (long long)s.vocab, omp_get_max_threads(), steps);
  std::printf("  SeqPE: encoder %lld x %lld heads x %lld blocks, %lld digit slots + readout; %lld positions encoded "
              "per step (median; %lld to %lld); %lld SeqPE parameters, %lld in the APE model\n",
              (long long)options.pe.encoder.channels, (long long)options.pe.encoder.heads,
              (long long)options.pe.encoder.layers, (long long)pe->tokenizer().sequence_length(),
              (long long)encoded_counts[encoded_counts.size() / 2], (long long)encoded_counts.front(),
              (long long)encoded_counts.back(), (long long)pe->parameter_count(), (long long)ape.parameter_count());
  std::printf("  APE step              %8.1f ms (median)\n", 1e3 * median(ape_s));
  std::printf("  SeqPE step            %8.1f ms (median)   SeqPE / APE step: median %.2f  (overhead %+.0f%%)\n",
              1e3 * median(seqpe_s), median(seqpe_ratio), 100.0 * (median(seqpe_ratio) - 1.0));
  std::printf("  SeqPE part alone      %8.1f ms (median)   / APE step: median %.2f\n", 1e3 * median(part_s),
              median(part_ratio));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 21;
  const std::string which = argc > 2 ? argv[2] : "all";
  bool ran = false;
  for (const Setting& s : kSettings)
    if ((which == "all" && s.in_all) || which == s.name) {
      bench(s, steps);
      ran = true;
    }
  if (!ran) {
    std::fprintf(stderr, "bench_seqpe: unknown model '%s' (issue6, lm, all or gpt2)\n", which.c_str());
    return 1;
  }
  return 0;
}
