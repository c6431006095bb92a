// Tests of SQuAD v1.1 JSON and the authors' jsonl (data/squad.h): offsets, round trips, errors.
#include "data/squad.h"

#include <doctest/doctest.h>

#include <string>

#include "engine/error.h"
#include "temp_dir.h"

namespace {

// Checks that `call` throws engine::Error whose message contains every one of `parts`.
template <typename Call>
void check_error(Call&& call, std::initializer_list<std::string> parts) {
  try {
    call();
    FAIL("expected an error containing \"", *parts.begin(), "\"");
  } catch (const engine::Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      CAPTURE(message);
      CHECK(message.find(part) != std::string::npos);
    }
  }
}

// "é" is 2 bytes, "東京" 6 bytes, "😀" 4 bytes (one code point, two UTF-16 units): code point and
// byte offsets differ after each.
const std::string kContext = "Café in 東京 😀 serves crème brûlée.";

std::string squad_json(const std::string& context, int64_t answer_start, const std::string& text) {
  return R"({"version": "1.1", "data": [{"title": "Tést", "paragraphs": [{"context": )" + context +
         R"(, "qas": [{"id": "q1", "question": "What?", "answers": [{"text": )" + text + R"(, "answer_start": )" +
         std::to_string(answer_start) + "}]}]}]}]}";
}

data::QaQuestion make_question(std::string id, std::string text, std::vector<data::QaAnswer> answers) {
  data::QaQuestion question;
  question.id = std::move(id);
  question.question = std::move(text);
  question.answers = std::move(answers);
  return question;
}

data::QaParagraph make_paragraph(std::string context, std::vector<data::QaQuestion> questions) {
  data::QaParagraph paragraph;
  paragraph.context = std::move(context);
  paragraph.questions = std::move(questions);
  return paragraph;
}

}  // namespace

TEST_CASE("squad: answer_start counts code points; spans become byte offsets") {
  TempDir dir;
  // Code points: C a f é _ i n _ 東 京 _ 😀 _ s e r v e s _ c r è m e ...
  //              0 1 2 3 4 5 6 7 8  9  10 11 12 13 ...
  write_text_file(dir / "a.json", squad_json("\"" + kContext + "\"", 13, "\"serves\""));
  const data::QaDataset dataset = data::read_squad((dir / "a.json").string());
  REQUIRE(dataset.articles.size() == 1);
  CHECK(dataset.articles[0].title == "Tést");
  const data::QaAnswer& answer = dataset.articles[0].paragraphs[0].questions[0].answers[0];
  CHECK(answer.text == "serves");
  CHECK(answer.start == static_cast<int64_t>(kContext.find("serves")));
  CHECK(answer.start == 13 + 1 + 4 + 3);  // é +1, 東京 +4, 😀 +3 bytes over code points

  // JSON escapes decode to the same text.
  write_text_file(dir / "b.json",
                  squad_json(R"("Caf\u00e9 in \u6771\u4eac \ud83d\ude00 serves cr\u00e8me br\u00fbl\u00e9e.")", 8,
                             R"("\u6771\u4eac")"));
  const data::QaDataset escaped = data::read_squad((dir / "b.json").string());
  CHECK(escaped.articles[0].paragraphs[0].context == kContext);
  CHECK(escaped.articles[0].paragraphs[0].questions[0].answers[0].start == static_cast<int64_t>(kContext.find("東京")));
}

