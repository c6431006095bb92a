// Filtering, splitting and long-context assembly of the offline QA set.
#include "data/qa_builder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/error.h"
#include "engine/rng.h"

namespace data {

namespace {

constexpr std::string_view kSeparator = "\n";
// Distractors that do not fit in a row before a context counts as full.
constexpr int kMaxMisses = 16;

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  for (size_t i = 0; i < text.size();) {
    if (!is_word_byte(text[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && is_word_byte(text[end])) ++end;
    words.push_back(text.substr(i, end - i));
    i = end;
  }
  return words;
}

uint64_t fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

// A random stream of its own for each (seed, name).
engine::Generator stream(uint64_t seed, std::string_view name) {
  return engine::Generator(seed * 0x9e3779b97f4a7c15ull ^ fnv1a(name));
}

std::string record_name(const QaRecord& record) { return record.source + "/" + record.key; }

std::string family_of(const std::string& source) { return source == "wordnet" ? "wordnet" : "records"; }

// Which passages contain a phrase as whole words: a word -> passages index narrows the candidates
// to the passages holding the phrase's rarest word, then each is checked.
class PassageIndex {
 public:
  explicit PassageIndex(std::vector<const std::string*> passages) : passages_(std::move(passages)) {
    for (size_t id = 0; id < passages_.size(); ++id) {
      std::vector<std::string> words = words_of(*passages_[id]);
      std::sort(words.begin(), words.end());
      words.erase(std::unique(words.begin(), words.end()), words.end());
      for (std::string& word : words) postings_[std::move(word)].push_back(static_cast<int32_t>(id));
    }
  }

  // Ids (ascending) of the passages containing `phrase` as a whole word.
  std::vector<int32_t> containing(const std::string& phrase) const {
    const std::vector<int32_t>* candidates = nullptr;
    for (const std::string& word : words_of(phrase)) {
      const auto it = postings_.find(word);
      if (it == postings_.end()) return {};
      if (candidates == nullptr || it->second.size() < candidates->size()) candidates = &it->second;
    }
    std::vector<int32_t> ids;
    if (candidates == nullptr) {  // no word characters: check every passage
      for (size_t id = 0; id < passages_.size(); ++id)
        if (find_whole_word(*passages_[id], phrase) != std::string::npos) ids.push_back(static_cast<int32_t>(id));
      return ids;
    }
    for (const int32_t id : *candidates)
      if (find_whole_word(*passages_[id], phrase) != std::string::npos) ids.push_back(id);
    return ids;
  }

 private:
  std::vector<const std::string*> passages_;
  std::unordered_map<std::string, std::vector<int32_t>> postings_;
};

// A uniformly random permutation of [0, n), drawn one element at a time (Fisher-Yates with the
// swaps kept in a map): k draws cost O(k) whatever n is.
class LazyShuffle {
 public:
  explicit LazyShuffle(int64_t n) : n_(n) {}
  std::optional<int64_t> next(engine::Generator& gen) {
    if (drawn_ == n_) return std::nullopt;
    const int64_t pick = drawn_ + static_cast<int64_t>(gen.randint(static_cast<uint64_t>(n_ - drawn_)));
    const int64_t value = at(pick);
    swapped_[pick] = at(drawn_);
    ++drawn_;
    return value;
  }

 private:
  int64_t at(int64_t i) const {
    const auto it = swapped_.find(i);
    return it == swapped_.end() ? i : it->second;
  }
  int64_t n_;
  int64_t drawn_ = 0;
  std::unordered_map<int64_t, int64_t> swapped_;
};

// Occurrences of `needle` in `haystack` outside [skip_begin, skip_end): whole words, or any
// substring when `whole_words` is false.
bool occurs_outside(const std::string& haystack, const std::string& needle, size_t skip_begin, size_t skip_end,
                    bool whole_words) {
  for (size_t at = 0;; ++at) {
    at = whole_words ? find_whole_word(haystack, needle, at) : haystack.find(needle, at);
    if (at == std::string::npos) return false;
    if (at + needle.size() <= skip_begin || at >= skip_end) return true;
  }
}

// Byte offset of `answer` in `passage`: its first whole-word occurrence, else its first occurrence.
int64_t answer_offset(const QaRecord& record, const std::string& answer) {
  size_t at = find_whole_word(record.passage, answer);
  if (at == std::string::npos) at = record.passage.find(answer);
  ENGINE_CHECK(at != std::string::npos, "QA record ", record_name(record), ": answer \"", answer,
               "\" is not in its passage \"", record.passage, "\"");
  return static_cast<int64_t>(at);
}

// The articles of a dataset, one per source in order of first appearance.
class ArticlesBySource {
 public:
  QaArticle& of(const std::string& source) {
    const auto [it, inserted] = index_.emplace(source, dataset_.articles.size());
    if (inserted) dataset_.articles.push_back(QaArticle{source, {}});
    return dataset_.articles[it->second];
  }
  QaDataset take() { return std::move(dataset_); }

 private:
  QaDataset dataset_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace

QaFilterStats filter_questions(std::vector<QaRecord>& records, double max_answer_share) {
  QaFilterStats stats;
  std::map<std::string, std::vector<size_t>> by_source;
  for (size_t i = 0; i < records.size(); ++i) by_source[records[i].source].push_back(i);
  for (const auto& [source, members] : by_source) {
    std::unordered_map<std::string, int> question_count;
    std::vector<const std::string*> passages;
    for (const size_t i : members) {
      passages.push_back(&records[i].passage);
      for (const QaRecordQuestion& q : records[i].questions) ++question_count[q.question];
    }
    const PassageIndex index(passages);
    const double limit = max_answer_share * static_cast<double>(members.size());
    for (size_t m = 0; m < members.size(); ++m) {
      std::vector<QaRecordQuestion>& questions = records[members[m]].questions;
      std::erase_if(questions, [&](const QaRecordQuestion& q) {
        if (question_count[q.question] > 1) return ++stats.duplicate_questions, true;
        const std::vector<int32_t> holders = index.containing(q.answer);
        const auto others = static_cast<double>(holders.size()) -
                            (std::binary_search(holders.begin(), holders.end(), static_cast<int32_t>(m)) ? 1 : 0);
        if (others > limit) return ++stats.frequent_answers, true;
        return false;
      });
    }
  }
  stats.empty_records = std::erase_if(records, [](const QaRecord& r) { return r.questions.empty(); });
  return stats;
}

QaSplits split_records(const std::vector<QaRecord>& records, uint64_t seed, double dev_fraction, double test_fraction) {
  ENGINE_CHECK(dev_fraction >= 0 && test_fraction >= 0 && dev_fraction + test_fraction < 1,
               "split_records: dev fraction ", dev_fraction, " and test fraction ", test_fraction,
               " must be >= 0 and leave records for training");
  std::map<std::string, std::vector<size_t>> by_source;
  for (size_t i = 0; i < records.size(); ++i) by_source[records[i].source].push_back(i);
  std::vector<int> split_of(records.size(), 0);  // 0 train, 1 dev, 2 test
  for (auto& [source, members] : by_source) {
    engine::Generator gen = stream(seed, "split/" + source);
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[gen.randint(i)]);
    const auto count = static_cast<double>(members.size());
    const auto tests = static_cast<size_t>(std::llround(count * test_fraction));
    const auto devs = static_cast<size_t>(std::llround(count * dev_fraction));
    for (size_t m = 0; m < members.size(); ++m) split_of[members[m]] = m < tests ? 2 : m < tests + devs ? 1 : 0;
  }
  QaSplits splits;
  for (size_t i = 0; i < records.size(); ++i)
    (split_of[i] == 0 ? splits.train : split_of[i] == 1 ? splits.dev : splits.test).push_back(records[i]);
  return splits;
}

std::vector<QaRecord> sample_records(const std::vector<QaRecord>& records, int64_t questions, uint64_t seed) {
  if (questions <= 0) return records;
  std::vector<size_t> order(records.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  engine::Generator gen = stream(seed, "sample");
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.randint(i)]);
  std::vector<size_t> chosen;
  int64_t taken = 0;
  for (size_t i = 0; i < order.size() && taken < questions; ++i) {
    chosen.push_back(order[i]);
    taken += static_cast<int64_t>(records[order[i]].questions.size());
  }
  std::sort(chosen.begin(), chosen.end());
  std::vector<QaRecord> sample;
  for (const size_t i : chosen) sample.push_back(records[i]);
  return sample;
}

QaDataset passage_dataset(const std::vector<QaRecord>& records) {
  ArticlesBySource articles;
  for (const QaRecord& record : records) {
    QaParagraph paragraph;
    paragraph.context = record.passage;
    for (size_t q = 0; q < record.questions.size(); ++q) {
      const QaRecordQuestion& question = record.questions[q];
      QaQuestion out;
      out.id = record_name(record) + "/" + std::to_string(q);
      out.question = question.question;
      out.answers = {{question.answer, answer_offset(record, question.answer)}};
      out.source = record.source;
      paragraph.questions.push_back(std::move(out));
    }
    articles.of(record.source).paragraphs.push_back(std::move(paragraph));
  }
  return articles.take();
}

struct LongContextBuilder::State {
  const BpeTokenizer& tokenizer;
  uint64_t seed;
  std::vector<const QaRecord*> pool;
  std::vector<int64_t> tokens;  // (pool) tokens of each passage
  int64_t separator_tokens = 0;
  std::unordered_map<std::string, int32_t> id_of;                   // record name -> pool id
  std::map<std::string, std::vector<int32_t>> by_source, fallback;  // source -> pool ids
  std::unique_ptr<PassageIndex> index;

