// QA fine-tuning and evaluation helpers (apps/qa_run.h): the QA run config, inheriting the language
// model's, question files, answer-only sequences, greedy decoding and the two answer matches.
#include "apps/qa_run.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>

#include "engine/autograd.h"
#include "engine/error.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"
#include "ops/reduce.h"

namespace apps {

using nlohmann::json;

namespace {

// Keys of an LM run config that describe training, not the model: a fine-tuning run sets its own.
const std::set<std::string>& training_keys() {
  static const std::set<std::string> keys = {"out", "steps", "stop_after", "batch", "lr", "weight_decay",
                                             "warmup", "clip", "seed", "log_every", "eval_every", "valid_tokens",
                                             "flush_denormal", "device", "tf32", "precision", "recompute", "accumulation",
                                             "checkpoint_every", "keep_checkpoints", "skip_nonfinite", "zero1",
                                             "allreduce_dtype"};
  return keys;
}

std::string strip(const std::string& text) {
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  auto begin = std::find_if_not(text.begin(), text.end(), space);
  auto end = std::find_if_not(text.rbegin(), std::string::const_reverse_iterator(begin), space).base();
  return std::string(begin, end);
}

std::string lower(std::string text) {
  for (char& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Python's \w for the bytes this file handles: ASCII letters, digits, '_', and UTF-8 bytes.
bool word_char(unsigned char c) { return std::isalnum(c) != 0 || c == '_' || c >= 0x80; }

}  // namespace

json default_qa_config() {
  json config = apps::default_run_config();
  // Fine-tuning (docs/method.md#long-context-question-answering, scaled down): LR 5e-5 with 100 warm-up steps of 10,000 in the paper.
  config["out"] = "runs/qa";
  config["steps"] = 500;
  config["batch"] = 8;
  config["lr"] = 1e-4;
  config["warmup"] = 10;
  config["eval_every"] = 100;
  config["log_every"] = 10;
  config["init"] = "";            // the language model's checkpoint (train_lm's best.ckpt.safetensors)
  config["train_file"] = "";      // SQuAD .json or authors' .jsonl
  config["valid_file"] = "";
  config["qa_context"] = 0;       // the fine-tuning length L; 0 = the language model's context
  config["valid_examples"] = 200; // validation questions scored (answer-token perplexity); 0 = all
  config["seqpe_shift_downsample"] = 160;  // docs/method.md#random-shift: 160 shifted blocks kept for QA
  return config;
}

json inherit_model_config(const json& qa_config, const json& lm_config) {
  json merged = qa_config;
  for (const auto& [key, value] : lm_config.items())
    if (!training_keys().contains(key) && merged.contains(key)) merged[key] = value;
  return merged;
}

apps::LanguageModel build_qa_model(const json& run, int64_t vocab_size, engine::Generator& init_gen) {
  const models::GptConfig config = apps::gpt_config(run, vocab_size);
  apps::LanguageModel model;
  std::shared_ptr<models::PositionEncoding> pe;
  if (config.position_encoding == "seqpe") {
    seqpe::SeqPeConfig seqpe_config = seqpe::seqpe_options(config).pe;
    seqpe_config.dropout_seed = run.at("seed").get<uint64_t>() + 4;
    seqpe_config.transfer_on_shifted_steps = true;
    model.seqpe = std::make_shared<seqpe::SeqPe>(seqpe_config, init_gen);
    pe = model.seqpe;
  } else {
    pe = models::make_position_encoding(config, init_gen);
  }
  model.gpt = std::make_unique<models::Gpt>(config, init_gen, pe);
  return model;
}

data::BpeTokenizer load_tokenizer(const json& model_json) {
  const std::filesystem::path dir = model_json.at("tokenizer").get<std::string>();
  data::BpeTokenizer tokenizer = data::BpeTokenizer::load(dir / "vocab.json", dir / "merges.txt");
  ENGINE_CHECK(tokenizer.end_of_text().has_value(), "the tokenizer in ", dir.string(), " has no end-of-text token");
  ENGINE_CHECK(tokenizer.vocab_size() == model_json.at("vocab_size").get<int64_t>(), "the tokenizer in ", dir.string(),
               " has ", tokenizer.vocab_size(), " tokens, the model ", model_json.at("vocab_size").get<int64_t>());
  return tokenizer;
}

std::vector<data::QaExample> load_qa_file(const std::string& path) {
  return path.ends_with(".jsonl") ? data::read_qa_jsonl(path) : data::flatten(data::read_squad(path));
}

int position_third(double fraction) {
  ENGINE_CHECK(fraction >= 0 && fraction <= 1, "position_third: ", fraction, " is outside [0, 1]");
  return int(std::min(2.0, std::floor(3 * fraction)));
}

int gold_position_bucket(const data::QaExample& example) {
  if (example.gold_passage) return position_third(example.gold_passage->relative);
  if (example.answer_starts.empty() || example.context.empty()) return -1;
  return position_third(double(example.answer_starts.front()) / double(example.context.size()));
}

const char* bucket_name(int bucket) {
  static const char* names[] = {"beginning", "middle", "end"};
  return bucket >= 0 && bucket < 3 ? names[bucket] : "unknown";
}

std::string make_prompt(const data::QaExample& example, bool with_context) {
  if (with_context) return data::qa_prompt(example);
  ENGINE_CHECK(example.prompt.empty(), "question ", example.id,
               ": a jsonl prompt has no separate question for the no-context mode");
  return "Question: " + example.question + "\nAnswer:";
}

std::vector<int64_t> encode_prompt(const data::BpeTokenizer& tokenizer, const std::string& prompt) {
  const std::vector<data::TokenId> ids = tokenizer.encode_ordinary(strip(prompt));
  return {ids.begin(), ids.end()};
}

std::vector<int64_t> encode_answer(const data::BpeTokenizer& tokenizer, const std::string& answer) {
  std::string text(1, ' ');  // appended rather than " " + ...: GCC 12 gives a false -Wrestrict there
  text += strip(answer);
  const std::vector<data::TokenId> ids = tokenizer.encode_ordinary(text);
  return {ids.begin(), ids.end()};
}

std::vector<int64_t> truncate_prompt(const data::BpeTokenizer& tokenizer, const std::vector<int64_t>& prompt,
                                     const std::vector<int64_t>& answer, const std::string& answer_text,
                                     int64_t length) {
  const int64_t room = length + 1 - int64_t(answer.size()) - 1;  // prompt tokens that fit
  if (int64_t(prompt.size()) <= room) return prompt;
  if (room <= 0) return {};
  const std::vector<int64_t> kept(prompt.end() - room, prompt.end());
  const std::vector<data::TokenId> ids(kept.begin(), kept.end());
  return tokenizer.decode(ids).find(strip(answer_text)) == std::string::npos ? std::vector<int64_t>{} : kept;
}

QaSequence make_sequence(const std::vector<int64_t>& prompt, const std::vector<int64_t>& answer, int64_t eot,
                         int64_t length) {
  const int64_t n = int64_t(prompt.size() + answer.size()) + 1;  // tokens
  ENGINE_CHECK(!prompt.empty() && !answer.empty(), "make_sequence: empty prompt or answer");
  ENGINE_CHECK(n - 1 <= length, "make_sequence: ", n - 1, " inputs exceed the length ", length);
  std::vector<int64_t> tokens(prompt);
  tokens.insert(tokens.end(), answer.begin(), answer.end());
  tokens.push_back(eot);
  QaSequence seq{std::vector<int64_t>(size_t(length), eot), std::vector<int64_t>(size_t(length), kIgnore)};
  const int64_t pad = length - (n - 1);
  for (int64_t i = 0; i + 1 < n; ++i) {
    seq.inputs[size_t(pad + i)] = tokens[size_t(i)];
    // Target i is token i + 1: scored when it is an answer token or the end-of-text.
    if (i + 1 >= int64_t(prompt.size())) seq.targets[size_t(pad + i)] = tokens[size_t(i + 1)];
  }
  return seq;
}

std::vector<EncodedExample> encode_examples(const std::vector<data::QaExample>& items,
                                            const data::BpeTokenizer& tokenizer,
                                            int64_t length, int64_t& truncated, int64_t& dropped) {
  std::vector<EncodedExample> examples;
  truncated = dropped = 0;
  for (const data::QaExample& item : items) {
    const std::vector<int64_t> prompt = encode_prompt(tokenizer, make_prompt(item));
    EncodedExample example{{}, encode_answer(tokenizer, item.answers.front())};
    example.prompt = truncate_prompt(tokenizer, prompt, example.answer, item.answers.front(), length);
    if (example.prompt.empty()) {
      ++dropped;
      continue;
    }
    if (example.prompt.size() < prompt.size()) ++truncated;
    examples.push_back(std::move(example));
  }
  return examples;
}

namespace {

// Token ids (shape) on the device of `model`'s parameters.
engine::Tensor model_indices(const models::Gpt& model, const std::vector<int64_t>& ids, const engine::Shape& shape) {
  return engine::Tensor::from_indices(ids, shape).to(model.parameters().front().device());
}

}  // namespace

apps::Perplexity answer_perplexity(models::Gpt& model, const std::vector<EncodedExample>& examples, int64_t eot) {
  engine::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  engine::Generator unused_dropout(0);
  apps::Perplexity result;
  for (const EncodedExample& example : examples) {
    const int64_t T = int64_t(example.prompt.size() + example.answer.size());
    const QaSequence seq = make_sequence(example.prompt, example.answer, eot, T);
    const engine::Tensor logits = model.forward(model_indices(model, seq.inputs, {1, T}), unused_dropout);
    const int64_t scored = int64_t(example.answer.size()) + 1;
    result.nll += ops::cross_entropy(logits, model_indices(model, seq.targets, {1, T}), kIgnore).item() *
                  double(scored);
    result.tokens += scored;
  }
  model.train(was_training);
  return result;
}

double answer_nll(models::Gpt& model, const std::vector<int64_t>& prompt, const std::vector<int64_t>& answer,
                  int64_t eot, int64_t eval_length) {
  ENGINE_CHECK(!model.is_training(), "answer_nll: call eval() first");
  engine::NoGradGuard no_grad;
  const int64_t T = int64_t(prompt.size() + answer.size());
  const QaSequence seq = make_sequence(prompt, answer, eot, T);
  models::KvCache cache = model.make_cache(T, std::max(T, eval_length));
  const engine::Tensor logits = model.forward_cached(model_indices(model, seq.inputs, {1, T}), cache);
  const double mean = ops::cross_entropy(logits, model_indices(model, seq.targets, {1, T}), kIgnore).item();
  return mean * double(answer.size() + 1);
}

std::vector<int64_t> greedy_answer(models::Gpt& model, const std::vector<int64_t>& prompt, int64_t max_new,
                                   int64_t eot, int64_t eval_length) {
  ENGINE_CHECK(!model.is_training(), "greedy_answer: call eval() first");
  ENGINE_CHECK(!prompt.empty() && max_new > 0, "greedy_answer: empty prompt or max_new <= 0");
  engine::NoGradGuard no_grad;
  const auto argmax_last = [](const engine::Tensor& logits) {  // (1, T, V) -> argmax of row T-1
    engine::Tensor index;
    ops::max(logits.select(1, logits.size(1) - 1), 1, false, &index);
    return index.to_vector<int64_t>()[0];
  };
  const int64_t reach = int64_t(prompt.size()) + max_new - 1;  // the last token fed
  models::KvCache cache = model.make_cache(reach, std::max(reach, eval_length));
  std::vector<int64_t> answer, feed(prompt);
  while (int64_t(answer.size()) < max_new) {
    const int64_t next =
        argmax_last(model.forward_cached(model_indices(model, feed, {1, int64_t(feed.size())}), cache));
    if (next == eot) break;
    answer.push_back(next);
    feed = {next};
  }
  return answer;
}

std::string normalize_answer(const std::string& text) {
  // lower, then remove_punc (string.punctuation: the ASCII punctuation characters).
  std::string s;
  for (const char c : lower(text))
    if (!std::ispunct(static_cast<unsigned char>(c))) s += c;
  // remove_articles: re.sub(r'\b(a|an|the)\b', ' ', s).
  std::string no_articles;
  for (size_t i = 0; i < s.size();) {
    const bool boundary_before = i == 0 || !word_char(static_cast<unsigned char>(s[i - 1]));
    size_t matched = 0;
    if (boundary_before)
      for (const std::string article : {"the", "an", "a"})
        if (s.compare(i, article.size(), article) == 0 &&
            (i + article.size() == s.size() || !word_char(static_cast<unsigned char>(s[i + article.size()])))) {
          matched = article.size();
          break;
        }
    if (matched > 0) {
      no_articles += ' ';
      i += matched;
    } else {
      no_articles += s[i++];
    }
  }
  // white_space_fix: ' '.join(s.split()).
  std::string result;
  for (size_t i = 0; i < no_articles.size();) {
    while (i < no_articles.size() && std::isspace(static_cast<unsigned char>(no_articles[i]))) ++i;
    const size_t begin = i;
    while (i < no_articles.size() && !std::isspace(static_cast<unsigned char>(no_articles[i]))) ++i;
    if (i == begin) continue;
    if (!result.empty()) result += ' ';
    result.append(no_articles, begin, i - begin);
  }
  return result;
}

bool exact_match(const std::string& prediction, const std::vector<std::string>& golds) {
  const std::string normalized = normalize_answer(prediction);
  return std::any_of(golds.begin(), golds.end(),
                     [&](const std::string& g) { return normalize_answer(g) == normalized; });
}

bool contains_match(const std::string& prediction, const std::vector<std::string>& golds) {
  const std::string output = lower(strip(prediction));
  return std::any_of(golds.begin(), golds.end(),
                     [&](const std::string& g) { return output.find(lower(strip(g))) != std::string::npos; });
}

}  // namespace apps
