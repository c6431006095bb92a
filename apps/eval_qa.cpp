// Evaluates finetune_qa checkpoints at several context lengths (docs/method.md#long-context-question-answering): for each
// question, greedy decoding of at most 16 new tokens with the KV cache, stopping at end-of-text;
// scored by the paper's containment match (a lower-cased gold answer inside the lower-cased output)
// and by SQuAD's normalised exact match, overall and by where the gold passage sits in the context
// (beginning / middle / end third), and by the answer-token perplexity of the first gold answer
// (teacher-forced through the same cache, docs/method.md#long-context-question-answering's `ppl` mode), which still ranks the methods when
// few answers are matched. Prompts are never truncated here: a file of length L holds
// contexts of about L tokens. Positions are 0..T-1; learned APE is interpolated to L beyond its rows.
//
// Usage: eval_qa --checkpoint RUN/best.ckpt.safetensors [--checkpoint ...] --data 'DIR/test.{L}.json'
//                --lengths 128,256,512 [--max-examples N] [--max-new 16] [--no-context]
//                [--label NAME]... [--out DIR] [--device cpu|cuda] [--tf32 0|1] [--precision fp32|bf16]
// "{L}" in --data is replaced by each length. --no-context adds, per checkpoint, a baseline that
// sees the question only (the questions of the first length's file). --label names the runs in
// order (default: each checkpoint's directory name). Writes into --out (default: the first
// checkpoint's directory): qa_eval.md (the tables), qa_eval.csv, qa_contains.svg and qa_em.svg
// (accuracy against length, one line per run), qa_answer_ppl.svg and predictions.jsonl.
// CSV columns: run, pe, mode, length, bucket, examples, contains_match, exact_match, prompt_tokens,
// answer_ppl, contains_low, contains_high, exact_low, exact_high (the matches' 95 % percentile-bootstrap
// intervals over the questions, 1000 resamples, a fixed seed; the table prints them beside each rate).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/bootstrap_interval.h"
#include "apps/attention_options.h"
#include "apps/cli_options.h"
#include "apps/qa_run.h"
#include "apps/train/device_setup.h"
#include "apps/svg_plot.h"
#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/error.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Arguments {
  std::vector<std::string> checkpoints, labels;
  std::string data, out;
  std::vector<int64_t> lengths;
  int64_t max_examples = 0, max_new = 16;
  bool no_context = false;
  apps::train::DeviceSettings device;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("eval_qa", "Question answering of finetune_qa checkpoints at several context lengths.",
                        "eval_qa --checkpoint runs/qa/seqpe/best.ckpt.safetensors --data 'data/qa/test.{L}.json' "
                        "--lengths 128,256,512,1024 --max-examples 200");
  cli.option("--checkpoint", args.checkpoints, "a finetune_qa checkpoint (*.ckpt.safetensors); repeatable")->required();
  cli.option("--data", args.data, "the test files, {L} standing for the length ('DIR/test.{L}.json')")->required();
  cli.option("--lengths", args.lengths, "context lengths L", 1)->required();
  cli.option("--max-examples", args.max_examples, "the first N questions of each file only (0: all)", 0);
  cli.option("--max-new", args.max_new, "new tokens generated per answer at most", 1);
  cli.flag("--no-context", args.no_context, "also score each checkpoint on the questions alone (a baseline)");
  cli.option("--label", args.labels, "the runs' names, one per --checkpoint in order (default: their folders)");
  cli.option("--out", args.out, "output folder (default: the first checkpoint's)");
  cli.device_options(args.device);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  ENGINE_CHECK(args.labels.empty() || args.labels.size() == args.checkpoints.size(), args.labels.size(),
               " --label for ", args.checkpoints.size(), " --checkpoint");
  ENGINE_CHECK(args.data.find("{L}") != std::string::npos,
               "--data must name the files with {L} for the length, got '", args.data, "'");
  if (args.out.empty()) args.out = fs::path(args.checkpoints.front()).parent_path().string();
  return args;
}

