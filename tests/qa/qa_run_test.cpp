// The pieces of the QA apps that can fail quietly: which tokens the answer loss scores, prompt
// truncation, SQuAD's answer normalisation and the two matches, gold-position thirds, the file
// reader's checks; and, end to end, a tiny model fine-tuned on one question answers it greedily.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "apps/qa_run.h"
#include "engine/optim/adamw.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"

using engine::Tensor;

namespace {

// One token per byte, plus <|endoftext|> as id 256.
data::BpeTokenizer byte_tokenizer() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
  tokens.emplace_back(data::kEndOfText);
  return data::BpeTokenizer(tokens, {}, 256);
}

std::vector<int64_t> ids(const data::BpeTokenizer& tokenizer, const std::string& text) {
  const auto t = tokenizer.encode_ordinary(text);
  return {t.begin(), t.end()};
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("test_qa_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("make_sequence scores only the answer tokens and end-of-text, left-padded") {
  // tokens 1 2 3 | 7 8 | eot 0: the last prompt token (3) predicts the first answer token.
  const apps::QaSequence seq = apps::make_sequence({1, 2, 3}, {7, 8}, 0, 7);
  const int64_t I = apps::kIgnore;
  CHECK(seq.inputs == std::vector<int64_t>{0, 0, 1, 2, 3, 7, 8});
  CHECK(seq.targets == std::vector<int64_t>{I, I, I, I, 7, 8, 0});
  // Exactly full: no padding.
  const apps::QaSequence full = apps::make_sequence({5}, {6}, 9, 2);
  CHECK(full.inputs == std::vector<int64_t>{5, 6});
  CHECK(full.targets == std::vector<int64_t>{6, 9});
  CHECK_THROWS_WITH(apps::make_sequence({1, 2, 3}, {7, 8}, 0, 4), doctest::Contains("exceed the length 4"));

  // The loss is the mean NLL over those three targets only: changing a prompt logit row leaves it.
  engine::Generator gen(1);
  Tensor logits = Tensor::randn({1, 7, 10}, gen);
  const Tensor targets = Tensor::from_indices(seq.targets, {1, 7});
  const double loss = ops::cross_entropy(logits, targets, apps::kIgnore).item();
  std::vector<double> values = logits.to_vector<double>();
  for (int i = 0; i < 4 * 10; ++i) values[size_t(i)] = 5.0 * double(i % 7);
  const double changed = ops::cross_entropy(Tensor::from_vector(values, {1, 7, 10}), targets, apps::kIgnore).item();
  CHECK(changed == doctest::Approx(loss).epsilon(1e-6));
}

TEST_CASE("truncate_prompt drops the earliest prompt tokens and refuses a cut-off answer") {
  const data::BpeTokenizer tok = byte_tokenizer();
  const std::vector<int64_t> prompt = ids(tok, "xxxx Oslo yy. Q?"), answer = ids(tok, " Oslo");
  // 16 prompt + 5 answer + eot = 22 tokens = 21 inputs.
  CHECK(apps::truncate_prompt(tok, prompt, answer, "Oslo", 21) == prompt);
  const std::vector<int64_t> cut = apps::truncate_prompt(tok, prompt, answer, "Oslo", 17);  // 12 prompt tokens
  CHECK(tok.decode(std::vector<data::TokenId>(cut.begin(), cut.end())) == " Oslo yy. Q?");
  CHECK(apps::truncate_prompt(tok, prompt, answer, "Oslo", 14).empty());  // "slo yy. Q?" lost the answer
  CHECK(apps::truncate_prompt(tok, prompt, answer, "Oslo", 5).empty());   // the answer alone fills L
}

TEST_CASE("normalize_answer follows SQuAD v1.1's normalize_answer") {
  CHECK(apps::normalize_answer("The Cat!") == "cat");
  CHECK(apps::normalize_answer("  a  b \t c ") == "b c");
  CHECK(apps::normalize_answer("theater") == "theater");          // articles only as whole words
  CHECK(apps::normalize_answer("An apple, the pie.") == "apple pie");
  CHECK(apps::normalize_answer("U.S.A.") == "usa");
  CHECK(apps::normalize_answer("the_cat") == "thecat");           // '_' is punctuation, removed first
  CHECK(apps::normalize_answer("a-the an") == "athe");             // punctuation goes before the articles
  CHECK(apps::normalize_answer("the") == "");
}

TEST_CASE("exact match normalises, containment only lower-cases and strips") {
  CHECK(apps::exact_match("the Eiffel Tower.", {"Eiffel tower"}));
  CHECK_FALSE(apps::exact_match("Eiffel", {"Eiffel Tower"}));
  CHECK_FALSE(apps::exact_match("Eiffel Tower in Paris", {"Eiffel Tower"}));
  CHECK(apps::exact_match("paris", {"London", "Paris"}));  // the best over the gold answers
  CHECK(apps::exact_match("the u.s.", {"US"}));
  CHECK(apps::contains_match(" It is Paris, France\n", {"London", "  PARIS "}));
  CHECK_FALSE(apps::contains_match("Pari", {"Paris"}));
  CHECK_FALSE(apps::contains_match("the u.s.", {"US"}));  // no punctuation removal in the paper's match
  CHECK(apps::contains_match("Eiffel Tower in Paris", {"eiffel tower"}));
}

TEST_CASE("gold positions fall in thirds of the context") {
  CHECK(apps::position_third(0.0) == 0);
  CHECK(apps::position_third(0.33) == 0);
  CHECK(apps::position_third(1.0 / 3) == 1);
  CHECK(apps::position_third(0.66) == 1);
  CHECK(apps::position_third(2.0 / 3) == 2);
  CHECK(apps::position_third(1.0) == 2);
  CHECK_THROWS(apps::position_third(1.5));
  data::QaExample example;
  example.context = std::string(30, 'x');
  CHECK(apps::gold_position_bucket(example) == -1);  // nothing to go by
  example.answer_starts = {9};
  CHECK(apps::gold_position_bucket(example) == 0);
  example.answer_starts = {10};
  CHECK(apps::gold_position_bucket(example) == 1);
  example.answer_starts = {29};
  CHECK(apps::gold_position_bucket(example) == 2);
  example.gold_passage = data::QaGoldPassage{};  // the builder's metadata wins over the answer offset
  example.gold_passage->relative = 0.5;
  CHECK(apps::gold_position_bucket(example) == 1);
  for (const double relative : {0.0, 0.3, 1.0 / 3, 0.5, 2.0 / 3, 0.9, 1.0}) {  // the same thirds as the data layer's
    example.gold_passage->relative = relative;
    const std::string bin = data::gold_position_bin(*example.gold_passage);
    CHECK(apps::bucket_name(apps::gold_position_bucket(example)) == bin);
  }
  CHECK(std::string(apps::bucket_name(1)) == "middle");
  CHECK(std::string(apps::bucket_name(-1)) == "unknown");
}

TEST_CASE("load_qa_file reads SQuAD v1.1 and the authors' jsonl, and checks answer spans") {
  const std::string context = "Alpha beta. The capital of Norway is Oslo.";
  const auto good = write_temp("good.json", R"({"version": "1.1", "data": [{"title": "t", "paragraphs": [
      {"context": ")" + context + R"(", "qas": [{"id": "q1", "question": "Capital of Norway?",
       "answers": [{"text": "Oslo", "answer_start": 37}, {"text": "Oslo.", "answer_start": 37}]}]}]}]})");
  const std::vector<data::QaExample> items = apps::load_qa_file(good.string());
  REQUIRE(items.size() == 1);
  CHECK(items[0].id == "q1");
  CHECK(items[0].answers == std::vector<std::string>{"Oslo", "Oslo."});
  CHECK(apps::gold_position_bucket(items[0]) == 2);
  CHECK(apps::make_prompt(items[0]) == context + "\n\nQuestion: Capital of Norway?\nAnswer:");
  CHECK(apps::make_prompt(items[0], false) == "Question: Capital of Norway?\nAnswer:");

  const auto bad = write_temp("bad.json", R"({"version": "1.1", "data": [{"title": "t", "paragraphs": [
      {"context": "abc Oslo",
      "qas": [{"id": "q9", "question": "?", "answers": [{"text": "Oslo", "answer_start": 3}]}]}]}]})");
  CHECK_THROWS_WITH(apps::load_qa_file(bad.string()), doctest::Contains("q9"));

  const auto jsonl = write_temp("a.jsonl", "{\"input\": \"ctx Q?\", \"outputs\": [\"x\", \"y\"], \"index\": 4}\n");
  const std::vector<data::QaExample> rows = apps::load_qa_file(jsonl.string());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].answers.size() == 2);
  CHECK(apps::gold_position_bucket(rows[0]) == -1);
  CHECK(apps::make_prompt(rows[0]) == "ctx Q?");
  CHECK_THROWS(apps::make_prompt(rows[0], false));
  for (const auto& p : {good, bad, jsonl}) std::filesystem::remove(p);
}

