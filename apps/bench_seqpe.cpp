// What SeqPE costs per training step, relative to the rest of the step (docs/seqpe.md records the
// result). The same GPT language model is trained two ways, with the optimizer step included:
//   ape      learned absolute positions (GPT-2's wpe): the baseline step
//   seqpe    SeqPE as train_lm runs it (the reference's text options (docs/method.md#language-modelling) sized to the model: encoder as wide
//            as the model with as many heads, 2 blocks, 5 digits, attn_scalar + single W_qk;
//            B_ct 16, K 32, B_tr 16, n_t 32; random shift 0.1): one encoder forward over the main
//            positions, contrastive pivots and candidates and distillation students, and the total
//            loss task + 0.1·L_ct + 0.1·L_tr
// plus, for the breakdown, SeqPE's own part alone (encoder forward and auxiliary losses, forward and
// backward, no main model). The three are interleaved step by step (their order rotating), so that
// a load change on a shared machine hits all of them alike, and each step's SeqPE time is divided by
// the neighbouring APE step's: the figures are medians over the steps of those ratios. The overhead
// splits into SeqPE's part and the rest, the position term's way through the model (W_qk, the
// attn_scalar logits and their use in attention); beside them, the arithmetic floor: SeqPE's own
// FLOPs (encoder over every encoded position, W_qk, the logits) against the model's. Last, the
// model's attention alone, all layers forward and backward as in a step (q, k, v views of one
// projection, causal, dropout 0.1), interleaved in three forms: plain (APE), attn_scalar's term as the
// widened [q; α·pq]·[k; pk] (the form before the score bias, and the one used under no grad), and as
// the score bias built once per step: what the term costs inside attention, against SeqPE's overhead.
//
// Usage: bench_seqpe [steps] [gpt6x256|lm|all|gpt2] [attention]   threads from OMP_NUM_THREADS;
//   `attention` runs only the comparison of the attention forms
//   gpt6x256  6 layers, width 256, 8 heads, context 256, vocab 4096, batch 8 (apps/bench's GPT step, the PyTorch peer's configuration)
//   lm      4 layers, width 128, 4 heads, context 128, vocab 2048, batch 8 (train_lm's defaults)
//   all     gpt6x256 and lm
//   gpt2    the paper's GPT-2 small at its training length (12 layers, width 768, 12 heads, context
//           512, vocab 50257), batch 16: half the paper's 32 sequences per GPU, for a 24 GiB host;
//           ~1 min per step on 2 cores
//
//   B = batch, T = context, C = width, V = vocabulary
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "engine/error.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "seqpe/seqpe_models.h"

