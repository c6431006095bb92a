// Builds the offline long-context QA set (docs/qa_data.md) from Debian's iso-codes, tzdata and
// wordnet-base files, as SQuAD v1.1 JSON.
//
// Usage: build_qa --out DIR (--corpus CORPUS_DIR --vocab-size V | --vocab vocab.json --merges merges.txt)
//                 [--train-length 512] [--eval-lengths 512,1024,2048,4096] [--reserve 64]
//                 [--eval-questions 2000] [--seed 0] [--dev-fraction 0.1] [--test-fraction 0.1]
//                 [--max-answer-share 0.02] [--jsonl]
//                 [--iso-codes /usr/share/iso-codes/json] [--zoneinfo /usr/share/zoneinfo]
//                 [--wordnet /usr/share/wordnet]
// A length L is the whole sequence the model sees: contexts get L - reserve tokens (of the given
// tokenizer, which must be the language model's), leaving `reserve` for question and answer.
// Writes in DIR:
//   train.json, dev.json, test.json     every question, context = its passage alone
//   train.<train-length>.json           every training question, long context
//   dev.<L>.json, test.<L>.json         per evaluation length, the same sampled questions at each L
//   *.jsonl beside each long file       with --jsonl: the authors' format (input, outputs, index)
//   stats.json                          the figures printed at the end
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "data/atomic_file.h"
#include "data/qa_builder.h"
#include "data/text_corpus.h"
#include "engine/error.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct Arguments {
  std::string out, corpus, vocab, merges;
  int64_t vocab_size = 0;
  int64_t train_length = 512, reserve = 64, eval_questions = 2000;
  std::vector<int64_t> eval_lengths = {512, 1024, 2048, 4096};
  uint64_t seed = 0;
  double dev_fraction = 0.1, test_fraction = 0.1, max_answer_share = 0.02;
  bool jsonl = false;
  std::string iso_codes = "/usr/share/iso-codes/json", zoneinfo = "/usr/share/zoneinfo", wordnet = "/usr/share/wordnet";
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("build_qa", "Builds the offline long-context QA set from iso-codes, tzdata and wordnet-base.",
                        "build_qa --out data/qa --vocab runs/lm/seqpe/tokenizer/vocab.json "
                        "--merges runs/lm/seqpe/tokenizer/merges.txt --train-length 128 --eval-lengths 128,256,512");
  cli.option("--out", args.out, "output folder")->required();
  CLI::Option* corpus = cli.option("--corpus", args.corpus, "tokenizer of this train_lm corpus (with --vocab-size)");
  cli.option("--vocab-size", args.vocab_size, "the language model's vocabulary size (with --corpus)", 1);
  CLI::Option* vocab = cli.option("--vocab", args.vocab, "the language model's vocab.json (with --merges)");
  cli.option("--merges", args.merges, "the language model's merges.txt (with --vocab)");
  vocab->excludes(corpus);
  cli.option("--train-length", args.train_length, "length L of the training questions' contexts", 1);
  cli.option("--eval-lengths", args.eval_lengths, "lengths of the dev and test files", 1);
  cli.option("--reserve", args.reserve, "tokens of each length left for question and answer", 0);
  cli.option("--eval-questions", args.eval_questions, "questions sampled for each evaluation length", 1);
  cli.option("--seed", args.seed, "seed of the splits and samples");
  cli.option("--dev-fraction", args.dev_fraction, "share of the records in the dev split");
  cli.option("--test-fraction", args.test_fraction, "share of the records in the test split");
  cli.option("--max-answer-share", args.max_answer_share, "most questions one answer may have, as a share");
  cli.flag("--jsonl", args.jsonl, "also write each long file in the authors' jsonl format");
  cli.option("--iso-codes", args.iso_codes, "iso-codes JSON folder");
  cli.option("--zoneinfo", args.zoneinfo, "tzdata folder (zone1970.tab)");
  cli.option("--wordnet", args.wordnet, "wordnet-base folder (data.*)");
  cli.parse(argc, argv);
  ENGINE_CHECK(!args.vocab.empty() != !args.corpus.empty(),
               "give the language model's tokenizer, either --corpus DIR --vocab-size V or "
               "--vocab vocab.json --merges merges.txt");
  for (const int64_t length : args.eval_lengths)
    ENGINE_CHECK(length > args.reserve, "length ", length, " leaves no context after --reserve ",
                 args.reserve);
  ENGINE_CHECK(args.train_length > args.reserve, "--train-length ", args.train_length,
               " leaves no context after --reserve ", args.reserve);
  return args;
}

