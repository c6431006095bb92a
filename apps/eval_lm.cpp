// Evaluates train_lm checkpoints (finetune_qa's too): token perplexity at a list of lengths by
// docs/method.md#language-modelling's protocol (non-overlapping chunks of each length, the last partial chunk kept,
// batch 1, each chunk scored alone at positions 0..L-1; learned APE linearly interpolated beyond its
// training length, every other PE extended). Prints a table per run and one comparing the runs, and
// writes the CSV, the markdown and plots (SVG, one line per run): perplexity against length, the
// same relative to the first length, and the loss by position inside the chunks of the longest
// length. The loss by position is summed per bucket of the run's training length (positions
// [0, T), [T, 2T), ...), so one sees where past the training length a model starts to degrade.
//
// Usage: eval_lm --checkpoint RUN/best.ckpt.safetensors [--checkpoint RUN2/...]...
//                [--lengths 128,256,512] [--split valid|test] [--corpus DIR] [--max-tokens N]
//                [--csv FILE] [--device cpu|cuda] [--tf32 0|1] [--precision fp32|bf16]
// Each run config is read from the model.json beside its checkpoint (<name>.model.json for
// <name>.ckpt.safetensors); --corpus overrides the corpus of every run (the tokenizer must be the
// same). A run is named after its directory. Outputs: --csv (default eval_<split>.csv beside the
// first checkpoint), and beside it the same name with .md (the tables), .svg (perplexity against
// length), _ratio.svg (PPL(L) / PPL(first length), linear axis), _positions.csv and
// _positions.svg (the loss by position bucket).
// CSV columns: run, pe, split, length, tokens, nll_per_token, token_ppl.
// _positions.csv columns: run, pe, split, length, position_start, position_end, tokens, nll_per_token.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/app_main.h"
#include "apps/attention_options.h"
#include "apps/cli_options.h"
#include "apps/lm_run.h"
#include "apps/qa_run.h"
#include "apps/svg_plot.h"
#include "apps/train/device_setup.h"
#include "data/same_tokenizer.h"
#include "data/text_corpus.h"
#include "engine/denormals.h"
#include "engine/error.h"

namespace {

namespace fs = std::filesystem;

struct Arguments {
  std::vector<std::string> checkpoints;
  std::string split = "valid", corpus, csv;
  std::vector<int64_t> lengths;
  int64_t max_tokens = 0;
  apps::train::DeviceSettings device;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("eval_lm", "Token perplexity of train_lm (or finetune_qa) checkpoints at several lengths.",
                        "eval_lm --checkpoint runs/lm/seqpe/best.ckpt.safetensors --checkpoint "
                        "runs/lm/ape/best.ckpt.safetensors --lengths 128,256,512 --split test");
  cli.option("--checkpoint", args.checkpoints, "a checkpoint to evaluate (*.ckpt.safetensors); repeatable")->required();
  cli.option("--lengths", args.lengths, "evaluation lengths (default: each run's training length)", 1);
  cli.option("--split", args.split, "corpus split: valid or test");
  cli.option("--corpus", args.corpus, "corpus folder instead of each run's (its tokenizer must be the run's)");
  cli.option("--max-tokens", args.max_tokens, "score only the first N predictions (0: all)", 0);
  cli.option("--csv", args.csv, "CSV file (default: eval_<split>.csv beside the first checkpoint; .md, .svg beside)");
  cli.device_options(args.device);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  return args;
}

struct Row {
  int64_t length, tokens;
  double nll_per_token, ppl, seconds;
  std::vector<double> bucket_nll_per_token;  // per bucket of the training length (ceil(length / T))
  std::vector<int64_t> bucket_tokens;
};

struct RunResult {
  std::string name, pe;
  int64_t trained_length;
  std::vector<Row> rows;  // one per length
};

std::string format(const char* pattern, auto... values) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, values...);
  return text;
}

// One run's loss by position: a row per bucket of its training length T, a column per evaluated
// length (NLL per token of the predictions at those positions; "-" past the length).
std::string position_table(const RunResult& r) {
  std::string table = "| positions |";
  for (const Row& row : r.rows) table += format(" NLL at %lld |", (long long)row.length);
  table += "\n|---|";
  for (size_t i = 0; i < r.rows.size(); ++i) table += "---:|";
  table += "\n";
  size_t buckets = 0;
  for (const Row& row : r.rows) buckets = std::max(buckets, row.bucket_nll_per_token.size());
  for (size_t b = 0; b < buckets; ++b) {
    table += format("| [%lld, %lld) |", (long long)b * r.trained_length, (long long)(b + 1) * r.trained_length);
    for (const Row& row : r.rows)
      table += b < row.bucket_nll_per_token.size() && row.bucket_tokens[b] > 0
                   ? format(" %.4f |", row.bucket_nll_per_token[b])
                   : std::string(" - |");
    table += "\n";
  }
  return table;
}