TEST_CASE("squad: write then read round trip with non-ASCII contexts and extra fields") {
  TempDir dir;
  data::QaDataset dataset;
  data::QaArticle article{"Ünïcode", {}};
  data::QaParagraph paragraph;
  paragraph.context = kContext + "\nA second passage: Zürich.";
  paragraph.context_tokens = 42;
  data::QaQuestion first =
      make_question("q-1", "Which dessert?", {{"crème brûlée", static_cast<int64_t>(paragraph.context.find("crème"))}});
  first.source = "test_source";
  data::QaGoldPassage gold;
  gold.start = static_cast<int64_t>(kContext.size()) + 1;
  gold.length = static_cast<int64_t>(paragraph.context.size()) - gold.start;
  gold.index = 1;
  gold.passages = 2;
  gold.relative = 1.0;
  data::QaQuestion second = make_question("q-2", "Which city?",
                                          {{"Zürich", static_cast<int64_t>(paragraph.context.find("Zürich"))},
                                           {"東京", static_cast<int64_t>(paragraph.context.find("東京"))}});
  second.gold_passage = gold;
  paragraph.questions = {first, second};
  article.paragraphs = {paragraph, make_paragraph("plain ascii", {make_question("q-3", "?", {{"ascii", 6}})})};
  dataset.articles = {article};

  const std::string path = (dir / "out.json").string();
  data::write_squad(dataset, path);
  CHECK(data::read_squad(path) == dataset);

  // The file holds code-point offsets, as Python's SQuAD tools expect.
  const std::string text = read_text_file(path);
  CHECK(text.find("\"answer_start\":20") != std::string::npos);  // "crème" after 20 code points
  CHECK(text.find("\"gold_passage\":{\"start\":" + std::to_string(kContext.size() + 1 - 11)) !=
        std::string::npos);  // 11 bytes more than code points in kContext

  const std::vector<data::QaExample> examples = data::flatten(dataset);
  REQUIRE(examples.size() == 3);
  CHECK(examples[1].id == "q-2");
  CHECK(examples[1].answers == std::vector<std::string>{"Zürich", "東京"});
  CHECK(examples[1].context.substr(examples[1].answer_starts[0], 7) == "Zürich");
  CHECK(examples[1].gold_passage == gold);
  CHECK(std::string(data::gold_position_bin(gold)) == "end");
  gold.relative = 0.0;
  CHECK(std::string(data::gold_position_bin(gold)) == "beginning");
  gold.relative = 0.5;
  CHECK(std::string(data::gold_position_bin(gold)) == "middle");
  gold.relative = 2.0 / 3;
  CHECK(std::string(data::gold_position_bin(gold)) == "end");
  CHECK(examples[0].source == "test_source");
  CHECK(examples[0].context_tokens == 42);
  CHECK(examples[2].context_tokens == -1);
  CHECK(data::qa_prompt(examples[2]) == "plain ascii\n\nQuestion: ?\nAnswer:");
}

