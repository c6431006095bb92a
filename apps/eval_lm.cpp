// Evaluates a train_lm checkpoint: token perplexity at a list of lengths by SEQPE_SPEC.md §9's
// protocol (non-overlapping chunks of each length, the last partial chunk kept, batch 1, each
// chunk scored alone at positions 0..L-1; learned APE linearly interpolated beyond its training
// length, every other PE extended). Prints a markdown table and writes a CSV.
//
// Usage: eval_lm --checkpoint RUN/best.ckpt.safetensors [--lengths 128,256,512] [--split valid|test]
//                [--corpus DIR] [--max-tokens N] [--csv FILE]
// The run config is read from the model.json beside the checkpoint (<name>.model.json for
// <name>.ckpt.safetensors); --corpus overrides its corpus (the tokenizer must be the same).
// CSV columns: run, pe, split, length, tokens, nll_per_token, token_ppl.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/lm_run.h"
#include "data/text_corpus.h"
#include "engine/checkpoint.h"
#include "engine/error.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Arguments {
  std::string checkpoint, split = "valid", corpus, csv;
  std::vector<int64_t> lengths;
  int64_t max_tokens = 0;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  std::string lengths;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, "eval_lm: ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--checkpoint") args.checkpoint = value;
    else if (flag == "--lengths") lengths = value;
    else if (flag == "--split") args.split = value;
    else if (flag == "--corpus") args.corpus = value;
    else if (flag == "--csv") args.csv = value;
    else if (flag == "--max-tokens") args.max_tokens = std::stoll(value);
    else ENGINE_CHECK(false, "eval_lm: unknown option ", flag);
  }
  ENGINE_CHECK(!args.checkpoint.empty(), "eval_lm: --checkpoint is required");
  std::stringstream list(lengths);
  for (std::string item; std::getline(list, item, ',');) args.lengths.push_back(std::stoll(item));
  return args;
}

// "<dir>/<name>.model.json" beside "<dir>/<name>.ckpt.safetensors".
fs::path model_json_path(const fs::path& checkpoint) {
  std::string name = checkpoint.filename().string();
  const std::string suffix = ".ckpt.safetensors";
  ENGINE_CHECK(name.size() > suffix.size() && name.ends_with(suffix), "eval_lm: expected a *", suffix,
               " checkpoint, got ", checkpoint.string());
  return checkpoint.parent_path() / (name.substr(0, name.size() - suffix.size()) + ".model.json");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Arguments args = parse_arguments(argc, argv);
    std::ifstream in(model_json_path(args.checkpoint));
    ENGINE_CHECK(in, "eval_lm: cannot read ", model_json_path(args.checkpoint).string());
    const json model_json = json::parse(in);
    const json& run = model_json.at("config");
    if (args.lengths.empty()) args.lengths = {run.at("context").get<int64_t>()};
    const std::string corpus_dir = args.corpus.empty() ? run.at("corpus").get<std::string>() : args.corpus;
    const data::TextCorpus corpus(corpus_dir, run.at("vocab_size").get<int64_t>());
    const int64_t vocab = model_json.at("vocab_size").get<int64_t>();
    ENGINE_CHECK(corpus.tokenizer().vocab_size() == vocab, "eval_lm: the corpus tokenizer has ",
                 corpus.tokenizer().vocab_size(), " tokens, the model ", vocab);

    engine::Generator init_gen(0);
    lm::LanguageModel model = lm::build_model(run, vocab, init_gen);
    const engine::TrainingState state = engine::load_checkpoint(args.checkpoint);
    model.gpt->load_state_dict(state.model);
    const std::string pe = run.at("pe").get<std::string>();
    std::printf("eval_lm: %s (pe %s, step %lld, trained at %lld), %s split, %lld tokens\n\n",
                args.checkpoint.c_str(), pe.c_str(), (long long)state.step,
                (long long)run.at("context").get<int64_t>(), args.split.c_str(),
                (long long)corpus.split(args.split).size());

    std::ostringstream csv;
    csv << "run,pe,split,length,tokens,nll_per_token,token_ppl\n";
    std::printf("| length | tokens | NLL/token | token PPL | seconds |\n|---:|---:|---:|---:|---:|\n");
    for (const int64_t length : args.lengths) {
      const auto start = std::chrono::steady_clock::now();
      const lm::Perplexity ppl = lm::token_perplexity(*model.gpt, corpus.split(args.split), length, args.max_tokens);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double nll = ppl.nll / double(ppl.tokens);
      std::printf("| %lld | %lld | %.4f | %.3f | %.1f |\n", (long long)length, (long long)ppl.tokens, nll,
                  ppl.token_ppl(), seconds);
      std::fflush(stdout);
      csv << args.checkpoint << "," << pe << "," << args.split << "," << length << "," << ppl.tokens << "," << nll
          << "," << ppl.token_ppl() << "\n";
    }
    const std::string csv_path =
        args.csv.empty() ? (fs::path(args.checkpoint).parent_path() / ("eval_" + args.split + ".csv")).string()
                         : args.csv;
    std::ofstream(csv_path) << csv.str();
    std::printf("\nCSV: %s\n", csv_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eval_lm: %s\n", e.what());
    return 1;
  }
  return 0;
}
