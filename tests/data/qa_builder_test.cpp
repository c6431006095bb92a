// Tests of the offline QA set's records and builder (data/qa_records.h, data/qa_builder.h).
#include "data/qa_builder.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "data/bpe_trainer.h"
#include "data/qa_records.h"
#include "data/squad.h"
#include "engine/error.h"
#include "temp_dir.h"

namespace {

// Distinct made-up names: three syllables from the index.
std::string made_up_name(int i, const std::string& ending) {
  static const char* kSyllables[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi"};
  std::string name = std::string(kSyllables[i % 8]) + kSyllables[(i / 8) % 8] + kSyllables[(i / 64) % 8] + ending;
  name[0] = static_cast<char>(name[0] - 'a' + 'A');
  return name;
}

// Letter codes that never spell a word of the templates: first letter from "QXZ", then A..Z.
std::string made_up_code(int i, int letters) {
  std::string code(1, "QXZ"[(i / 26) % 3]);
  code += static_cast<char>('A' + i % 26);
  while (static_cast<int>(code.size()) < letters) code += static_cast<char>('A' + (i / 78 + code.size()) % 26);
  return code;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Small files in the formats of iso-codes, tzdata and wordnet-base, under one temporary folder.
struct DebianFixture {
  TempDir dir;
  std::string iso, zoneinfo, wordnet;
  static constexpr int kCountries = 40, kSubdivisions = 120, kLanguages = 150, kCurrencies = 30, kScripts = 30,
                       kZones = 40, kSenses = 300;

  DebianFixture() {
    iso = (dir / "iso").string();
    zoneinfo = (dir / "zoneinfo").string();
    wordnet = (dir / "wordnet").string();
    for (const std::string& d : {iso, zoneinfo, wordnet}) std::filesystem::create_directories(d);

    std::string countries = "{\n  \"3166-1\": [\n";
    for (int i = 0; i < kCountries; ++i) {
      countries += std::string(i ? ",\n" : "") + "    {\"alpha_2\": \"" + made_up_code(i, 2) + "\", \"alpha_3\": \"" +
                   made_up_code(i, 3) + "\", \"flag\": \"x\", \"name\": \"" + made_up_name(i, "land") +
                   "\", \"numeric\": \"" + std::to_string(100 + i) + "\"" +
                   (i % 3 == 0 ? ", \"official_name\": \"Republic of " + made_up_name(i, "land") + "\"" : "") + "}";
    }
    write_text_file(dir / "iso/iso_3166-1.json", countries + "\n  ]\n}\n");

    std::string subdivisions = "{\"3166-2\": [";
    for (int i = 0; i < kSubdivisions; ++i) {
      const std::string country = made_up_code(i % kCountries, 2);
      // Non-ASCII names move code-point offsets away from byte offsets.
      const std::string name = made_up_name(i, i % 2 ? "ţa" : "burg");
      subdivisions += std::string(i ? "," : "") + "{\"code\": \"" + country + "-" + std::to_string(10 + i) +
                      "\", \"name\": \"" + name + "\", \"type\": \"" + (i % 4 ? "Province" : "Autonomous region") +
                      "\"" + (i >= kCountries ? ", \"parent\": \"" + std::to_string(10 + i % kCountries) + "\"" : "") +
                      "}";
    }
    write_text_file(dir / "iso/iso_3166-2.json", subdivisions + "]}");

    std::string languages = "{\"639-3\": [";
    for (int i = 0; i < kLanguages; ++i) {
      const char* type = i % 5 == 0 ? "E" : "L";
      languages += std::string(i ? "," : "") + "{\"alpha_3\": \"" + lower(made_up_code(i, 3)) + "\", \"name\": \"" +
                   made_up_name(i, "ish") + "\", \"scope\": \"I\", \"type\": \"" + type + "\"" +
                   (i % 10 == 0 ? ", \"alpha_2\": \"" + lower(made_up_code(i, 2)) + "\"" : "") + "}";
    }
    // A special code is skipped.
    languages += ",{\"alpha_3\": \"und\", \"name\": \"Undetermined\", \"scope\": \"S\", \"type\": \"S\"}";
    write_text_file(dir / "iso/iso_639-3.json", languages + "]}");

    std::string currencies = "{\"4217\": [", scripts = "{\"15924\": [";
    for (int i = 0; i < kCurrencies; ++i)
      currencies += std::string(i ? "," : "") + "{\"alpha_3\": \"" + made_up_code(i, 3) + "\", \"name\": \"" +
                    made_up_name(i, "dollar") + "\", \"numeric\": \"" + std::to_string(500 + i) + "\"}";
    for (int i = 0; i < kScripts; ++i) {
      std::string code = made_up_code(i, 4);
      for (size_t c = 1; c < code.size(); ++c) code[c] = static_cast<char>(std::tolower(code[c]));
      scripts += std::string(i ? "," : "") + "{\"alpha_4\": \"" + code + "\", \"name\": \"" + made_up_name(i, "ic") +
                 "\", \"numeric\": \"" + std::to_string(700 + i) + "\"}";
    }
    write_text_file(dir / "iso/iso_4217.json", currencies + "]}");
    write_text_file(dir / "iso/iso_15924.json", scripts + "]}");

    std::string names = "# ISO 3166 alpha-2\tcountry name\n",
                zones = "# comment line\n#codes\tcoordinates\tTZ\tcomments\n";
    for (int i = 0; i < kCountries; ++i) names += made_up_code(i, 2) + "\t" + made_up_name(i, "land") + "\n";
    for (int i = 0; i < kZones; ++i) {
      // Built by appending: GCC 12 warns (-Wrestrict, falsely) on "literal" + temporary string here.
      std::string line = made_up_code(i % kCountries, 2);
      if (i % 7 == 0) line.append(",").append(made_up_code((i + 1) % kCountries, 2));
      const int degrees = i % 2 ? 1000 + i : 100000 + i;
      line.append(i % 2 ? "\t+" : "\t-").append(std::to_string(degrees));
      line.append(i % 2 ? "-0" : "+0").append(std::to_string(degrees));
      line.append("\tArea/").append(made_up_name(i, "ville"));
      if (i % 3) line.append("\t").append(made_up_name(i, "")).append(" region");
      zones += line + "\n";
    }
    write_text_file(dir / "zoneinfo/iso3166.tab", names);
    write_text_file(dir / "zoneinfo/zone1970.tab", zones);

    std::string nouns = "  1 This software and database is being provided to you, the LICENSEE, by  \n";
    for (int i = 0; i < kSenses; ++i) {
      nouns += std::to_string(10000000 + i) + " 05 n 01 " + made_up_name(i, "_thing") +
               " 0 001 @ 02099997 n 0000 | a " + (i % 2 ? "small" : "large") + " object of kind " + std::to_string(i) +
               "; \"an example sentence\"  \n";
    }
    // Dropped: the definition gives the headword away; a headword twice; a definition twice.
    nouns += "20000001 05 n 01 bot 0 000 | larva of a botfly  \n";
    nouns += "20000002 05 n 01 bank 0 000 | sloping land beside a river  \n";
    nouns += "20000003 05 n 01 Bank 0 000 | a financial institution  \n";
    nouns += "20000004 05 n 01 kettle 0 000 | a pot for boiling water  \n";
    nouns += "20000005 05 n 01 cauldron 0 000 | a pot for boiling water  \n";
    write_text_file(dir / "wordnet/data.noun", nouns);
    write_text_file(dir / "wordnet/data.verb", "30000001 29 v 01 levitate 0 000 00 | rise or float in the air  \n");
    write_text_file(dir / "wordnet/data.adj",
                    "40000001 00 a 02 able(a) 0 capable 0 000 | (usually followed by `to') having the necessary means "
                    "or skill; \"able to swim\"  \n");
    write_text_file(dir / "wordnet/data.adv", "50000001 02 r 01 hastily 0 000 | in a hurried manner  \n");
  }

  std::vector<data::QaRecord> records() const { return data::debian_records(iso, zoneinfo, wordnet); }
};

const data::QaRecord& find_record(const std::vector<data::QaRecord>& records, const std::string& source,
                                  const std::string& key) {
  const auto it = std::find_if(records.begin(), records.end(),
                               [&](const data::QaRecord& r) { return r.source == source && r.key == key; });
  REQUIRE(it != records.end());
  return *it;
}

data::BpeTokenizer tokenizer_for(const std::vector<data::QaRecord>& records) {
  std::string text;
  for (const data::QaRecord& record : records) text += record.passage + "\n";
  const std::string_view texts[] = {text};
  return data::train_bpe(texts, 420);
}

std::map<std::string, std::string> split_of(const data::QaSplits& splits) {
  std::map<std::string, std::string> split;
  for (const auto& [name, records] :
       {std::pair{"train", &splits.train}, std::pair{"dev", &splits.dev}, std::pair{"test", &splits.test}})
    for (const data::QaRecord& r : *records) {
      const bool inserted = split.emplace(r.source + "/" + r.key, name).second;
      CHECK(inserted);  // no record in two splits
    }
  return split;
}

}  // namespace

TEST_CASE("qa records: passages and questions from iso-codes, tzdata and wordnet files") {
  const DebianFixture fixture;
  const std::vector<data::QaRecord> records = fixture.records();

  const data::QaRecord& country = find_record(records, "iso_3166-1", "QA");
  CHECK(country.passage ==
        "Kakakaland is a country with the ISO 3166-1 alpha-2 code QA, the alpha-3 code QAC and the numeric code 100. "
        "Its official name is Republic of Kakakaland.");
  CHECK(country.questions.size() == 5);
  CHECK(country.questions[0].question == "What is the ISO 3166-1 alpha-2 code of Kakakaland?");
  CHECK(country.questions[0].answer == "QA");
  CHECK(country.questions[0].entity == "Kakakaland");

  const data::QaRecord& subdivision = find_record(records, "iso_3166-2", "QB-51");
  CHECK(subdivision.passage ==
        "Lotakaţa is a province of Lokakaland with the ISO 3166-2 code QB-51. It is part of Lokakaţa.");
  const data::QaRecord& autonomous = find_record(records, "iso_3166-2", "QA-10");
  CHECK(autonomous.passage == "Kakakaburg is an autonomous region of Kakakaland with the ISO 3166-2 code QA-10.");
  CHECK(autonomous.questions[0].question == "What is the ISO 3166-2 code of Kakakaburg in Kakakaland?");

  const data::QaRecord& language = find_record(records, "iso_639-3", "qac");
  CHECK(language.passage ==
        "Kakakaish is an extinct individual language with the ISO 639-3 code qac. Its ISO 639-1 code is qa.");
  CHECK(language.questions.size() == 3);
  CHECK(std::none_of(records.begin(), records.end(), [](const data::QaRecord& r) { return r.key == "und"; }));

  CHECK(find_record(records, "iso_4217", "QBC").passage ==
        "The Lokakadollar is a currency with the ISO 4217 code QBC and the numeric code 501.");
  CHECK(find_record(records, "iso_15924", "Qbcd").passage ==
        "Lokakaic is a writing system with the ISO 15924 code Qbcd and the numeric code 701.");

  // Coordinates in degrees and minutes, or with seconds; several countries; the comment.
  const data::QaRecord& zone = find_record(records, "zone1970", "Area/Lokakaville");
  CHECK(zone.passage ==
        "The time zone Area/Lokakaville is used in Lokakaland (Lokaka region). Its principal location is at "
        "10°01′N 10°01′W.");
  CHECK(zone.questions.size() == 3);
  const data::QaRecord& zone0 = find_record(records, "zone1970", "Area/Kakakaville");
  CHECK(zone0.passage ==
        "The time zone Area/Kakakaville is used in Kakakaland and Lokakaland. Its principal location is at "
        "10°00′00″S 10°00′00″E.");
  CHECK(zone0.questions.size() == 2);
  CHECK(zone0.questions[1].answer == "Kakakaland");

  // WordNet: headword + definition (examples left out), adjective marker and underscores removed.
  const data::QaRecord& thing = find_record(records, "wordnet", "n10000001");
  CHECK(thing.passage == "Lokaka thing (noun): a small object of kind 1");
  CHECK(thing.questions[0].question == "Which noun means \"a small object of kind 1\"?");
  CHECK(thing.questions[0].answer == "Lokaka thing");
  CHECK(find_record(records, "wordnet", "a40000001").passage ==
        "able (adjective): (usually followed by `to') having the necessary means or skill");
  CHECK(find_record(records, "wordnet", "v30000001").questions[0].answer == "levitate");
  CHECK(find_record(records, "wordnet", "r50000001").passage == "hastily (adverb): in a hurried manner");
  for (const char* dropped : {"n20000001", "n20000002", "n20000003", "n20000004", "n20000005"})
    CHECK(std::none_of(records.begin(), records.end(), [&](const data::QaRecord& r) { return r.key == dropped; }));

  // Every answer is in its passage.
  for (const data::QaRecord& record : records)
    for (const data::QaRecordQuestion& q : record.questions) CHECK(record.passage.find(q.answer) != std::string::npos);
}

TEST_CASE("qa records: errors name the file and the record") {
  TempDir dir;
  write_text_file(dir / "iso_4217.json", "{\"4217\": [{\"alpha_3\": \"AAA\", \"numeric\": \"1\"}]}");
  try {
    data::iso_4217_records((dir / "iso_4217.json").string());
    FAIL("expected an error");
  } catch (const engine::Error& e) {
    CHECK(std::string(e.what()).find("iso_4217.json: entry 0") != std::string::npos);
    CHECK(std::string(e.what()).find("missing string field \"name\"") != std::string::npos);
  }
  write_text_file(dir / "iso3166.tab", "AA\tA\n");
  write_text_file(dir / "zone1970.tab", "AA\t+12+34\tX/Y\n");
  CHECK_THROWS_WITH_AS(data::zone1970_records((dir / "zone1970.tab").string()),
                       doctest::Contains("zone1970.tab:1: bad coordinates \"+12+34\""), engine::Error);
  CHECK_THROWS_WITH_AS(data::iso_15924_records((dir / "absent.json").string()),
                       doctest::Contains("absent.json: cannot open"), engine::Error);
}

TEST_CASE("qa builder: whole words and code guesses") {
  CHECK(data::find_whole_word("the DE-BY code", "DE") == 4);
  CHECK(data::find_whole_word("DEN and DE", "DE") == 8);
  CHECK(data::find_whole_word("made", "de") == std::string::npos);
  CHECK(data::find_whole_word("Zürich", "rich") == std::string::npos);
  CHECK(data::guess_code("Germany", "GE") == "GE");
  CHECK(data::guess_code("Ghotuo", "aaa") == "gho");
  CHECK(data::guess_code("Adlam", "Adlm") == "Adla");
  CHECK(data::guess_code("Germany", "276") == "");
  CHECK(data::guess_code("Ab", "ABC") == "");
}

TEST_CASE("qa builder: filtering drops repeated questions and answers that are category words") {
  std::vector<data::QaRecord> records;
  for (int i = 0; i < 100; ++i) {
    const std::string name = made_up_name(i, "");
    records.push_back({"s",
                       name,
                       name + " is a province.",
                       {{"What kind of place is " + name + "?", "province", "type", ""},
                        {"Which place is number " + std::to_string(i) + "?", name, "name", ""}}});
  }
  records.push_back({"s", "dup1", "Alpha is here.", {{"Where is it?", "Alpha", "name", ""}}});
  records.push_back({"s", "dup2", "Beta is here.", {{"Where is it?", "Beta", "name", ""}}});
  records.push_back({"t", "other", "Gamma is a province.", {{"What is Gamma?", "province", "type", ""}}});
  const data::QaFilterStats stats = data::filter_questions(records, 0.02);
  CHECK(stats.frequent_answers == 100);  // in 99 of 101 other passages of source "s"
  CHECK(stats.duplicate_questions == 2);
  CHECK(stats.empty_records == 2);
  CHECK(records.size() == 101);
  CHECK(records.back().questions.size() == 1);  // alone in source "t": "province" is fine there
  for (size_t i = 0; i < 100; ++i) CHECK(records[i].questions.size() == 1);
}

TEST_CASE("qa builder: splits are by record, deterministic under a seed") {
  const DebianFixture fixture;
  std::vector<data::QaRecord> records = fixture.records();
  data::filter_questions(records, 0.02);
  const data::QaSplits splits = data::split_records(records, 7, 0.1, 0.2);
  const std::map<std::string, std::string> split = split_of(splits);
  CHECK(split.size() == records.size());
  // Per source: 20 % test, 10 % dev (rounded).
  const auto count = [](const std::vector<data::QaRecord>& rs, const std::string& source) {
    return std::count_if(rs.begin(), rs.end(), [&](const data::QaRecord& r) { return r.source == source; });
  };
  CHECK(count(splits.test, "wordnet") == std::llround(0.2 * count(records, "wordnet")));
  CHECK(count(splits.dev, "iso_639-3") == std::llround(0.1 * count(records, "iso_639-3")));
  // No entity in two splits, also when the questions are counted: every question of a record stays with it.
  size_t questions = 0;
  for (const auto* rs : {&splits.train, &splits.dev, &splits.test})
    for (const data::QaRecord& r : *rs) questions += r.questions.size();
  size_t expected = 0;
  for (const data::QaRecord& r : records) expected += r.questions.size();
  CHECK(questions == expected);

  CHECK(split_of(data::split_records(records, 7, 0.1, 0.2)) == split);
  CHECK(split_of(data::split_records(records, 8, 0.1, 0.2)) != split);
  CHECK_THROWS_AS(data::split_records(records, 7, 0.5, 0.5), engine::Error);
}

TEST_CASE("qa builder: long contexts hold the gold passage once, meet the length, keep questions across lengths") {
  const DebianFixture fixture;
  std::vector<data::QaRecord> records = fixture.records();
  data::filter_questions(records, 0.02);
  const data::BpeTokenizer tokenizer = tokenizer_for(records);
  const data::QaSplits splits = data::split_records(records, 3, 0.1, 0.2);
  const std::vector<data::QaRecord> sample = data::sample_records(splits.test, 60, 3);
  int64_t sample_questions = 0;
  for (const data::QaRecord& r : sample) sample_questions += static_cast<int64_t>(r.questions.size());
  CHECK(sample_questions >= 60);
  CHECK(sample_questions < 60 + 5);

  const data::LongContextBuilder builder(records, tokenizer, 11);
  TempDir dir;
  // Per question, the slot fractions u with floor(u * passages) == index at every length so far.
  std::map<std::string, std::pair<double, double>> slot_fraction;
  std::set<std::string> ids_at_first_length;
  std::vector<double> relatives;
  for (const int64_t budget : {int64_t{200}, int64_t{400}, int64_t{900}}) {
    CAPTURE(budget);
    data::QaLongContextStats stats;
    const data::QaDataset dataset = builder.build(sample, budget, stats);
    CHECK(stats.contexts == static_cast<int64_t>(sample.size()));
    CHECK(stats.questions == sample_questions);
    CHECK(stats.short_contexts == 0);
    CHECK(stats.unique_answers == stats.questions);
    // Spans and gold passages survive the SQuAD file (offsets in code points there).
    const std::string path = (dir / ("test." + std::to_string(budget) + ".json")).string();
    data::write_squad(dataset, path);
    CHECK(data::read_squad(path) == dataset);

    std::set<std::string> ids;
    size_t record_index = 0;
    for (const data::QaArticle& article : dataset.articles) {
      for (const data::QaParagraph& paragraph : article.paragraphs) {
        // Articles group records by source in order; find this paragraph's record.
        const data::QaRecord* record = nullptr;
        for (const data::QaRecord& r : sample)
          if (r.source == article.title && paragraph.questions[0].id.starts_with(r.source + "/" + r.key + "/"))
            record = &r;
        REQUIRE(record != nullptr);
        ++record_index;
        // The length is met: the exact token count, within budget, short by less than a passage.
        const auto tokens = static_cast<int64_t>(tokenizer.encode_ordinary(paragraph.context).size());
        CHECK(tokens == paragraph.context_tokens);
        CHECK(tokens <= budget);
        CHECK(budget - tokens < builder.max_passage_tokens());
        // The gold passage occurs exactly once, where gold_passage says.
        const data::QaGoldPassage& gold = *paragraph.questions[0].gold_passage;
        CHECK(paragraph.context.substr(gold.start, gold.length) == record->passage);
        CHECK(paragraph.context.find(record->passage) == static_cast<size_t>(gold.start));
        CHECK(paragraph.context.find(record->passage, gold.start + 1) == std::string::npos);
        // Passages are the gold one and distractors of the same source, none repeated.
        std::set<std::string> passages;
        size_t begin = 0, count = 0;
        while (begin <= paragraph.context.size()) {
          const size_t end = std::min(paragraph.context.find('\n', begin), paragraph.context.size());
          const std::string passage = paragraph.context.substr(begin, end - begin);
          CHECK(passages.insert(passage).second);
          if (count == static_cast<size_t>(gold.index)) CHECK(passage == record->passage);
          ++count;
          begin = end + 1;
        }
        CHECK(static_cast<int64_t>(count) == gold.passages);
        for (const data::QaQuestion& q : paragraph.questions) {
          CHECK(q.gold_passage == gold);
          CHECK(q.source == record->source);
          ids.insert(q.id);
          // One slot fraction u places the gold passage at every length: index = floor(u * passages).
          auto& [lo, hi] = slot_fraction.try_emplace(q.id, 0.0, 1.0).first->second;
          lo = std::max(lo, static_cast<double>(gold.index) / gold.passages);
          hi = std::min(hi, static_cast<double>(gold.index + 1) / gold.passages);
          CHECK(lo < hi);
        }
        if (budget == 900) relatives.push_back(gold.relative);
      }
    }
    if (budget == 200) ids_at_first_length = ids;
    CHECK(ids == ids_at_first_length);  // the same questions at every length
    CHECK(static_cast<int64_t>(ids.size()) == sample_questions);
  }
  // Gold positions spread over the context: some in each third.
  const auto in = [&](double lo, double hi) {
    return std::count_if(relatives.begin(), relatives.end(), [&](double r) { return r >= lo && r <= hi; });
  };
  CHECK(in(0.0, 1.0 / 3) > 0);
  CHECK(in(1.0 / 3, 2.0 / 3) > 0);
  CHECK(in(2.0 / 3, 1.0) > 0);

  // Deterministic: the same seed builds the same file; another seed another one.
  data::QaLongContextStats stats;
  const data::QaDataset first = builder.build(sample, 400, stats);
  const data::LongContextBuilder same(records, tokenizer, 11), other(records, tokenizer, 12);
  CHECK(same.build(sample, 400, stats) == first);
  CHECK(other.build(sample, 400, stats) != first);
}

TEST_CASE("qa builder: training contexts see only training records; small sources fall back to their family") {
  const DebianFixture fixture;
  std::vector<data::QaRecord> records = fixture.records();
  data::filter_questions(records, 0.02);
  const data::BpeTokenizer tokenizer = tokenizer_for(records);
  const data::QaSplits splits = data::split_records(records, 5, 0.1, 0.1);
  const data::LongContextBuilder train_builder(splits.train, tokenizer, 5);
  data::QaLongContextStats stats;
  const data::QaDataset train = train_builder.build(splits.train, 300, stats);
  std::set<std::string> held_out;
  for (const auto* rs : {&splits.dev, &splits.test})
    for (const data::QaRecord& r : *rs) held_out.insert(r.passage);
  for (const data::QaArticle& article : train.articles)
    for (const data::QaParagraph& paragraph : article.paragraphs)
      for (size_t begin = 0; begin < paragraph.context.size();) {
        const size_t end = std::min(paragraph.context.find('\n', begin), paragraph.context.size());
        CHECK(!held_out.contains(paragraph.context.substr(begin, end - begin)));
        begin = end + 1;
      }
  // A test record whose context must reach past its own source's passages.
  CHECK_THROWS_WITH_AS(train_builder.build(splits.test, 300, stats), doctest::Contains("is not in the distractor pool"),
                       engine::Error);

  const data::LongContextBuilder builder(records, tokenizer, 5);
  std::vector<data::QaRecord> currencies;
  for (const data::QaRecord& r : records)
    if (r.source == "iso_4217") currencies.push_back(r);
  const data::QaDataset long_currencies = builder.build({currencies[0]}, 3000, stats);
  CHECK(stats.fallback_contexts == 1);  // 30 currency passages are far fewer than 3000 tokens
  CHECK(stats.short_contexts == 0);
  CHECK(long_currencies.articles[0].paragraphs[0].context.find("is a country") != std::string::npos);
  CHECK(long_currencies.articles[0].paragraphs[0].context.find("(noun)") == std::string::npos);  // not WordNet's family
  // WordNet alone cannot fill a huge context: it says so.
  std::vector<data::QaRecord> senses;
  for (const data::QaRecord& r : records)
    if (r.source == "wordnet") senses.push_back(r);
  builder.build({senses[0]}, 100000, stats);
  CHECK(stats.short_contexts == 1);
  CHECK(stats.fallback_contexts == 0);
}

TEST_CASE("qa builder: passage files and no-context baselines") {
  const DebianFixture fixture;
  std::vector<data::QaRecord> records = fixture.records();
  data::filter_questions(records, 0.02);
  const data::QaDataset dataset = data::passage_dataset(records);
  std::vector<data::QaExample> examples = data::flatten(dataset);
  size_t questions = 0;
  for (const data::QaRecord& r : records) questions += r.questions.size();
  CHECK(examples.size() == questions);
  for (const data::QaExample& example : examples) {
    CHECK(example.context.substr(example.answer_starts[0], example.answers[0].size()) == example.answers[0]);
    CHECK(!example.gold_passage.has_value());
  }
  CHECK(dataset.articles.size() == 7);  // one per source

  const std::map<std::string, data::QaBaselineStats> baselines = data::no_context_baselines(records);
  // "What is the ISO 3166-1 alpha-2 code of Kakakaland?" -> "QA": made-up codes are not the names' letters.
  CHECK(baselines.at("iso_3166-1").code_questions == 2 * DebianFixture::kCountries);
  CHECK(baselines.at("iso_3166-1").code_guessed == 0);
  std::vector<data::QaRecord> guessable = {{"iso_639-3",
                                            "ger",
                                            "German is a language with code ger.",
                                            {{"What is the code of German?", "ger", "alpha_3", "German"}}}};
  CHECK(data::no_context_baselines(guessable).at("iso_639-3").code_guessed == 1);
  CHECK(data::no_context_baselines(guessable).at("iso_639-3").answer_in_question == 1);
}