TEST_CASE("squad: validation errors name the file, article, paragraph, question and span") {
  TempDir dir;
  const std::string path = (dir / "bad.json").string();

  // Off by one code point: the message shows what the context holds there.
  write_text_file(path, squad_json("\"" + kContext + "\"", 14, "\"serves\""));
  check_error([&] { data::read_squad(path); }, {path, "article 0 (\"Tést\")", "paragraph 0", "question \"q1\"",
                                                "\"serves\"", "answer_start 14", "holds \"erves \""});

  // Past the end.
  write_text_file(path, squad_json("\"short\"", 3, "\"rtx\""));
  check_error([&] { data::read_squad(path); }, {path, "question \"q1\"", "runs past the end"});
  write_text_file(path, squad_json("\"short\"", 99, "\"x\""));
  check_error([&] { data::read_squad(path); }, {"answer_start 99", "runs past the end"});

  // Missing and mistyped fields.
  write_text_file(path, R"({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]})");
  check_error([&] { data::read_squad(path); }, {path, "paragraph 0", "missing field \"context\""});
  write_text_file(
      path,
      R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [{"id": "x", "question": "?", "answers": [{"text": "a"}]}]}]}]})");
  check_error([&] { data::read_squad(path); }, {"question \"x\"", "answer 0", "missing field \"answer_start\""});
  write_text_file(path, R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [{"id": 7}]}]}]})");
  check_error([&] { data::read_squad(path); }, {"field \"id\" must be a string"});
  write_text_file(path, R"({"version": "1.1"})");
  check_error([&] { data::read_squad(path); }, {path, "missing field \"data\""});
  write_text_file(
      path,
      R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [{"id": "x", "question": "?", "answers": []}]}]}]})");
  check_error([&] { data::read_squad(path); }, {"question \"x\"", "has no answers"});
  write_text_file(path, "{\"data\": [");
  check_error([&] { data::read_squad(path); }, {path, "not valid JSON"});
  check_error([&] { data::read_squad((dir / "absent.json").string()); }, {"absent.json", "cannot open"});

  // A gold passage whose start + length overflows int64 (signed overflow before the check).
  write_text_file(path, R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [{"id": "x",
      "question": "?", "answers": [{"text": "a", "answer_start": 0}], "gold_passage": {"start": 9223372036854775000,
      "length": 9000, "index": 0, "passages": 1, "relative": 0.5}}]}]}]})");
  check_error([&] { data::read_squad(path); }, {"gold_passage", "are outside the context"});

  // Repeated ids.
  write_text_file(path, R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [
      {"id": "x", "question": "?", "answers": [{"text": "a", "answer_start": 0}]},
      {"id": "x", "question": "?", "answers": [{"text": "b", "answer_start": 1}]}]}]}]})");
  check_error([&] { data::read_squad(path); }, {"question \"x\"", "repeats"});

  // Writing validates too, and leaves no file behind on failure.
  data::QaDataset dataset;
  dataset.articles = {data::QaArticle{"T", {make_paragraph("abc", {make_question("x", "?", {{"bc", 0}})})}}};
  const std::string out = (dir / "never.json").string();
  check_error([&] { data::write_squad(dataset, out); }, {out, "question \"x\"", "holds \"ab\""});
  dataset.articles[0].paragraphs[0].context = "é";
  dataset.articles[0].paragraphs[0].questions[0].answers = {{"\xa9", 1}};
  check_error([&] { data::write_squad(dataset, out); }, {"inside a UTF-8 character"});
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("squad: the authors' jsonl") {
  TempDir dir;
  const std::string path = (dir / "validation.jsonl").string();
  write_text_file(path,
                  "{\"input\": \"Context é.\\nQuestion?\", \"outputs\": [\"é\", \"e\"], \"index\": 5}\n"
                  "\n"
                  "{\"input\": \"Other\", \"outputs\": \"answer\"}\n");
  const std::vector<data::QaExample> examples = data::read_qa_jsonl(path);
  REQUIRE(examples.size() == 2);
  CHECK(examples[0].id == "5");
  CHECK(examples[0].prompt == "Context é.\nQuestion?");
  CHECK(data::qa_prompt(examples[0]) == examples[0].prompt);
  CHECK(examples[0].answers == std::vector<std::string>{"é", "e"});
  CHECK(examples[0].answer_starts.empty());
  CHECK(examples[1].id == "3");  // the line number when there is no index
  CHECK(examples[1].answers == std::vector<std::string>{"answer"});

  // Written back in the same format (index = position), the prompts and answers survive.
  const std::string copy = (dir / "copy.jsonl").string();
  data::write_qa_jsonl(examples, copy);
  const std::vector<data::QaExample> again = data::read_qa_jsonl(copy);
  REQUIRE(again.size() == 2);
  CHECK(again[1].id == "1");
  CHECK(again[1].prompt == "Other");
  CHECK(again[0].answers == examples[0].answers);

  write_text_file(path, "{\"input\": \"a\", \"outputs\": [\"x\"]}\n{\"outputs\": [\"x\"]}\n");
  check_error([&] { data::read_qa_jsonl(path); }, {path + ":2", "missing field \"input\""});
  write_text_file(path, "{\"input\": \"a\", \"outputs\": []}\n");
  check_error([&] { data::read_qa_jsonl(path); }, {path + ":1", "\"outputs\" must be a non-empty list"});
  write_text_file(path, "{\"input\": \"a\", \"outputs\": [1]}\n");
  check_error([&] { data::read_qa_jsonl(path); }, {path + ":1", "expected strings"});
  write_text_file(path,
                  "{\"input\": \"a\", \"outputs\": [\"x\"], \"index\": 1}\n{\"input\": \"b\", \"outputs\": [\"y\"], "
                  "\"index\": 1}\n");
  check_error([&] { data::read_qa_jsonl(path); }, {path + ":2", "repeats line 1"});
  write_text_file(path, "not json\n");
  check_error([&] { data::read_qa_jsonl(path); }, {path + ":1", "not valid JSON"});
}