data::BpeTokenizer load_tokenizer(const Arguments& args) {
  if (!args.vocab.empty()) return data::BpeTokenizer::load(args.vocab, args.merges);
  ENGINE_CHECK(args.vocab_size > 0, "--corpus needs --vocab-size (the language model's)");
  // Opening the corpus trains (and saves) its tokenizer if it has none yet, as train_lm does.
  const data::TextCorpus corpus(args.corpus, args.vocab_size);
  const fs::path dir = fs::exists(fs::path(args.corpus) / "vocab.json") ? fs::path(args.corpus) : corpus.cache_dir();
  std::printf("tokenizer: %s (%lld tokens)\n", dir.c_str(), (long long)corpus.tokenizer().vocab_size());
  return data::BpeTokenizer::load(dir / "vocab.json", dir / "merges.txt");
}

// source -> (records, questions)
std::map<std::string, std::pair<int64_t, int64_t>> count_by_source(const std::vector<data::QaRecord>& records) {
  std::map<std::string, std::pair<int64_t, int64_t>> counts;
  for (const data::QaRecord& record : records) {
    counts[record.source].first += 1;
    counts[record.source].second += static_cast<int64_t>(record.questions.size());
  }
  return counts;
}

ordered_json counts_json(const std::map<std::string, std::pair<int64_t, int64_t>>& counts) {
  ordered_json out = ordered_json::object();
  for (const auto& [source, count] : counts) out[source] = {{"records", count.first}, {"questions", count.second}};
  return out;
}