namespace {

using engine::Tensor;

struct Setting {
  const char* name;
  int64_t layers, width, heads, context, vocab, batch;
  bool in_all;  // run by "all"
};

const Setting kSettings[] = {{"gpt6x256", 6, 256, 8, 256, 4096, 8, true},
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

// Multiply-adds of a training step's forward (the backward is ~2× it, for both models alike) of the
// GPT, as docs/seqpe.md counts them: 12·C² per token per block (projections and MLP), 2·T·C for
// attention, C·V for the tied LM head.
double model_forward_macs(const Setting& s) {
  const double C = double(s.width), L = double(s.layers), tokens = double(s.batch * s.context);
  return tokens * (L * (12.0 * C * C + 2.0 * double(s.context) * C) + C * double(s.vocab));
}

// The same for SeqPE's own arithmetic: the encoder over `encoded` positions of S = digits + readout
// tokens, as it runs (the first block's QKV on the 51 distinct tokens, not per position: 9·Ce² per
// token; middle blocks 12·Ce²; the last block's keys and values for every token and the rest for the
// readout only: (2·S + 10)·Ce²; the readout projection Ce·O), and per forward W_qk over the main
// positions (P·T, O -> 2·O) and the attn_scalar logits pq·pkᵀ ((P, H', T, T) from E-wide vectors).
double seqpe_forward_macs(const seqpe::SeqPeConfig& pe, int64_t encoded, int64_t blocks, int64_t context) {
  const double Ce = double(pe.encoder.channels), Le = double(pe.encoder.layers);
  const double S = double(pe.encoder.sequence_length() + 1), O = double(pe.out_features());
  const double per_position = (9.0 * S + 12.0 * S * std::max(Le - 2.0, 0.0) + 2.0 * S + 10.0) * Ce * Ce + Ce * O;
  const double main_positions = double(blocks * context);
  return double(encoded) * per_position + main_positions * O * 2.0 * O + main_positions * double(context) * O;
}

enum class PositionTerm { none, widened, score_bias };

// One step's attention in every layer, forward and backward, as the GPT runs it: q, k, v views of a
// (B, T, 3C) projection, causal, scale 1/sqrt(d), dropout 0.1; with attn_scalar's term from pq, pk
// (1, H, T, d) (an unshifted step: P = 1) in `form`.
double attention_step_seconds(const Setting& s, PositionTerm form, const Tensor& qkv, const Tensor& pq,
                              const Tensor& pk, const Tensor& seed, engine::Generator& gen) {
  const int64_t B = s.batch, T = s.context, C = s.width, H = s.heads, d = C / H;
  return seconds_of([&] {
    const std::vector<Tensor> parts = ops::split(qkv, {C, C, C}, 2);
    auto heads = [&](const Tensor& part) { return part.view({B, T, H, d}).permute({0, 2, 1, 3}); };
    ops::AttentionOptions options;
    options.causal = true;
    options.scale = 1.0 / std::sqrt(double(d));
    options.dropout_p = 0.1;
    options.dropout_gen = &gen;
    if (form == PositionTerm::score_bias) options.score_bias = ops::matmul(pq, pk, false, true) * options.scale;
    Tensor total;
    for (int64_t layer = 0; layer < s.layers; ++layer) {
      Tensor q = heads(parts[0]), k = heads(parts[1]);
      if (form == PositionTerm::widened) {
        q = ops::concat({q, pq.expand(q.shape())}, 3);
        k = ops::concat({k, pk.expand(k.shape())}, 3);
      }
      Tensor y = ops::attention(q, k, heads(parts[2]), options);
      total = total.defined() ? total + y : y;
    }
    total.backward(seed);
  });
}

// The model's attention alone in the three forms, interleaved (order rotating), medians over `steps`;
// `overhead` (SeqPE step − APE step, seconds; 0 when not measured) puts the term's cost beside it.
void compare_attention_forms(const Setting& s, int steps, double overhead) {
  engine::Generator gen(2);
  const int64_t H = s.heads, d = s.width / s.heads;
  const Tensor qkv = Tensor::randn({s.batch, s.context, 3 * s.width}, gen).requires_grad_();
  const Tensor pq = Tensor::randn({1, H, s.context, d}, gen).requires_grad_();
  const Tensor pk = Tensor::randn({1, H, s.context, d}, gen).requires_grad_();
  const Tensor seed = Tensor::randn({s.batch, H, s.context, d}, gen);
  const PositionTerm forms[] = {PositionTerm::none, PositionTerm::widened, PositionTerm::score_bias};
  std::vector<double> form_s[3];
  for (int i = 0; i <= steps; ++i)
    for (int f = 0; f < 3; ++f) {
      const int which = (f + i) % 3;
      const double t = attention_step_seconds(s, forms[which], qkv, pq, pk, seed, gen);
      if (i > 0) form_s[which].push_back(t);  // i = 0 warms up
    }
  const double plain = median(form_s[0]), widened = median(form_s[1]), biased = median(form_s[2]);
  std::printf("  attention of the %lld layers, forward + backward (medians of %d): plain %.1f ms, attn_scalar "
              "widened %.1f ms (%+.1f), as a score bias %.1f ms (%+.1f)",
              (long long)s.layers, steps, 1e3 * plain, 1e3 * widened, 1e3 * (widened - plain), 1e3 * biased,
              1e3 * (biased - plain));
  if (overhead > 0.0)
    std::printf(": %.0f%% of the SeqPE overhead (%.0f%% widened)", 100.0 * (biased - plain) / overhead,
                100.0 * (widened - plain) / overhead);
  std::printf("\n");
  std::fflush(stdout);
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
  int64_t encoded = 0, blocks = 1;  // positions encoded by the latest step, its position blocks
  auto seqpe_step = [&] {
    const auto main = main_sampler.next();
    blocks = main.num_blocks();
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
  std::vector<double> ape_s, seqpe_s, part_s, seqpe_ratio, part_ratio, rest_ratio, floors;
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
    rest_ratio.push_back((b - a - c) / a);
    encoded_counts.push_back(encoded);
    floors.push_back(seqpe_forward_macs(options.pe, encoded, blocks, s.context) / model_forward_macs(s));
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
  std::printf("  overhead split        SeqPE part %+.0f%%, rest (W_qk, attn_scalar logits, attention) %+.0f%% "
              "of an APE step (medians); arithmetic floor: SeqPE / model multiply-adds = %.3f\n",
              100.0 * median(part_ratio), 100.0 * median(rest_ratio), median(floors));

  compare_attention_forms(s, steps, median(seqpe_s) - median(ape_s));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("bench_seqpe", [&] {
    int steps = 21;
    std::string which = "all", attention;
    apps::CommandLine cli("bench_seqpe", "What SeqPE costs per training step, against the same GPT with learned APE.",
                          "OMP_NUM_THREADS=2 bench_seqpe 21 lm");
    cli.option("steps", steps, "timed steps of each form (the figures are medians over them)", 1);
    cli.option("model", which, "gpt6x256, lm, all (both) or gpt2");
    cli.option("attention", attention, "'attention': only the comparison of the attention forms");
    cli.parse(argc, argv);
    ENGINE_CHECK(attention.empty() || attention == "attention", "the third argument may only be 'attention', got '",
                 attention, "'");
    bool ran = false;
    for (const Setting& s : kSettings)
      if ((which == "all" && s.in_all) || which == s.name) {
        if (!attention.empty()) {
          std::printf("%s: attention only, %d threads\n", s.name, omp_get_max_threads());
          compare_attention_forms(s, steps, 0.0);
        } else {
          bench(s, steps);
        }
        ran = true;
      }
    ENGINE_CHECK(ran, "unknown model '", which, "' (gpt6x256, lm, all or gpt2)");
  });
}