// Scores one checkpoint at every length, printing its table as it goes.
RunResult evaluate(const std::string& checkpoint, const Arguments& args, engine::Device device) {
  apps::TrainedModel trained = apps::load_trained_model(checkpoint, apps::default_qa_config(), device);
  const nlohmann::json& run = trained.run;
  const std::string corpus_dir = args.corpus.empty() ? run.at("corpus").get<std::string>() : args.corpus;
  const data::TextCorpus corpus(corpus_dir, run.at("vocab_size").get<int64_t>());
  const fs::path model_tokenizer = trained.tokenizer_dir;
  data::check_same_tokenizer(corpus.tokenizer(), corpus_dir,
                             data::BpeTokenizer::load(model_tokenizer / "vocab.json", model_tokenizer / "merges.txt"),
                             checkpoint + " (" + model_tokenizer.string() + ")");
  RunResult result{fs::absolute(checkpoint).parent_path().filename().string(), run.at("pe").get<std::string>(),
                   run.at("context").get<int64_t>(), {}};
  std::printf("eval_lm: %s (pe %s, step %lld, trained at %lld), %s split, %lld tokens\n\n", checkpoint.c_str(),
              result.pe.c_str(), (long long)trained.step, (long long)result.trained_length, args.split.c_str(),
              (long long)corpus.split(args.split).size());
  std::printf("| length | tokens | NLL/token | token PPL | seconds |\n|---:|---:|---:|---:|---:|\n");
  const std::vector<int64_t> lengths = args.lengths.empty() ? std::vector{result.trained_length} : args.lengths;
  for (const int64_t length : lengths) {
    const auto start = std::chrono::steady_clock::now();
    const apps::Perplexity ppl =
        apps::token_perplexity(*trained.model.gpt, corpus.split(args.split), length, args.max_tokens,
                             result.trained_length);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Row row{length, ppl.tokens, ppl.nll / double(ppl.tokens), ppl.token_ppl(), seconds, {}, ppl.bucket_tokens};
    for (size_t b = 0; b < ppl.bucket_nll.size(); ++b)
      row.bucket_nll_per_token.push_back(ppl.bucket_tokens[b] > 0 ? ppl.bucket_nll[b] / double(ppl.bucket_tokens[b])
                                                                  : std::nan(""));
    std::printf("| %lld | %lld | %.4f | %.3f | %.1f |\n", (long long)length, (long long)row.tokens, row.nll_per_token,
                row.ppl, seconds);
    std::fflush(stdout);
    result.rows.push_back(row);
  }
  std::printf("\n%s\n", position_table(result).c_str());
  return result;
}

// "name (pe)", or the PE alone when the run's directory is named after it.
std::string label(const RunResult& r) {
  if (r.name == r.pe) return r.pe;
  // Appended piecewise: GCC 12 misreports `" " + a + " |"` as overlapping copies (-Wrestrict).
  std::string text = r.name;
  text.append(" (").append(r.pe).append(")");
  return text;
}

// The runs side by side: one row per length, one perplexity column per run.
std::string comparison_table(const std::vector<RunResult>& results) {
  std::string table = "| length |";
  for (const RunResult& r : results) table.append(" ").append(label(r)).append(" |");
  table += "\n|---:|";
  for (size_t i = 0; i < results.size(); ++i) table += "---:|";
  table += "\n";
  for (size_t i = 0; i < results.front().rows.size(); ++i) {
    for (const RunResult& r : results)
      ENGINE_CHECK(r.rows[i].length == results.front().rows[i].length, "the runs were trained at different ",
                   "lengths (", results.front().trained_length, ", ", r.trained_length,
                   "): pass --lengths to compare them at the same lengths");
    const int64_t length = results.front().rows[i].length;
    table += format("| %lld (%gx) |", (long long)length, double(length) / double(results.front().trained_length));
    for (const RunResult& r : results) table += format(" %.3f |", r.rows[i].ppl);
    table += "\n";
  }
  return table;
}

// Token perplexity against evaluation length, both axes logarithmic.
apps::LinePlot length_plot(const std::vector<RunResult>& results, const std::string& split) {
  apps::LinePlot figure;
  figure.title = "Token perplexity against evaluation length (" + split + " split)";
  figure.x = {"evaluation length (tokens)", apps::Scale::log2};
  figure.y = {"token perplexity", apps::Scale::log10};
  for (const RunResult& r : results) {
    apps::Series series{label(r), {}, {}};
    for (const Row& row : r.rows) {
      series.x.push_back(double(row.length));
      series.y.push_back(row.ppl);
    }
    figure.series.push_back(series);
  }
  return figure;
}