std::string data_path(const std::string& pattern, int64_t length) {
  std::string path = pattern;
  path.replace(path.find("{L}"), 3, std::to_string(length));
  return path;
}

// Matches and answer likelihood of one (run, mode, length) over all questions and per
// gold-position third.
struct Score {
  int64_t examples[4] = {0, 0, 0, 0};  // beginning, middle, end, all
  int64_t contains[4] = {0, 0, 0, 0};
  int64_t exact[4] = {0, 0, 0, 0};
  std::vector<double> contains_hits[4], exact_hits[4];  // 0 or 1 per question, for the bootstrap
  double answer_nll[4] = {0, 0, 0, 0};  // nats over the gold answers' tokens and end-of-text
  int64_t answer_tokens[4] = {0, 0, 0, 0};
  int64_t prompt_tokens = 0;
  void add(int bucket, bool contains_hit, bool exact_hit, double nll, int64_t tokens) {
    for (const int b : {bucket, 3}) {
      if (b < 0) continue;
      ++examples[b];
      contains[b] += contains_hit;
      exact[b] += exact_hit;
      contains_hits[b].push_back(contains_hit);
      exact_hits[b].push_back(exact_hit);
      answer_nll[b] += nll;
      answer_tokens[b] += tokens;
    }
  }
  double answer_ppl(int b) const {
    return answer_tokens[b] > 0 ? std::exp(answer_nll[b] / double(answer_tokens[b])) : 0.0;
  }
};

double percent(int64_t hits, int64_t n) { return n > 0 ? 100.0 * double(hits) / double(n) : 0.0; }

// The 95 % percentile-bootstrap interval of a match rate, in percent (1000 resamples of the
// questions, a fixed seed: every run of the same evaluation prints the same intervals); [0, 0]
// when there are no questions.
constexpr int64_t kBootstrapResamples = 1000;
constexpr uint64_t kBootstrapSeed = 2025;
apps::Interval percent_interval(const std::vector<double>& hits) {
  if (hits.empty()) return {};
  const apps::Interval interval = apps::bootstrap_mean_interval(hits, kBootstrapResamples, kBootstrapSeed);
  return {100 * interval.low, 100 * interval.high};
}

// "31.2 [27.0, 35.4]": a match rate in percent with its bootstrap interval.
std::string rate_with_interval(int64_t hits, int64_t n, const apps::Interval& interval) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f [%.1f, %.1f]", percent(hits, n), interval.low, interval.high);
  return text;
}

