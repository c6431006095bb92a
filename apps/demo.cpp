// The smallest end-to-end run of the engine: a character-level GPT learns an embedded
// public-domain text (Lincoln's Gettysburg Address) and prints its falling loss, then a greedy
// sample. Usage: demo [steps]   (OMP_NUM_THREADS sets the threads)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "engine/autograd.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"

namespace {

const char* kText =
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
    "Liberty, and dedicated to the proposition that all men are created equal. Now we are engaged in a great civil "
    "war, testing whether that nation, or any nation so conceived and so dedicated, can long endure. We are met on a "
    "great battle-field of that war. We have come to dedicate a portion of that field, as a final resting place for "
    "those who here gave their lives that that nation might live. It is altogether fitting and proper that we "
    "should do this. But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- "
    "this ground. The brave men, living and dead, who struggled here, have consecrated it, far above our poor power "
    "to add or detract. The world will little note, nor long remember what we say here, but it can never forget "
    "what they did here. It is for us the living, rather, to be dedicated here to the unfinished work which they "
    "who fought here have thus far so nobly advanced. It is rather for us to be here dedicated to the great task "
    "remaining before us -- that from these honored dead we take increased devotion to that cause for which they "
    "gave the last full measure of devotion -- that we here highly resolve that these dead shall not have died in "
    "vain -- that this nation, under God, shall have a new birth of freedom -- and that government of the people, "
    "by the people, for the people, shall not perish from the earth.";

// Trains the character-level GPT for the command line's steps, then prints a greedy sample.
void demo(int argc, char** argv) {
  using engine::Tensor;
  int64_t steps = 300;
  apps::CommandLine cli("demo", "A character-level GPT learns the Gettysburg Address, then writes a greedy sample.",
                        "OMP_NUM_THREADS=2 demo 300");
  cli.option("steps", steps, "training steps", 1);
  cli.parse(argc, argv);
  const std::string text = kText;
  const int64_t vocab = 128, context = 64, batch = 16;

  models::GptConfig config;
  config.vocab_size = vocab;
  config.context = context;
  config.layers = 2;
  config.channels = 64;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  engine::Generator gen(1337);
  models::Gpt model(config, gen);
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 3e-3, 0.0}});
  engine::optim::LrSchedule schedule({engine::optim::LrDecay::cosine, 20, steps, 0.0, 3e-4, true});
  std::printf("char-level GPT: %lld parameters, %zu characters of text, %lld steps of %lld x %lld tokens\n",
              (long long)model.parameter_count(), text.size(), (long long)steps, (long long)batch, (long long)context);
  std::printf("loss at step 0 should be near ln(%lld) = %.3f\n", (long long)vocab, std::log(double(vocab)));

  auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    // A batch of random windows: inputs are characters t..t+T-1, targets t+1..t+T.
    std::vector<int64_t> inputs, targets;
    for (int64_t b = 0; b < batch; ++b) {
      const size_t at = size_t(gen.randint(text.size() - size_t(context) - 1));
      for (int64_t t = 0; t < context; ++t) {
        inputs.push_back(static_cast<unsigned char>(text[at + size_t(t)]) % vocab);
        targets.push_back(static_cast<unsigned char>(text[at + size_t(t) + 1]) % vocab);
      }
    }
    schedule.apply(optimizer);
    optimizer.zero_grad();
    Tensor logits = model.forward(Tensor::from_indices(inputs, {batch, context}), gen);
    Tensor loss = ops::cross_entropy(logits, Tensor::from_indices(targets, {batch, context}));
    loss.backward();
    engine::optim::clip_grad_norm(model.parameters(), 1.0);
    optimizer.step();
    if (step % 25 == 0 || step == steps - 1) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4lld  loss %.4f  %.0f tokens/s\n", (long long)step, loss.item(),
                  double((step + 1) * batch * context) / seconds);
    }
  }

  // Greedy continuation of the opening words.
  engine::NoGradGuard no_grad;
  model.eval();
  std::string sample = "Four score and seven";
  for (int i = 0; i < 60; ++i) {
    const std::string window = sample.substr(sample.size() > size_t(context) ? sample.size() - size_t(context) : 0);
    std::vector<int64_t> ids;
    for (char c : window) ids.push_back(static_cast<unsigned char>(c) % vocab);
    const int64_t T = int64_t(ids.size());
    std::vector<float> last = model.forward(Tensor::from_indices(ids, {1, T}), gen).select(1, T - 1).to_vector<float>();
    size_t best = 0;
    for (size_t v = 1; v < last.size(); ++v)
      if (last[v] > last[best]) best = v;
    sample += char(best);
  }
  std::printf("sample: %s\n", sample.c_str());
}

}  // namespace

int main(int argc, char** argv) { return apps::run_app("demo", [&] { demo(argc, argv); }); }
