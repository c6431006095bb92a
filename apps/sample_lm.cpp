// Generates text from a train_lm checkpoint (any position encoding; finetune_qa's too): the prompt
// is encoded with the run's tokenizer, continued through the KV cache by greedy decoding or
// temperature sampling (optionally top-k), and printed; generation stops early at <|endoftext|> when
// the tokenizer has one. A seed makes sampling deterministic.
//
// Usage: sample_lm --checkpoint RUN/best.ckpt.safetensors [--prompt TEXT | --prompt-file FILE]
//                  [--max-new-tokens 200] [--temperature 0.8] [--top-k 200] [--seed 1337]
//                  [--device cpu|cuda] [--tf32 0|1]
// --temperature 0 decodes greedily. An empty prompt starts from <|endoftext|> (a fresh document).
// Learned APE knows only the training context: prompt plus new tokens must fit in it.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "apps/app_main.h"
#include "apps/attention_options.h"
#include "apps/cli_options.h"
#include "apps/lm_run.h"
#include "apps/qa_run.h"
#include "apps/train/device_setup.h"
#include "data/bpe_tokenizer.h"
#include "engine/denormals.h"
#include "engine/error.h"
#include "models/sampling.h"

namespace {

struct Arguments {
  std::string checkpoint, prompt;
  int64_t max_new_tokens = 200;
  models::SamplingOptions sampling{0.8, 200, std::nullopt};
  uint64_t seed = 1337;
  apps::train::DeviceSettings device;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, "cannot read the prompt file ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  std::string prompt_file;
  apps::CommandLine cli("sample_lm", "Generates text from a train_lm (or finetune_qa) checkpoint.",
                        "sample_lm --checkpoint runs/lm/seqpe/best.ckpt.safetensors --prompt 'And God said' "
                        "--max-new-tokens 100 --temperature 0");
  cli.option("--checkpoint", args.checkpoint, "the checkpoint (*.ckpt.safetensors)")->required();
  CLI::Option* prompt = cli.option("--prompt", args.prompt, "the text to continue (empty: a fresh document)");
  cli.option("--prompt-file", prompt_file, "a file holding the prompt")->excludes(prompt);
  cli.option("--max-new-tokens", args.max_new_tokens, "tokens to generate", 1);
  cli.option("--temperature", args.sampling.temperature, "sampling temperature (0: greedy)");
  cli.option("--top-k", args.sampling.top_k, "sample among the k most likely tokens", 0);
  cli.option("--seed", args.seed, "seed of the sampling");
  cli.device_options(args.device, false);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  if (!prompt_file.empty()) args.prompt = read_file(prompt_file);
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("sample_lm", [&] {
    engine::set_flush_denormal(true);  // speed only: nothing printed sees values below 1e-38
    Arguments args = parse_arguments(argc, argv);
    const engine::Device device = apps::train::setup_device("sample_lm", args.device);
    apps::TrainedModel trained = apps::load_trained_model(args.checkpoint, apps::default_qa_config(), device);
    const data::BpeTokenizer tokenizer = data::BpeTokenizer::load(trained.tokenizer_dir + "/vocab.json",
                                                                  trained.tokenizer_dir + "/merges.txt");
    ENGINE_CHECK(tokenizer.vocab_size() == trained.vocab_size, "the tokenizer in ", trained.tokenizer_dir,
                 " has ", tokenizer.vocab_size(), " tokens, the model ", trained.vocab_size);

    std::vector<data::TokenId> prompt = tokenizer.encode(args.prompt);
    if (prompt.empty()) {
      ENGINE_CHECK(tokenizer.end_of_text(), "the prompt is empty and the tokenizer has no ",
                   data::kEndOfText, " to start from: pass --prompt");
      prompt.push_back(*tokenizer.end_of_text());
    }
    if (tokenizer.end_of_text()) args.sampling.stop_token = *tokenizer.end_of_text();
    const int64_t context = trained.run.at("context").get<int64_t>();
    const int64_t T0 = int64_t(prompt.size());
    ENGINE_CHECK(trained.run.at("pe") != "ape" || T0 + args.max_new_tokens <= context, "learned APE has ",
                 context, " positions but the prompt (", T0, " tokens) plus --max-new-tokens ", args.max_new_tokens,
                 " need ", T0 + args.max_new_tokens, ": shorten them");

    const std::vector<int64_t> ids(prompt.begin(), prompt.end());
    engine::Generator gen(args.seed);
    const auto start = std::chrono::steady_clock::now();
    const engine::Tensor prompt_tokens = engine::Tensor::from_indices(ids, {1, T0}).to(device);
    const engine::Tensor tokens = trained.model.gpt->generate(prompt_tokens, args.max_new_tokens, args.sampling, gen);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<int64_t> all = tokens.to_vector<int64_t>();
    std::vector<data::TokenId> generated(all.begin() + T0, all.end());
    const std::optional<int64_t> stop = args.sampling.stop_token;
    const bool stopped = stop && !generated.empty() && generated.back() == *stop;
    if (stopped) generated.pop_back();
    std::printf("sample_lm: %s (pe %s, step %lld), temperature %g, top-k %lld, seed %llu\n\n", args.checkpoint.c_str(),
                trained.run.at("pe").get<std::string>().c_str(), (long long)trained.step, args.sampling.temperature,
                (long long)args.sampling.top_k, (unsigned long long)args.seed);
    std::printf("%s%s\n\n", args.prompt.c_str(), tokenizer.decode(generated).c_str());
    std::printf("%zu new tokens in %.2f s (%.1f tokens/s)%s\n", generated.size() + (stopped ? 1 : 0), seconds,
                double(all.size() - size_t(T0)) / seconds, stopped ? ", stopped at <|endoftext|>" : "");
  });
}
