// SQuAD v1.1 JSON and the authors' jsonl: parsing with nlohmann::json, validation of every span,
// code point <-> byte offset conversion, atomic writes.
#include "data/squad.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "data/atomic_file.h"
#include "engine/error.h"
#include "engine/json_read.h"

namespace data {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, path, ": cannot open the QA file");
  std::ostringstream contents;
  contents << in.rdbuf();
  ENGINE_CHECK(!in.bad(), path, ": error while reading");
  return contents.str();
}

bool is_continuation_byte(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

// Byte offset of code point `index` in UTF-8 `text` (text.size() for index == code point count);
// -1 when `text` has fewer code points. The text is valid UTF-8 (nlohmann checks on parsing).
int64_t byte_offset_of_code_point(const std::string& text, int64_t index) {
  int64_t seen = 0;
  for (size_t byte = 0; byte < text.size(); ++byte) {
    if (is_continuation_byte(text[byte])) continue;
    if (seen == index) return static_cast<int64_t>(byte);
    ++seen;
  }
  return seen == index ? static_cast<int64_t>(text.size()) : -1;
}

// Code points in text[0, byte).
int64_t code_points_before(const std::string& text, int64_t byte) {
  int64_t count = 0;
  for (int64_t i = 0; i < byte; ++i) count += is_continuation_byte(text[i]) ? 0 : 1;
  return count;
}

// "file: article 3 ("Title"), paragraph 2, question "id"" for error messages.
struct Where {
  const std::string& path;
  size_t article = 0;
  std::string title;
  size_t paragraph = 0;
  std::string question;

  std::string str() const {
    std::string text = engine::detail::concat(path, ": article ", article, " (\"", title, "\")");
    text += engine::detail::concat(", paragraph ", paragraph);
    if (!question.empty()) text += ", question \"" + question + "\"";
    return text;
  }
};

const json& required(const json& object, const char* field, json::value_t type, const char* type_name,
                     const std::string& where) {
  ENGINE_CHECK(object.is_object(), where, ": expected a JSON object, got a JSON ", object.type_name());
  const auto it = object.find(field);
  ENGINE_CHECK(it != object.end(), where, ": missing field \"", field, "\"");
  const bool ok = type == json::value_t::number_integer ? it->is_number_integer() : it->type() == type;
  ENGINE_CHECK(ok, where, ": field \"", field, "\" must be ", type_name, ", got a JSON ", it->type_name(), " (",
               it->dump().substr(0, 80), ")");
  return *it;
}

const std::string& required_string(const json& object, const char* field, const std::string& where) {
  return required(object, field, json::value_t::string, "a string", where).get_ref<const std::string&>();
}

const json& required_array(const json& object, const char* field, const std::string& where) {
  return required(object, field, json::value_t::array, "an array", where);
}

int64_t required_integer(const json& object, const char* field, const std::string& where) {
  return required(object, field, json::value_t::number_integer, "an integer", where).get<int64_t>();
}

// Checks that `answer` (byte offset) is the span of `context` it claims; `shown_start` is the
// offset as the file has it, for the message.
void check_span(const std::string& context, const QaAnswer& answer, size_t index, int64_t shown_start, const char* unit,
                const std::string& where) {
  const auto size = static_cast<int64_t>(context.size());
  const auto length = static_cast<int64_t>(answer.text.size());
  ENGINE_CHECK(!answer.text.empty(), where, ": answer ", index, " has empty text");
  ENGINE_CHECK(answer.start >= 0 && answer.start + length <= size, where, ": answer ", index, " \"", answer.text,
               "\" at answer_start ", shown_start, " (", unit, ") runs past the end of the context (", size, " bytes)");
  ENGINE_CHECK(!is_continuation_byte(context[answer.start]), where, ": answer ", index, " starts at byte ",
               answer.start, ", inside a UTF-8 character of the context");
  ENGINE_CHECK(context.compare(answer.start, answer.text.size(), answer.text) == 0, where, ": answer ", index, " \"",
               answer.text, "\" at answer_start ", shown_start, " (", unit,
               ") does not match the context, which holds \"", context.substr(answer.start, answer.text.size()),
               "\" there");
}

void check_gold_passage(const std::string& context, const QaGoldPassage& gold, const std::string& where) {
  const auto size = static_cast<int64_t>(context.size());
  ENGINE_CHECK(gold.start >= 0 && gold.length >= 0 && gold.start + gold.length <= size, where, ": gold_passage [",
               gold.start, ", ", gold.start + gold.length, ") bytes is outside the context (", size, " bytes)");
  ENGINE_CHECK(gold.passages >= 1 && gold.index >= 0 && gold.index < gold.passages, where, ": gold_passage index ",
               gold.index, " is not among its ", gold.passages, " passages");
  ENGINE_CHECK(gold.relative >= 0.0 && gold.relative <= 1.0, where, ": gold_passage relative ", gold.relative,
               " is outside [0, 1]");
}

QaGoldPassage read_gold_passage(const json& object, const std::string& context, const std::string& where) {
  const std::string here = where + ", gold_passage";
  const int64_t start_cp = required_integer(object, "start", here);
  const int64_t length_cp = required_integer(object, "length", here);
  ENGINE_CHECK(start_cp >= 0 && length_cp >= 0 && length_cp <= int64_t(context.size()), here, ": start ", start_cp,
               " and length ", length_cp, " (code points) are outside the context");
  // start >= 0 only when start_cp is at most the context's size: start_cp + length_cp cannot overflow.
  const int64_t start = byte_offset_of_code_point(context, start_cp);
  const int64_t end = start < 0 ? -1 : byte_offset_of_code_point(context, start_cp + length_cp);
  ENGINE_CHECK(start >= 0 && end >= 0, here, ": start ", start_cp, " and length ", length_cp,
               " (code points) are outside the context");
  QaGoldPassage gold;
  gold.start = start;
  gold.length = end - start;
  gold.index = required_integer(object, "index", here);
  gold.passages = required_integer(object, "passages", here);
  const auto it = object.find("relative");
  ENGINE_CHECK(it != object.end() && it->is_number(), here, ": field \"relative\" must be a number");
  gold.relative = it->get<double>();
  check_gold_passage(context, gold, where);
  return gold;
}

QaQuestion read_question(const json& qa, const std::string& context, const Where& paragraph_where) {
  Where where = paragraph_where;
  const std::string& id = required_string(qa, "id", where.str() + ", question");
  where.question = id;
  const std::string here = where.str();
  QaQuestion question;
  question.id = id;
  question.question = required_string(qa, "question", here);
  const json& answers = required_array(qa, "answers", here);
  ENGINE_CHECK(!answers.empty(), here, ": has no answers (unanswerable SQuAD v2 questions are not supported)");
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string answer_where = here + engine::detail::concat(", answer ", i);
    QaAnswer answer;
    answer.text = required_string(answers[i], "text", answer_where);
    const int64_t start_cp = required_integer(answers[i], "answer_start", answer_where);
    ENGINE_CHECK(start_cp >= 0, here, ": answer ", i, " has negative answer_start ", start_cp);
    answer.start = byte_offset_of_code_point(context, start_cp);
    if (answer.start < 0) answer.start = static_cast<int64_t>(context.size()) + 1;  // past the end
    check_span(context, answer, i, start_cp, "code points", here);
    question.answers.push_back(std::move(answer));
  }
  if (const auto it = qa.find("source"); it != qa.end()) {
    ENGINE_CHECK(it->is_string(), here, ": field \"source\" must be a string");
    question.source = it->get<std::string>();
  }
  if (const auto it = qa.find("gold_passage"); it != qa.end())
    question.gold_passage = read_gold_passage(*it, context, here);
  return question;
}