// Writes one long-context file (and its jsonl) and returns its figures.
ordered_json write_long(const data::LongContextBuilder& builder, const std::vector<data::QaRecord>& records,
                        int64_t length, int64_t reserve, const fs::path& path, bool jsonl) {
  data::QaLongContextStats stats;
  const data::QaDataset dataset = builder.build(records, length - reserve, stats);
  data::write_squad(dataset, path.string());
  if (jsonl) data::write_qa_jsonl(data::flatten(dataset), fs::path(path).replace_extension(".jsonl").string());
  const auto q = static_cast<double>(std::max<int64_t>(stats.questions, 1));
  std::printf("%-16s %6lld contexts %6lld questions  tokens mean %7.1f min %5lld max %5lld (budget %lld)  "
              "short %lld  fallback %lld  answer unique %.4f (lower-case substring %.4f)\n",
              path.filename().c_str(), (long long)stats.contexts, (long long)stats.questions, stats.mean_tokens,
              (long long)stats.min_tokens, (long long)stats.max_tokens, (long long)(length - reserve),
              (long long)stats.short_contexts, (long long)stats.fallback_contexts, stats.unique_answers / q,
              stats.unique_lowercase / q);
  return {{"file", path.filename().string()},
          {"length", length},
          {"context_budget", length - reserve},
          {"contexts", stats.contexts},
          {"questions", stats.questions},
          {"mean_context_tokens", stats.mean_tokens},
          {"min_context_tokens", stats.min_tokens},
          {"max_context_tokens", stats.max_tokens},
          {"short_contexts", stats.short_contexts},
          {"fallback_contexts", stats.fallback_contexts},
          {"answer_unique_fraction", stats.unique_answers / q},
          {"answer_unique_lowercase_substring_fraction", stats.unique_lowercase / q},
          {"questions_by_source", stats.questions_by_source}};
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("build_qa", [&] {
    const auto start = std::chrono::steady_clock::now();
    const Arguments args = parse_arguments(argc, argv);
    const data::BpeTokenizer tokenizer = load_tokenizer(args);
    fs::create_directories(args.out);

    std::vector<data::QaRecord> records = data::debian_records(args.iso_codes, args.zoneinfo, args.wordnet);
    ordered_json stats = ordered_json::object();
    stats["records_read"] = counts_json(count_by_source(records));
    const data::QaFilterStats dropped = data::filter_questions(records, args.max_answer_share);
    stats["dropped"] = {{"duplicate_questions", dropped.duplicate_questions},
                        {"frequent_answers", dropped.frequent_answers},
                        {"records_without_questions", dropped.empty_records}};
    const data::QaSplits splits = data::split_records(records, args.seed, args.dev_fraction, args.test_fraction);

    std::printf("\n| source | train records | train questions | dev records | dev questions | test records "
                "| test questions |\n|---|---:|---:|---:|---:|---:|---:|\n");
    const auto train = count_by_source(splits.train), dev = count_by_source(splits.dev),
               test = count_by_source(splits.test);
    int64_t totals[6] = {};
    for (const auto& [source, counts] : train) {
      const auto in = [&](const auto& split) {
        return split.contains(source) ? split.at(source) : std::pair<int64_t, int64_t>{};
      };
      const int64_t row[6] = {counts.first,    counts.second,  in(dev).first,
                              in(dev).second,  in(test).first, in(test).second};
      std::printf("| %s |", source.c_str());
      for (int i = 0; i < 6; ++i) {
        std::printf(" %lld |", (long long)row[i]);
        totals[i] += row[i];
      }
      std::printf("\n");
    }
    std::printf("| all |");
    for (int i = 0; i < 6; ++i) std::printf(" %lld |", (long long)totals[i]);
    std::printf("\n\ndropped: %lld questions with repeated text, %lld with answers in over %.1f%% of their "
                "source's passages, %lld records left empty\n\n",
                (long long)dropped.duplicate_questions, (long long)dropped.frequent_answers,
                100 * args.max_answer_share, (long long)dropped.empty_records);
    stats["splits"] = {{"train", counts_json(train)}, {"dev", counts_json(dev)}, {"test", counts_json(test)}};

    const fs::path out(args.out);
    data::write_squad(data::passage_dataset(splits.train), (out / "train.json").string());
    data::write_squad(data::passage_dataset(splits.dev), (out / "dev.json").string());
    data::write_squad(data::passage_dataset(splits.test), (out / "test.json").string());

    // Training contexts draw distractors from training records only; dev and test from all.
    ordered_json files = ordered_json::array();
    {
      const data::LongContextBuilder train_builder(splits.train, tokenizer, args.seed);
      const fs::path path = out / ("train." + std::to_string(args.train_length) + ".json");
      files.push_back(write_long(train_builder, splits.train, args.train_length, args.reserve, path, args.jsonl));
    }
    const data::LongContextBuilder eval_builder(records, tokenizer, args.seed);
    for (const auto& [name, split] : {std::pair{"dev", &splits.dev}, std::pair{"test", &splits.test}}) {
      const std::vector<data::QaRecord> sample = data::sample_records(*split, args.eval_questions, args.seed);
      for (const int64_t length : args.eval_lengths) {
        const fs::path path = out / (std::string(name) + "." + std::to_string(length) + ".json");
        files.push_back(write_long(eval_builder, sample, length, args.reserve, path, args.jsonl));
      }
    }
    stats["long_context_files"] = files;

    std::printf("\nno-context baselines on the test split (containment of the answer in the question; "
                "letter codes guessed as the name's first letters):\n");
    ordered_json baselines = ordered_json::object();
    data::QaBaselineStats all;
    for (const auto& [source, b] : data::no_context_baselines(splits.test)) {
      std::printf("  %-12s %6lld questions  answer in question %5.1f%%  codes guessed %lld / %lld\n", source.c_str(),
                  (long long)b.questions, 100.0 * b.answer_in_question / std::max<int64_t>(b.questions, 1),
                  (long long)b.code_guessed, (long long)b.code_questions);
      baselines[source] = {{"questions", b.questions},
                           {"answer_in_question", b.answer_in_question},
                           {"code_questions", b.code_questions},
                           {"code_guessed", b.code_guessed}};
      all.questions += b.questions;
      all.answer_in_question += b.answer_in_question;
      all.code_questions += b.code_questions;
      all.code_guessed += b.code_guessed;
    }
    std::printf("  %-12s %6lld questions  answer in question %5.1f%%  codes guessed %lld / %lld "
                "(%.1f%% of all test questions answered by either heuristic at most)\n",
                "all", (long long)all.questions, 100.0 * all.answer_in_question / std::max<int64_t>(all.questions, 1),
                (long long)all.code_guessed, (long long)all.code_questions,
                100.0 * (all.answer_in_question + all.code_guessed) / std::max<int64_t>(all.questions, 1));
    stats["test_no_context_baselines"] = baselines;

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats["config"] = {{"seed", args.seed},           {"train_length", args.train_length},
                       {"eval_lengths", args.eval_lengths}, {"reserve", args.reserve},
                       {"eval_questions", args.eval_questions}, {"dev_fraction", args.dev_fraction},
                       {"test_fraction", args.test_fraction}, {"max_answer_share", args.max_answer_share},
                       {"tokenizer_vocab_size", tokenizer.vocab_size()}};
    stats["seconds"] = seconds;
    data::write_file_atomic(out / "stats.json", stats.dump(2) + "\n");
    std::printf("\nwrote %s in %.1f s\n", args.out.c_str(), seconds);
  });
}
