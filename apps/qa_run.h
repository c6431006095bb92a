// What finetune_qa and eval_qa share (docs/method.md#long-context-question-answering): the QA run configuration, question
// files, the prompt format, the answer-only training sequence, greedy answer decoding and the two
// answer metrics.
//
// Prompt format (the authors' template could not be retrieved, docs/method.md#long-context-question-answering; this one is ours, from
// data::qa_prompt):
//   "<context>\n\nQuestion: <question>\nAnswer:"     the answer follows as " <answer>" + end-of-text
//   "Question: <question>\nAnswer:"                   no-context baseline
// Files in the authors' jsonl form (`input`, `outputs`) carry their own prompt, used as it is.
//
//   T = tokens of a sequence, L = the fine-tuning length
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/lm_run.h"
#include "seqpe/seqpe_options.h"
#include "data/bpe_tokenizer.h"
#include "data/squad.h"
#include "models/gpt.h"

namespace apps {

// Every key a fine-tuning run config may have: apps::default_run_config()'s (the model keys are
// inherited from the language model, see inherit_model_config) plus the QA ones, with QA defaults
// for the training keys.
nlohmann::json default_qa_config();
// `qa_config` with every key of the language model's run config `lm_config` copied in, except the
// training keys (out, steps, batch, lr, ...) that a fine-tuning run sets itself: the model and its
// PE configuration are the LM's (docs/method.md#long-context-question-answering: "the PE config is inherited from the LM run").
nlohmann::json inherit_model_config(const nlohmann::json& qa_config, const nlohmann::json& lm_config);

// The model a QA run config describes: apps::build_model's, with SeqPE's distillation loss kept on
// random-shift steps (docs/method.md#distillation-loss: QA fine-tuning computes it there, the first shifted block
// being the teacher).
apps::LanguageModel build_qa_model(const nlohmann::json& run, int64_t vocab_size, engine::Generator& init_gen);

// The tokenizer a model.json (apps::read_model_json) names (vocab.json + merges.txt in its "tokenizer" directory); it
// must have an end-of-text token.
data::BpeTokenizer load_tokenizer(const nlohmann::json& model_json);

// Questions of a SQuAD v1.1 JSON file (data::read_squad, which checks every answer span) or of
// the authors' jsonl (.jsonl, data::read_qa_jsonl), one per question.
std::vector<data::QaExample> load_qa_file(const std::string& path);

// The third of the context that holds the gold passage: 0 beginning, 1 middle, 2 end, -1 unknown.
// From the builder's gold_passage.relative when present, else from the first answer's offset in
// the context (plain SQuAD); unknown for jsonl prompts.
int gold_position_bucket(const data::QaExample& example);
// The third that `fraction` in [0, 1] falls in: [0, 1/3) -> 0, [1/3, 2/3) -> 1, [2/3, 1] -> 2.
int position_third(double fraction);
const char* bucket_name(int bucket);  // "beginning", "middle", "end" (as data::gold_position_bin), "unknown"

// The prompt of `example` (data::qa_prompt); `with_context` false gives the no-context baseline
// "Question: <question>\nAnswer:", which jsonl prompts cannot provide.
std::string make_prompt(const data::QaExample& example, bool with_context = true);

// Token ids of a prompt and of its gold answer: docs/method.md#long-context-question-answering encodes input.strip() and " " + answer.strip().
std::vector<int64_t> encode_prompt(const data::BpeTokenizer& tokenizer, const std::string& prompt);
std::vector<int64_t> encode_answer(const data::BpeTokenizer& tokenizer, const std::string& answer);

// Truncation rule for sequences longer than L: when prompt + answer + end-of-text exceeds L + 1
// tokens (L inputs and their L next-token targets), the earliest prompt tokens are dropped, so the
// question and the end of the context are kept. Returns the kept prompt, or an empty vector when
// the answer text no longer occurs in the decoded kept prompt (the example would teach guessing;
// such examples are skipped) or when the answer alone does not fit.
std::vector<int64_t> truncate_prompt(const data::BpeTokenizer& tokenizer, const std::vector<int64_t>& prompt,
                                     const std::vector<int64_t>& answer, const std::string& answer_text,
                                     int64_t length);

// A training sequence of `length` L: tokens = prompt ++ answer ++ [eot] (at most L + 1 of them),
// inputs = tokens[:-1], targets = tokens[1:], with targets set to `kIgnore` wherever the target is
// a prompt token, so only the answer tokens and end-of-text are scored (the last prompt token
// predicts the first answer token). Left-padded to L with end-of-text inputs and ignored targets.
constexpr int64_t kIgnore = -100;
struct QaSequence {
  std::vector<int64_t> inputs;   // (L)
  std::vector<int64_t> targets;  // (L)
};
QaSequence make_sequence(const std::vector<int64_t>& prompt, const std::vector<int64_t>& answer, int64_t eot,
                         int64_t length);

// A training or validation example as tokens: the (possibly truncated) prompt and the first gold
// answer (docs/method.md#long-context-question-answering trains on outputs[0]).
struct EncodedExample {
  std::vector<int64_t> prompt, answer;
};
// `items` encoded for fine-tuning length L with truncate_prompt; the examples that rule drops are
// counted in `dropped`, `truncated` counts those whose prompt was cut.
std::vector<EncodedExample> encode_examples(const std::vector<data::QaExample>& items,
                                            const data::BpeTokenizer& tokenizer,
                                            int64_t length, int64_t& truncated, int64_t& dropped);

// Answer-token perplexity (docs/method.md#long-context-question-answering's validation): each example alone, unpadded, at positions
// 0..T-1, scored on its answer tokens and end-of-text only. Evaluation mode, no gradients.
apps::Perplexity answer_perplexity(models::Gpt& model, const std::vector<EncodedExample>& examples, int64_t eot);

// Negative log-likelihood (nats, summed) of `answer` then end-of-text after `prompt`, teacher-forced
// through the KV-cache path greedy_answer decodes with (evaluation mode): the same positions, and
// learned APE past its trained rows resized to `eval_length` (or to the whole sequence when that
// is longer). eval_qa's answer perplexity at each context length; answer.size() + 1 tokens scored.
double answer_nll(models::Gpt& model, const std::vector<int64_t>& prompt, const std::vector<int64_t>& answer,
                  int64_t eot, int64_t eval_length);

// Greedy continuation of `prompt` (evaluation mode) with the KV cache: at most `max_new` tokens,
// stopping after (and excluding) end-of-text. Learned APE reaching past its trained rows indexes
// them resized to the evaluation length `eval_length` (docs/method.md#long-context-question-answering), or to the prompt plus
// the new tokens when those reach further.
std::vector<int64_t> greedy_answer(models::Gpt& model, const std::vector<int64_t>& prompt, int64_t max_new,
                                   int64_t eot, int64_t eval_length);

// SQuAD v1.1's normalize_answer: lower-case, drop ASCII punctuation, drop the articles a / an /
// the as whole words, collapse whitespace. (Python's lower() and \b are Unicode-aware; here
// only ASCII letters are lower-cased and any byte >= 0x80 counts as a word character.)
std::string normalize_answer(const std::string& text);
// SQuAD exact match: normalize(prediction) == normalize(gold) for any gold answer.
bool exact_match(const std::string& prediction, const std::vector<std::string>& golds);
// The paper's match (docs/method.md#long-context-question-answering): the lower-cased, stripped text of any gold answer is a substring
// of the lower-cased, stripped prediction.
bool contains_match(const std::string& prediction, const std::vector<std::string>& golds);

}  // namespace apps