// Validation shared by write_squad: spans, gold passages, unique ids.
void validate(const QaDataset& dataset, const std::string& path) {
  std::unordered_map<std::string, std::string> seen_ids;  // id -> where first seen
  for (size_t a = 0; a < dataset.articles.size(); ++a) {
    const QaArticle& article = dataset.articles[a];
    for (size_t p = 0; p < article.paragraphs.size(); ++p) {
      const QaParagraph& paragraph = article.paragraphs[p];
      for (const QaQuestion& question : paragraph.questions) {
        const std::string here = Where{path, a, article.title, p, question.id}.str();
        ENGINE_CHECK(!question.answers.empty(), here, ": has no answers");
        for (size_t i = 0; i < question.answers.size(); ++i)
          check_span(paragraph.context, question.answers[i], i, question.answers[i].start, "bytes", here);
        if (question.gold_passage) check_gold_passage(paragraph.context, *question.gold_passage, here);
        const auto [it, inserted] = seen_ids.emplace(question.id, here);
        ENGINE_CHECK(inserted, here, ": question id repeats (first at ", it->second, ")");
      }
    }
  }
}

}  // namespace

QaDataset read_squad(const std::string& path) {
  const json root = engine::parse_json(read_whole_file(path), path);
  QaDataset dataset;
  if (const auto it = root.find("version"); it != root.end() && it->is_string()) dataset.version = *it;
  const json& articles = required_array(root, "data", path);
  std::unordered_map<std::string, std::string> seen_ids;
  dataset.articles.reserve(articles.size());
  for (size_t a = 0; a < articles.size(); ++a) {
    const std::string article_where = engine::detail::concat(path, ": article ", a);
    QaArticle article;
    article.title = required_string(articles[a], "title", article_where);
    const json& paragraphs = required_array(articles[a], "paragraphs", article_where);
    for (size_t p = 0; p < paragraphs.size(); ++p) {
      const Where where{path, a, article.title, p, ""};
      QaParagraph paragraph;
      paragraph.context = required_string(paragraphs[p], "context", where.str());
      if (const auto it = paragraphs[p].find("context_tokens"); it != paragraphs[p].end()) {
        ENGINE_CHECK(it->is_number_integer(), where.str(), ": field \"context_tokens\" must be an integer");
        paragraph.context_tokens = it->get<int64_t>();
      }
      const json& qas = required_array(paragraphs[p], "qas", where.str());
      paragraph.questions.reserve(qas.size());
      for (const json& qa : qas) {
        QaQuestion question = read_question(qa, paragraph.context, where);
        Where question_where = where;
        question_where.question = question.id;
        const auto [it, inserted] = seen_ids.emplace(question.id, question_where.str());
        ENGINE_CHECK(inserted, question_where.str(), ": question id repeats (first at ", it->second, ")");
        paragraph.questions.push_back(std::move(question));
      }
      article.paragraphs.push_back(std::move(paragraph));
    }
    dataset.articles.push_back(std::move(article));
  }
  return dataset;
}