struct Row {
  std::string run, pe, mode;
  int64_t length;
  Score score;
};

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("eval_qa", [&] {
    engine::set_flush_denormal(true);  // speed only: nothing printed sees values below 1e-38
    const Arguments args = parse_arguments(argc, argv);
    const engine::Device device = apps::train::setup_device("eval_qa", args.device);
    fs::create_directories(args.out);
    std::ofstream predictions(fs::path(args.out) / "predictions.jsonl");
    std::vector<Row> rows;
    for (size_t c = 0; c < args.checkpoints.size(); ++c) {
      const std::string& checkpoint = args.checkpoints[c];
      const json model_json = apps::read_model_json(checkpoint);
      const json& run = model_json.at("config");
      const data::BpeTokenizer tokenizer = apps::load_tokenizer(model_json);
      const int64_t eot = *tokenizer.end_of_text();
      engine::Generator init_gen(0);
      apps::LanguageModel model = apps::build_qa_model(run, tokenizer.vocab_size(), init_gen);
      const engine::ModelWeights weights = engine::load_model_weights(checkpoint);  // or export_weights' file
      model.gpt->load_state_dict(weights.tensors);
      model.gpt->to_(device);
      model.gpt->eval();
      const std::string pe = run.at("pe").get<std::string>();
      const std::string label =
          args.labels.empty() ? fs::path(checkpoint).parent_path().filename().string() : args.labels[c];
      std::printf("eval_qa: %s (%s, pe %s, step %lld)\n", checkpoint.c_str(), label.c_str(), pe.c_str(),
                  (long long)weights.step);

      std::vector<std::pair<std::string, int64_t>> jobs;  // (mode, length)
      for (const int64_t length : args.lengths) jobs.emplace_back("context", length);
      if (args.no_context) jobs.emplace_back("no_context", args.lengths.front());
      for (const auto& [mode, length] : jobs) {
        const auto start = std::chrono::steady_clock::now();
        const std::string path = data_path(args.data, length);
        std::vector<data::QaExample> items = apps::load_qa_file(path);
        if (args.max_examples > 0 && int64_t(items.size()) > args.max_examples) items.resize(size_t(args.max_examples));
        std::vector<std::vector<int64_t>> prompts, golds;  // golds: the first gold answer's tokens
        int64_t reach = 0;  // tokens fed by the longest decode or teacher-forced answer
        for (const data::QaExample& item : items) {
          prompts.push_back(apps::encode_prompt(tokenizer, apps::make_prompt(item, mode == "context")));
          golds.push_back(apps::encode_answer(tokenizer, item.answers.front()));
          const int64_t fed = std::max(args.max_new, int64_t(golds.back().size()));
          reach = std::max(reach, int64_t(prompts.back().size()) + fed);
        }
        if (pe == "seqpe") {
          const int64_t max_position = model.seqpe->config().pe_max_position;
          ENGINE_CHECK(reach <= max_position, path, ": prompts and answers reach position ", reach,
                       ", beyond SeqPE's ", max_position);
          model.seqpe->cache_eval_length(reach);  // one PE table per length (docs/method.md#one-encoder-forward-per-step)
        }
        Row row{label, pe, mode, length, {}};
        for (size_t i = 0; i < items.size(); ++i) {
          const std::vector<int64_t> answer = apps::greedy_answer(*model.gpt, prompts[i], args.max_new, eot, length);
          const std::vector<data::TokenId> ids(answer.begin(), answer.end());
          const std::string output = tokenizer.decode(ids);
          const bool contains = apps::contains_match(output, items[i].answers);
          const bool exact = apps::exact_match(output, items[i].answers);
          const double nll = apps::answer_nll(*model.gpt, prompts[i], golds[i], eot, length);
          const int bucket = apps::gold_position_bucket(items[i]);
          row.score.add(bucket, contains, exact, nll, int64_t(golds[i].size()) + 1);
          row.score.prompt_tokens += int64_t(prompts[i].size());
          predictions << json{{"run", label}, {"mode", mode}, {"length", length}, {"id", items[i].id},
                              {"output", output}, {"answers", items[i].answers},
                              {"position", apps::bucket_name(bucket)},
                              {"contains_match", contains}, {"exact_match", exact}}.dump(-1, ' ', false,
                                                                                       json::error_handler_t::replace)
                      << "\n";
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const Score& s = row.score;
        std::printf("  %-10s length %6lld: %lld questions, contains %.1f%%, EM %.1f%%, answer PPL %.2f (%.1f s)\n",
                    mode.c_str(), (long long)length, (long long)s.examples[3], percent(s.contains[3], s.examples[3]),
                    percent(s.exact[3], s.examples[3]), s.answer_ppl(3), seconds);
        std::fflush(stdout);
        rows.push_back(row);
      }
    }

    // Tables, CSV and plots.
    std::ostringstream md, csv;
    csv << "run,pe,mode,length,bucket,examples,contains_match,exact_match,prompt_tokens,answer_ppl,"
           "contains_low,contains_high,exact_low,exact_high\n";
    md << "| run | pe | mode | length | questions | mean prompt tokens | contains % [95% CI] | EM % [95% CI] "
          "| answer PPL | contains beginning / middle / end | EM beginning / middle / end "
          "| answer PPL beginning / middle / end |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|\n";
    for (const Row& r : rows) {
      const Score& s = r.score;
      apps::Interval contains[4], exact[4];
      std::string contains_text[4], exact_text[4];
      for (int b = 0; b < 4; ++b) {
        contains[b] = percent_interval(s.contains_hits[b]);
        exact[b] = percent_interval(s.exact_hits[b]);
        contains_text[b] = rate_with_interval(s.contains[b], s.examples[b], contains[b]);
        exact_text[b] = rate_with_interval(s.exact[b], s.examples[b], exact[b]);
      }
      char line[1024];
      std::snprintf(line, sizeof line,
                    "| %s | %s | %s | %lld | %lld | %.0f | %s | %s | %.2f "
                    "| %s / %s / %s | %s / %s / %s | %.2f / %.2f / %.2f |\n",
                    r.run.c_str(), r.pe.c_str(), r.mode.c_str(), (long long)r.length, (long long)s.examples[3],
                    double(s.prompt_tokens) / double(std::max<int64_t>(1, s.examples[3])), contains_text[3].c_str(),
                    exact_text[3].c_str(), s.answer_ppl(3), contains_text[0].c_str(), contains_text[1].c_str(),
                    contains_text[2].c_str(), exact_text[0].c_str(), exact_text[1].c_str(), exact_text[2].c_str(),
                    s.answer_ppl(0), s.answer_ppl(1), s.answer_ppl(2));
      md << line;
      for (int b = 0; b < 4; ++b)
        csv << r.run << "," << r.pe << "," << r.mode << "," << r.length << "," << (b == 3 ? "all" : apps::bucket_name(b))
            << "," << s.examples[b] << "," << percent(s.contains[b], s.examples[b]) / 100 << ","
            << percent(s.exact[b], s.examples[b]) / 100 << ","
            << double(s.prompt_tokens) / double(std::max<int64_t>(1, s.examples[3])) << "," << s.answer_ppl(b) << ","
            << contains[b].low / 100 << "," << contains[b].high / 100 << "," << exact[b].low / 100 << ","
            << exact[b].high / 100 << "\n";
    }
    const fs::path out(args.out);
    for (const auto& [name, text] : {std::pair{"qa_eval.md", md.str()}, std::pair{"qa_eval.csv", csv.str()}}) {
      const fs::path tmp = out / (std::string(name) + ".tmp");
      std::ofstream(tmp) << text;
      fs::rename(tmp, out / name);
    }
    // One line per run over the context rows: `value` of each row against its length.
    const auto write_plot = [&](const char* file, const char* title, apps::Axis y, double (*value)(const Score&)) {
      apps::LinePlot figure;
      figure.title = title;
      figure.x = {"context length (tokens)", apps::Scale::log2};
      figure.y = std::move(y);
      for (const Row& r : rows) {
        if (r.mode != "context") continue;
        if (figure.series.empty() || figure.series.back().name != r.run) figure.series.push_back({r.run, {}, {}});
        figure.series.back().x.push_back(double(r.length));
        figure.series.back().y.push_back(value(r.score));
      }
      apps::write_svg(figure, (out / file).string());
    };
    write_plot("qa_contains.svg", "QA containment match (the paper's EM)", {"containment match %", apps::Scale::linear},
               [](const Score& s) { return percent(s.contains[3], s.examples[3]); });
    write_plot("qa_em.svg", "QA exact match (SQuAD-normalised)", {"exact match %", apps::Scale::linear},
               [](const Score& s) { return percent(s.exact[3], s.examples[3]); });
    write_plot("qa_answer_ppl.svg", "QA answer-token perplexity", {"answer perplexity", apps::Scale::log10},
               [](const Score& s) { return s.answer_ppl(3); });
    std::printf("\n%s\nwritten: %s/{qa_eval.md,qa_eval.csv,qa_contains.svg,qa_em.svg,qa_answer_ppl.svg,"
                "predictions.jsonl}\n",
                md.str().c_str(), args.out.c_str());
  });
}