TEST_CASE("a tiny model fine-tuned on one question answers it by greedy decoding") {
  const data::BpeTokenizer tok = byte_tokenizer();
  data::QaExample item;
  item.context = "Grass: green. Sky: blue.";
  item.question = "Sky?";
  item.answers = {"blue"};
  const std::vector<int64_t> prompt = apps::encode_prompt(tok, apps::make_prompt(item));
  const std::vector<int64_t> answer = apps::encode_answer(tok, "blue");
  const int64_t eot = *tok.end_of_text(), T = int64_t(prompt.size() + answer.size());
  const apps::QaSequence seq = apps::make_sequence(prompt, answer, eot, T);

  for (const std::string pe : {"rope", "ape"}) {
    CAPTURE(pe);
    engine::Generator gen(7);
    models::GptConfig config;
    config.vocab_size = tok.vocab_size();
    config.context = T;
    config.layers = 1;
    config.channels = 32;
    config.heads = 2;
    config.embedding_dropout = config.residual_dropout = 0.0;
    config.position_encoding = pe;
    // APE: T rows, fewer than prompt + 16 new tokens: the decode resizes them to prompt + 15.
    models::Gpt model(config, gen, pe == "ape" ? nullptr : models::make_position_encoding(config, gen));
    engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
    const Tensor inputs = Tensor::from_indices(seq.inputs, {1, T}), targets = Tensor::from_indices(seq.targets, {1, T});
    double loss = 0;
    for (int step = 0; step < 40; ++step) {
      optimizer.zero_grad();
      const Tensor l = ops::cross_entropy(model.forward(inputs, gen), targets, apps::kIgnore);
      l.backward();
      optimizer.step();
      loss = l.item();
    }
    MESSAGE(pe << ": answer loss after 40 steps " << loss);
    model.eval();
    const std::vector<int64_t> out = apps::greedy_answer(model, prompt, 16, eot, T);
    const std::string text = tok.decode(std::vector<data::TokenId>(out.begin(), out.end()));
    CHECK(text == " blue");
    CHECK(apps::exact_match(text, item.answers));
  }
}

