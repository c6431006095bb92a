// The offline long-context QA set (docs/qa_data.md): records (data/qa_records.h) are filtered,
// split by record into train/dev/test, and written as SQuAD v1.1 JSON (data/squad.h), both as
// passage-only contexts and as long contexts of a target token length in which the gold passage
// sits at a uniformly random position among distractor passages.
//
// Long contexts:
//   - distractors come from the same source (for training contexts: training records only, so
//     dev and test entities never appear in training data); when a source has too few passages
//     for the length, the other sources of its family (iso-codes + tzdata, or WordNet) fill up;
//   - a distractor is never one that contains a gold answer of the record as a whole word, so
//     answers are unique in their context outside the gold passage (the builder counts it);
//   - passages are joined with "\n". GPT-2 pre-tokenisation always splits at whitespace, so the
//     context's token count is the passages' counts plus one "\n" count per separator: lengths are
//     computed from per-passage counts and checked against a full encoding of a few contexts;
//   - each record's draws (gold slot as a fraction, distractor order) come from its own random
//     stream, seeded by (seed, source, key): every length gets the same questions, the gold
//     passage at the same relative slot, and longer contexts draw distractors in the same order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "data/qa_records.h"
#include "data/squad.h"

namespace data {

// What filter_questions dropped.
struct QaFilterStats {
  int64_t duplicate_questions = 0;  // the same question text twice in a source: all copies
  int64_t frequent_answers = 0;     // answer in too many other passages of its source
  int64_t empty_records = 0;        // records left without questions
};

// Drops, per source, questions whose text repeats (ambiguous) and questions whose answer occurs
// as a whole word in more than `max_answer_share` of the source's other passages (category words
// such as "province": no context could hold it only once), then records left without questions.
QaFilterStats filter_questions(std::vector<QaRecord>& records, double max_answer_share);

struct QaSplits {
  std::vector<QaRecord> train, dev, test;
};

// Splits by record, never by question: per source, a seeded shuffle of the records, the first
// `test_fraction` to test, the next `dev_fraction` to dev, the rest to train. Each split keeps the
// records' input order. Deterministic for a seed on every platform (engine::Generator).
QaSplits split_records(const std::vector<QaRecord>& records, uint64_t seed, double dev_fraction, double test_fraction);

// Whole records, shuffled with `seed`, until at least `questions` questions (all when <= 0);
// returned in input order.
std::vector<QaRecord> sample_records(const std::vector<QaRecord>& records, int64_t questions, uint64_t seed);

// One SQuAD article per source, one paragraph per record, context = the record's passage.
// Question ids are "<source>/<key>/<question index>".
QaDataset passage_dataset(const std::vector<QaRecord>& records);

// Figures of one long-context file.
struct QaLongContextStats {
  int64_t contexts = 0, questions = 0;
  int64_t min_tokens = 0, max_tokens = 0;
  double mean_tokens = 0.0;
  int64_t short_contexts = 0;     // the pools ran out before the target length
  int64_t fallback_contexts = 0;  // needed passages of other sources of the family
  int64_t unique_answers = 0;     // answer not elsewhere in the context as a whole word
  int64_t unique_lowercase = 0;   // lower-cased answer not elsewhere in the context even as a substring
  std::map<std::string, int64_t> questions_by_source;
};

class LongContextBuilder {
 public:
  // `pool`: the records distractors may come from; every record later given to build() must be
  // among them. Tokenises each pool passage once with `tokenizer`. Keeps references to `pool` and
  // `tokenizer`: both must outlive the builder.
  LongContextBuilder(const std::vector<QaRecord>& pool, const BpeTokenizer& tokenizer, uint64_t seed);
  ~LongContextBuilder();
  LongContextBuilder(const LongContextBuilder&) = delete;
  LongContextBuilder& operator=(const LongContextBuilder&) = delete;

  // One paragraph per record, its context `context_tokens` tokens long or just under (the next
  // distractor would not fit), with every question's gold_passage set.
  QaDataset build(const std::vector<QaRecord>& records, int64_t context_tokens, QaLongContextStats& stats) const;

  // Tokens of the longest pool passage (+ separator): how far under target a full context can be.
  int64_t max_passage_tokens() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// No-context baselines on a set of questions, by source.
struct QaBaselineStats {
  int64_t questions = 0;
  int64_t answer_in_question = 0;  // lower-cased answer contained in the lower-cased question
  int64_t code_questions = 0;      // questions asking for a letter code of a named entity
  int64_t code_guessed = 0;        // ... whose code equals the name's first letters (in the code's case)
};
std::map<std::string, QaBaselineStats> no_context_baselines(const std::vector<QaRecord>& records);

// The code a reader would guess from a name: the name's first `answer.size()` letters, in the
// case pattern of `answer` (all upper, all lower, or capitalised). Empty when the answer is not
// 2 to 4 ASCII letters or the name is too short.
std::string guess_code(const std::string& name, const std::string& answer);

}  // namespace data