void write_squad(const QaDataset& dataset, const std::string& path) {
  validate(dataset, path);
  std::string text = "{\"version\":" + json(dataset.version).dump() + ",\"data\":[";
  for (size_t a = 0; a < dataset.articles.size(); ++a) {
    const QaArticle& article = dataset.articles[a];
    ordered_json paragraphs = ordered_json::array();
    for (const QaParagraph& paragraph : article.paragraphs) {
      ordered_json qas = ordered_json::array();
      for (const QaQuestion& question : paragraph.questions) {
        ordered_json answers = ordered_json::array();
        for (const QaAnswer& answer : question.answers)
          answers.push_back(
              {{"text", answer.text}, {"answer_start", code_points_before(paragraph.context, answer.start)}});
        ordered_json qa = {{"id", question.id}, {"question", question.question}, {"answers", answers}};
        if (!question.source.empty()) qa["source"] = question.source;
        if (const auto& gold = question.gold_passage) {
          const int64_t start = code_points_before(paragraph.context, gold->start);
          const int64_t end = code_points_before(paragraph.context, gold->start + gold->length);
          qa["gold_passage"] = {{"start", start},
                                {"length", end - start},
                                {"index", gold->index},
                                {"passages", gold->passages},
                                {"relative", gold->relative}};
        }
        qas.push_back(std::move(qa));
      }
      ordered_json entry = {{"context", paragraph.context}};
      if (paragraph.context_tokens >= 0) entry["context_tokens"] = paragraph.context_tokens;
      entry["qas"] = std::move(qas);
      paragraphs.push_back(std::move(entry));
    }
    const ordered_json entry = {{"title", article.title}, {"paragraphs", std::move(paragraphs)}};
    try {
      // One article per line: diffable, and no whole-file JSON tree in memory.
      text += (a == 0 ? "\n" : ",\n") + entry.dump();
    } catch (const json::type_error& e) {
      throw engine::Error(engine::detail::concat(path, ": article ", a, " (\"", article.title,
                                                 "\") has text that is not valid UTF-8: ", e.what()));
    }
  }
  text += "\n]}\n";
  write_file_atomic(path, text);
}