TEST_CASE("answer_nll scores the answer and end-of-text as forward() does, APE resized to the evaluation length") {
  const data::BpeTokenizer tok = byte_tokenizer();
  const std::vector<int64_t> prompt = apps::encode_prompt(tok, "Sky: blue. Question: Sky?\nAnswer:");
  const std::vector<int64_t> answer = apps::encode_answer(tok, "blue");
  const int64_t eot = *tok.end_of_text(), T = int64_t(prompt.size() + answer.size());
  const apps::QaSequence seq = apps::make_sequence(prompt, answer, eot, T);
  const Tensor inputs = Tensor::from_indices(seq.inputs, {1, T}), targets = Tensor::from_indices(seq.targets, {1, T});
  const double scored = double(answer.size() + 1);

  for (const std::string pe : {"rope", "ape"}) {
    CAPTURE(pe);
    engine::Generator gen(11);
    models::GptConfig config;
    config.vocab_size = tok.vocab_size();
    config.context = pe == "ape" ? T - 9 : T;  // APE: the sequence reaches 9 positions past the rows
    config.layers = 2;
    config.channels = 32;
    config.heads = 4;
    config.position_encoding = pe;
    models::Gpt model(config, gen, pe == "ape" ? nullptr : models::make_position_encoding(config, gen));
    model.eval();
    // forward() resizes APE rows to the sequence, T: the reference for eval_length <= T.
    const double reference = ops::cross_entropy(model.forward(inputs, gen), targets, apps::kIgnore).item() * scored;
    CHECK(apps::answer_nll(model, prompt, answer, eot, 0) == doctest::Approx(reference).epsilon(1e-5));
    CHECK(apps::answer_nll(model, prompt, answer, eot, T) == doctest::Approx(reference).epsilon(1e-5));
    const double longer = apps::answer_nll(model, prompt, answer, eot, 3 * T);
    if (pe == "ape") CHECK(std::abs(longer - reference) > 1e-3 * reference);  // rows resized to 3T instead
    else CHECK(longer == doctest::Approx(reference).epsilon(1e-5));
    CHECK(reference > 0);
  }
  engine::Generator gen(3);
  models::GptConfig config;
  config.vocab_size = tok.vocab_size();
  config.context = T;
  config.position_encoding = "rope";
  models::Gpt training(config, gen, models::make_position_encoding(config, gen));
  CHECK_THROWS(apps::answer_nll(training, prompt, answer, eot, T));  // still in training mode
}