  State(const std::vector<QaRecord>& records, const BpeTokenizer& tokenizer_, uint64_t seed_)
      : tokenizer(tokenizer_), seed(seed_) {
    std::vector<const std::string*> passages;
    for (const QaRecord& record : records) {
      const auto id = static_cast<int32_t>(pool.size());
      ENGINE_CHECK(id_of.emplace(record_name(record), id).second, "LongContextBuilder: record ", record_name(record),
                   " is twice in the pool");
      pool.push_back(&record);
      passages.push_back(&record.passage);
      tokens.push_back(static_cast<int64_t>(tokenizer.encode_ordinary(record.passage).size()));
      by_source[record.source].push_back(id);
    }
    for (const auto& [source, ids] : by_source)
      for (const auto& [other, other_ids] : by_source)
        if (other != source && family_of(other) == family_of(source))
          fallback[source].insert(fallback[source].end(), other_ids.begin(), other_ids.end());
    separator_tokens = static_cast<int64_t>(tokenizer.encode_ordinary(kSeparator).size());
    index = std::make_unique<PassageIndex>(std::move(passages));
  }
};

LongContextBuilder::LongContextBuilder(const std::vector<QaRecord>& pool, const BpeTokenizer& tokenizer, uint64_t seed)
    : state_(std::make_unique<State>(pool, tokenizer, seed)) {}

LongContextBuilder::~LongContextBuilder() = default;

int64_t LongContextBuilder::max_passage_tokens() const {
  const auto& tokens = state_->tokens;
  return (tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end())) + state_->separator_tokens;
}

QaDataset LongContextBuilder::build(const std::vector<QaRecord>& records, int64_t context_tokens,
                                    QaLongContextStats& stats) const {
  const State& s = *state_;
  ArticlesBySource articles;
  stats = QaLongContextStats{};
  stats.min_tokens = std::numeric_limits<int64_t>::max();
  double token_sum = 0.0;
  for (const QaRecord& record : records) {
    const auto found = s.id_of.find(record_name(record));
    ENGINE_CHECK(found != s.id_of.end(), "LongContextBuilder: record ", record_name(record),
                 " is not in the distractor pool");
    const int32_t gold = found->second;
    // Passages holding a gold answer as a whole word cannot be distractors.
    std::unordered_set<int32_t> conflicts = {gold};
    for (const QaRecordQuestion& q : record.questions)
      for (const int32_t id : s.index->containing(q.answer)) conflicts.insert(id);

    engine::Generator gen = stream(s.seed, "context/" + record_name(record));
    const double slot_fraction = gen.uniform();
    std::vector<int32_t> distractors;
    int64_t total = s.tokens[gold];
    // Same source first, then the rest of the family; full after kMaxMisses misfits in a row.
    bool full = false;
    int misses = 0;
    static const std::vector<int32_t> kNone;
    const auto fallback = s.fallback.find(record.source);
    for (const std::vector<int32_t>* list :
         {&s.by_source.at(record.source), fallback == s.fallback.end() ? &kNone : &fallback->second}) {
      LazyShuffle order(static_cast<int64_t>(list->size()));
      for (auto next = order.next(gen); next && !full; next = order.next(gen)) {
        const int32_t id = (*list)[*next];
        if (conflicts.contains(id)) continue;
        const int64_t cost = s.tokens[id] + s.separator_tokens;
        if (total + cost <= context_tokens) {
          distractors.push_back(id);
          total += cost;
          misses = 0;
        } else {
          full = ++misses >= kMaxMisses;
        }
      }
      if (full) break;
    }
    const bool used_fallback = std::any_of(distractors.begin(), distractors.end(),
                                           [&](int32_t id) { return s.pool[id]->source != record.source; });

    // Gold at slot floor(u * (n + 1)) of n + 1: uniform over the positions among the distractors.
    const auto n = static_cast<int64_t>(distractors.size());
    const int64_t slot = std::min(n, static_cast<int64_t>(slot_fraction * static_cast<double>(n + 1)));
    QaParagraph paragraph;
    int64_t tokens_before = 0, gold_start = 0;
    for (int64_t i = 0; i <= n; ++i) {
      if (i > 0) paragraph.context += kSeparator;
      if (i == slot) {
        gold_start = static_cast<int64_t>(paragraph.context.size());
        paragraph.context += record.passage;
        continue;
      }
      const int32_t id = distractors[i < slot ? i : i - 1];
      if (i < slot) tokens_before += s.tokens[id] + s.separator_tokens;
      paragraph.context += s.pool[id]->passage;
    }
    paragraph.context_tokens = total;
    if (stats.contexts < 8) {
      const auto encoded = static_cast<int64_t>(s.tokenizer.encode_ordinary(paragraph.context).size());
      ENGINE_CHECK(encoded == total, "LongContextBuilder: context of ", record_name(record), " has ", encoded,
                   " tokens, but its passages' counts add up to ", total,
                   ": the tokenizer does not split at the \"\\n\" separator");
    }

    QaGoldPassage position;
    position.start = gold_start;
    position.length = static_cast<int64_t>(record.passage.size());
    position.index = slot;
    position.passages = n + 1;
    const int64_t distractor_tokens = total - s.tokens[gold];
    position.relative = distractor_tokens > 0 ? static_cast<double>(tokens_before) / distractor_tokens : 0.0;

    const std::string lower_context = ascii_lower(paragraph.context);
    const auto gold_end = static_cast<size_t>(gold_start) + record.passage.size();
    for (size_t q = 0; q < record.questions.size(); ++q) {
      const QaRecordQuestion& question = record.questions[q];
      QaQuestion out;
      out.id = record_name(record) + "/" + std::to_string(q);
      out.question = question.question;
      out.answers = {{question.answer, gold_start + answer_offset(record, question.answer)}};
      out.source = record.source;
      out.gold_passage = position;
      paragraph.questions.push_back(std::move(out));
      stats.unique_answers += occurs_outside(paragraph.context, question.answer, gold_start, gold_end, true) ? 0 : 1;
      stats.unique_lowercase +=
          occurs_outside(lower_context, ascii_lower(question.answer), gold_start, gold_end, false) ? 0 : 1;
      ++stats.questions_by_source[record.source];
    }
    ++stats.contexts;
    stats.questions += static_cast<int64_t>(record.questions.size());
    stats.short_contexts += full ? 0 : 1;
    stats.fallback_contexts += used_fallback ? 1 : 0;
    stats.min_tokens = std::min(stats.min_tokens, total);
    stats.max_tokens = std::max(stats.max_tokens, total);
    token_sum += static_cast<double>(total);
    articles.of(record.source).paragraphs.push_back(std::move(paragraph));
  }
  if (stats.contexts == 0) stats.min_tokens = 0;
  stats.mean_tokens = stats.contexts > 0 ? token_sum / static_cast<double>(stats.contexts) : 0.0;
  return articles.take();
}

std::string guess_code(const std::string& name, const std::string& answer) {
  if (answer.size() < 2 || answer.size() > 4) return "";
  if (!std::all_of(answer.begin(), answer.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
    return "";
  std::string letters;
  for (const char c : name)
    if (std::isalpha(static_cast<unsigned char>(c)) && letters.size() < answer.size()) letters += c;
  if (letters.size() < answer.size()) return "";
  const bool upper =
      std::all_of(answer.begin(), answer.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  const bool lower_case =
      std::all_of(answer.begin(), answer.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); });
  for (size_t i = 0; i < letters.size(); ++i) {
    const auto c = static_cast<unsigned char>(letters[i]);
    letters[i] = static_cast<char>(upper || (!lower_case && i == 0) ? std::toupper(c) : std::tolower(c));
  }
  return letters;
}

std::map<std::string, QaBaselineStats> no_context_baselines(const std::vector<QaRecord>& records) {
  std::map<std::string, QaBaselineStats> by_source;
  for (const QaRecord& record : records) {
    QaBaselineStats& stats = by_source[record.source];
    for (const QaRecordQuestion& q : record.questions) {
      ++stats.questions;
      stats.answer_in_question += ascii_lower(q.question).find(ascii_lower(q.answer)) != std::string::npos ? 1 : 0;
      if (q.entity.empty()) continue;
      const std::string guess = guess_code(q.entity, q.answer);
      if (guess.empty()) continue;
      ++stats.code_questions;
      stats.code_guessed += guess == q.answer ? 1 : 0;
    }
  }
  return by_source;
}

}  // namespace data