// PPL(L) / PPL(first length) on a linear axis: how much each run degrades, whatever its level.
apps::LinePlot ratio_plot(const std::vector<RunResult>& results, const std::string& split) {
  apps::LinePlot figure = length_plot(results, split);
  const int64_t first = results.front().rows.front().length;
  figure.title = "Perplexity relative to length " + std::to_string(first) + " (" + split + " split)";
  figure.y = {"PPL(L) / PPL(" + std::to_string(first) + ")", apps::Scale::linear};
  for (size_t k = 0; k < results.size(); ++k)
    for (double& ppl : figure.series[k].y) ppl /= results[k].rows.front().ppl;
  return figure;
}

// Loss against position inside the chunks of the longest length evaluated (each bucket's mean
// NLL at its first position), linear axes: where past the training length the loss starts to grow.
apps::LinePlot position_plot(const std::vector<RunResult>& results, const std::string& split) {
  apps::LinePlot figure;
  const int64_t longest = results.front().rows.back().length;
  figure.title = "Loss by position inside chunks of " + std::to_string(longest) + " tokens (" + split + " split)";
  figure.x = {"position (start of a bucket of the training length)", apps::Scale::linear};
  figure.y = {"NLL per token", apps::Scale::linear};
  for (const RunResult& r : results) {
    apps::Series series{label(r), {}, {}};
    const Row& row = r.rows.back();
    for (size_t b = 0; b < row.bucket_nll_per_token.size(); ++b) {
      series.x.push_back(double(int64_t(b) * r.trained_length));
      series.y.push_back(row.bucket_nll_per_token[b]);
    }
    figure.series.push_back(series);
  }
  return figure;
}

void write_text(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  std::ofstream out(temp);
  ENGINE_CHECK(out, "cannot write ", temp.string());
  out << text;
  out.close();
  ENGINE_CHECK(out, "writing ", temp.string(), " failed");
  fs::rename(temp, path);
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("eval_lm", [&] {
    engine::set_flush_denormal(true);  // speed only: nothing printed sees values below 1e-38
    const Arguments args = parse_arguments(argc, argv);
    std::vector<RunResult> results;
    const engine::Device device = apps::train::setup_device("eval_lm", args.device);
    for (const std::string& checkpoint : args.checkpoints) results.push_back(evaluate(checkpoint, args, device));

    const std::string table = comparison_table(results);
    std::printf("token perplexity, %s split:\n\n%s\n", args.split.c_str(), table.c_str());

    std::ostringstream csv, positions_csv, markdown;
    csv << "run,pe,split,length,tokens,nll_per_token,token_ppl\n";
    positions_csv << "run,pe,split,length,position_start,position_end,tokens,nll_per_token\n";
    markdown << "# Token perplexity against evaluation length (" << args.split << " split)\n\n" << table << "\n";
    for (size_t k = 0; k < results.size(); ++k) {
      const RunResult& r = results[k];
      markdown << "## " << r.name << ": " << args.checkpoints[k] << " (pe " << r.pe << ", trained at "
               << r.trained_length << ")\n\n"
               << "| length | tokens | NLL/token | token PPL | seconds |\n|---:|---:|---:|---:|---:|\n";
      for (const Row& row : r.rows) {
        csv << args.checkpoints[k] << "," << r.pe << "," << args.split << "," << row.length << "," << row.tokens << ","
            << row.nll_per_token << "," << row.ppl << "\n";
        markdown << format("| %lld | %lld | %.4f | %.3f | %.1f |\n", (long long)row.length, (long long)row.tokens,
                           row.nll_per_token, row.ppl, row.seconds);
        for (size_t b = 0; b < row.bucket_tokens.size(); ++b)
          if (row.bucket_tokens[b] > 0)
            positions_csv << args.checkpoints[k] << "," << r.pe << "," << args.split << "," << row.length << ","
                          << int64_t(b) * r.trained_length << ","
                          << std::min(int64_t(b + 1) * r.trained_length, row.length) << "," << row.bucket_tokens[b]
                          << "," << row.bucket_nll_per_token[b] << "\n";
      }
      markdown << "\nLoss by position inside the chunks:\n\n" << position_table(r) << "\n";
    }

    const fs::path csv_path = args.csv.empty()
                                  ? fs::path(args.checkpoints.front()).parent_path() / ("eval_" + args.split + ".csv")
                                  : fs::path(args.csv);
    const auto beside = [&](const std::string& suffix) {
      return (csv_path.parent_path() / (csv_path.stem().string() + suffix)).string();
    };
    write_text(csv_path, csv.str());
    write_text(beside(".md"), markdown.str());
    write_text(beside("_positions.csv"), positions_csv.str());
    apps::write_svg(length_plot(results, args.split), beside(".svg"));
    apps::write_svg(ratio_plot(results, args.split), beside("_ratio.svg"));
    apps::write_svg(position_plot(results, args.split), beside("_positions.svg"));
    std::printf("CSV: %s and %s\nmarkdown: %s\nplots: %s, %s and %s\n", csv_path.c_str(),
                beside("_positions.csv").c_str(), beside(".md").c_str(), beside(".svg").c_str(),
                beside("_ratio.svg").c_str(), beside("_positions.svg").c_str());
  });
}
