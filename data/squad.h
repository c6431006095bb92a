// Extractive question answering data: SQuAD v1.1 JSON (read, validated, written) and the SeqPE
// authors' jsonl files (docs/method.md#long-context-question-answering), flattened to one example per question.
//
// SQuAD v1.1 layout: {"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
// "question", "answers": [{"text", "answer_start"}]}]}]}]}.
//
// Offsets. In the JSON, `answer_start` counts Unicode code points (SQuAD was made in Python, whose
// str indexes code points). In memory every offset is a byte offset into the UTF-8 context, so
// `context.substr(start, text.size()) == text`. read_squad converts code points to bytes and
// write_squad converts back; for ASCII text the two are the same number.
//
// Extra fields (written by the offline builder, data/qa_builder.h; other SQuAD readers ignore
// them, and read_squad accepts files without them):
//   paragraph "context_tokens": the context's length in tokens of the builder's tokenizer;
//   question  "source": the record collection the question comes from (e.g. "iso_639-3");
//   question  "gold_passage": {"start", "length" (code points), "index", "passages",
//             "relative"}: where the passage holding the answer sits in a long context.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace data {

// One gold answer: its text and where it starts in the paragraph's context (bytes).
struct QaAnswer {
  std::string text;
  int64_t start = 0;
  bool operator==(const QaAnswer&) const = default;
};

// Where the passage holding the answer sits in a context made of several passages.
struct QaGoldPassage {
  int64_t start = 0;     // bytes from the start of the context to the gold passage
  int64_t length = 0;    // the gold passage's length in bytes
  int64_t index = 0;     // its index among the context's passages, 0-based
  int64_t passages = 1;  // passages in the context (gold + distractors)
  // Context tokens before the gold passage / context tokens not in it: 0 when the gold passage
  // opens the context, 1 when it closes it. Evaluation bins this into beginning, middle, end.
  double relative = 0.0;
  bool operator==(const QaGoldPassage&) const = default;
};

// The third of the context the gold passage sits in, by `relative`: "beginning" below 1/3,
// "middle" below 2/3, "end" from 2/3 on.
const char* gold_position_bin(const QaGoldPassage& gold);

struct QaQuestion {
  std::string id;
  std::string question;
  std::vector<QaAnswer> answers;              // at least one
  std::string source;                         // empty when unknown
  std::optional<QaGoldPassage> gold_passage;  // absent for plain SQuAD
  bool operator==(const QaQuestion&) const = default;
};

struct QaParagraph {
  std::string context;
  std::vector<QaQuestion> questions;
  int64_t context_tokens = -1;  // -1 when unknown
  bool operator==(const QaParagraph&) const = default;
};

struct QaArticle {
  std::string title;
  std::vector<QaParagraph> paragraphs;
  bool operator==(const QaArticle&) const = default;
};

struct QaDataset {
  std::string version = "1.1";
  std::vector<QaArticle> articles;
  bool operator==(const QaDataset&) const = default;
};

// Reads a SQuAD v1.1 JSON file. Validates the layout (missing or mistyped fields), that question
// ids are unique, and that every answer is the span of the context its answer_start points to.
// Errors name the file, the article (index and title), paragraph index and question id, and for a
// bad span the expected text and what the context holds there.
QaDataset read_squad(const std::string& path);

// Writes `dataset` as SQuAD v1.1 JSON (offsets in code points, extra fields when set), atomically.
// Validates spans and ids first, as read_squad does, so a written file always reads back.
void write_squad(const QaDataset& dataset, const std::string& path);

// One question with everything needed to build its prompt and score the answer.
struct QaExample {
  std::string id;
  // Either context + question (SQuAD files), or a ready prompt (the authors' jsonl `input`,
  // which already holds context and question; context and question are then empty).
  std::string context;
  std::string question;
  std::string prompt;
  std::vector<std::string> answers;           // gold answer texts, at least one
  std::vector<int64_t> answer_starts;         // byte offsets in `context`; empty for jsonl
  std::string source;                         // empty when unknown
  std::optional<QaGoldPassage> gold_passage;  // absent when unknown
  int64_t context_tokens = -1;                // -1 when unknown
  bool operator==(const QaExample&) const = default;
};

// One example per question, in file order.
std::vector<QaExample> flatten(const QaDataset& dataset);

// Reads the authors' jsonl: one JSON object per line with `input` (the prompt, a string),
// `outputs` (gold answers: a non-empty list of strings, or one string) and optionally `index`
// (an integer, used as the id; the line number otherwise). Blank lines are skipped. Errors name
// the file, the line and the field.
std::vector<QaExample> read_qa_jsonl(const std::string& path);

// Writes examples as the authors' jsonl (`input` = qa_prompt(example), `outputs`, `index` = the
// position in `examples`), atomically.
void write_qa_jsonl(const std::vector<QaExample>& examples, const std::string& path);

// The prompt of an example: its `prompt` when set, else
//   "<context>\n\nQuestion: <question>\nAnswer:"
// The answer follows after one space (the authors' sequence is tok(input) + tok(" " + answer)).
std::string qa_prompt(const QaExample& example);

}  // namespace data