std::vector<QaExample> flatten(const QaDataset& dataset) {
  std::vector<QaExample> examples;
  for (const QaArticle& article : dataset.articles) {
    for (const QaParagraph& paragraph : article.paragraphs) {
      for (const QaQuestion& question : paragraph.questions) {
        QaExample example;
        example.id = question.id;
        example.context = paragraph.context;
        example.question = question.question;
        for (const QaAnswer& answer : question.answers) {
          example.answers.push_back(answer.text);
          example.answer_starts.push_back(answer.start);
        }
        example.source = question.source;
        example.gold_passage = question.gold_passage;
        example.context_tokens = paragraph.context_tokens;
        examples.push_back(std::move(example));
      }
    }
  }
  return examples;
}

std::vector<QaExample> read_qa_jsonl(const std::string& path) {
  std::istringstream in(read_whole_file(path));
  std::vector<QaExample> examples;
  std::unordered_map<std::string, size_t> line_of_id;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = engine::detail::concat(path, ":", number);
    const json object = engine::parse_json(line, where);
    QaExample example;
    example.prompt = required_string(object, "input", where);
    const auto outputs = object.find("outputs");
    ENGINE_CHECK(outputs != object.end(), where, ": missing field \"outputs\"");
    if (outputs->is_string()) {
      example.answers.push_back(outputs->get<std::string>());
    } else {
      ENGINE_CHECK(outputs->is_array() && !outputs->empty(), where,
                   ": field \"outputs\" must be a non-empty list of strings, got ", outputs->dump().substr(0, 80));
      for (const json& output : *outputs) {
        ENGINE_CHECK(output.is_string(), where, ": field \"outputs\" holds a JSON ", output.type_name(), " (",
                     output.dump().substr(0, 80), "), expected strings");
        example.answers.push_back(output.get<std::string>());
      }
    }
    example.id =
        object.contains("index") ? std::to_string(required_integer(object, "index", where)) : std::to_string(number);
    const auto [it, inserted] = line_of_id.emplace(example.id, number);
    ENGINE_CHECK(inserted, where, ": index ", example.id, " repeats line ", it->second);
    examples.push_back(std::move(example));
  }
  return examples;
}

void write_qa_jsonl(const std::vector<QaExample>& examples, const std::string& path) {
  std::string text;
  for (size_t i = 0; i < examples.size(); ++i) {
    const ordered_json line = {
        {"input", qa_prompt(examples[i])}, {"outputs", examples[i].answers}, {"index", static_cast<int64_t>(i)}};
    try {
      text += line.dump() + "\n";
    } catch (const json::type_error& e) {
      throw engine::Error(engine::detail::concat(path, ": example ", i, " (id \"", examples[i].id,
                                                 "\") has text that is not valid UTF-8: ", e.what()));
    }
  }
  write_file_atomic(path, text);
}

const char* gold_position_bin(const QaGoldPassage& gold) {
  return gold.relative < 1.0 / 3 ? "beginning" : gold.relative < 2.0 / 3 ? "middle" : "end";
}

std::string qa_prompt(const QaExample& example) {
  if (!example.prompt.empty()) return example.prompt;
  return example.context + "\n\nQuestion: " + example.question + "\nAnswer:";
}

}  // namespace data
