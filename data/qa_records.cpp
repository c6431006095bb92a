// Readers of iso-codes JSON, tzdata's zone1970.tab and WordNet data files into QA records, with the
// English templates that turn each record into a passage and questions.
#include "data/qa_records.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/error.h"
#include "engine/json_read.h"

namespace data {

namespace {

using json = nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, path, ": cannot open (is the Debian package installed? scripts/setup.sh installs it)");
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The list under `key` ("3166-1", ...) of an iso-codes JSON file.
json iso_list(const std::string& path, const std::string& key) {
  const json root = engine::parse_json(read_text(path), path);
  const auto it = root.find(key);
  ENGINE_CHECK(root.is_object() && it != root.end() && it->is_array(), path, ": expected an object with a list \"", key,
               "\"");
  return *it;
}

// A string field of iso-codes entry `i`; `optional` ones give "" when absent.
std::string field(const json& entry, const char* name, const std::string& path, size_t i, bool optional = false) {
  const auto it = entry.find(name);
  if (it == entry.end() && optional) return "";
  ENGINE_CHECK(it != entry.end() && it->is_string(), path, ": entry ", i, " (", entry.dump().substr(0, 80),
               "): missing string field \"", name, "\"");
  return it->get<std::string>();
}

std::string with_article(const std::string& noun) {
  return (noun.find_first_of("aeiouAEIOU") == 0 ? "an " : "a ") + noun;
}

// Whether `word` occurs in `text` at the start of a word ("lizard" in "venomous lizards", "bot" in
// "botfly"): such a definition gives its headword away.
bool starts_a_word_in(const std::string& text, const std::string& word) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1))
    if (at == 0 || !is_word_byte(text[at - 1])) return true;
  return false;
}

// iso-codes names like "Korea, Republic of" read badly in a sentence: the common name is used
// when the entry has one.
std::string display_name(const json& entry, const std::string& path, size_t i) {
  const std::string common = field(entry, "common_name", path, i, true);
  return common.empty() ? field(entry, "name", path, i) : common;
}

// "+4230+00131" or "+411902-0834322" (ISO 6709, tzdata) -> "42°30′N 1°31′E".
std::string format_coordinates(const std::string& text, const std::string& where) {
  const size_t split = text.find_first_of("+-", 1);
  ENGINE_CHECK(!text.empty() && (text[0] == '+' || text[0] == '-') && split != std::string::npos, where,
               ": bad coordinates \"", text, "\"");
  const auto part = [&](const std::string& value, int degree_digits, char positive, char negative) {
    const std::string digits = value.substr(1);
    ENGINE_CHECK((digits.size() == static_cast<size_t>(degree_digits) + 2 ||
                  digits.size() == static_cast<size_t>(degree_digits) + 4) &&
                     std::all_of(digits.begin(), digits.end(),
                                 [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }),
                 where, ": bad coordinates \"", text, "\"");
    std::string out =
        std::to_string(std::stoi(digits.substr(0, degree_digits))) + "°" + digits.substr(degree_digits, 2) + "′";
    if (digits.size() == static_cast<size_t>(degree_digits) + 4) out += digits.substr(degree_digits + 2, 2) + "″";
    return out + (value[0] == '+' ? positive : negative);
  };
  return part(text.substr(0, split), 2, 'N', 'S') + " " + part(text.substr(split), 3, 'E', 'W');
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

}  // namespace

bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || u >= 0x80;
}

std::string ascii_lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

size_t find_whole_word(const std::string& haystack, const std::string& needle, size_t from) {
  if (needle.empty()) return std::string::npos;
  for (size_t at = haystack.find(needle, from); at != std::string::npos; at = haystack.find(needle, at + 1)) {
    const bool left = at == 0 || !is_word_byte(haystack[at - 1]) || !is_word_byte(needle.front());
    const size_t end = at + needle.size();
    const bool right = end == haystack.size() || !is_word_byte(haystack[end]) || !is_word_byte(needle.back());
    if (left && right) return at;
  }
  return std::string::npos;
}

std::vector<QaRecord> iso_3166_1_records(const std::string& path) {
  std::vector<QaRecord> records;
  const json list = iso_list(path, "3166-1");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const std::string name = display_name(entry, path, i), a2 = field(entry, "alpha_2", path, i),
                      a3 = field(entry, "alpha_3", path, i), numeric = field(entry, "numeric", path, i),
                      official = field(entry, "official_name", path, i, true);
    QaRecord record{"iso_3166-1", a2, "", {}};
    record.passage = name + " is a country with the ISO 3166-1 alpha-2 code " + a2 + ", the alpha-3 code " + a3 +
                     " and the numeric code " + numeric + ".";
    if (!official.empty() && official != name) record.passage += " Its official name is " + official + ".";
    record.questions = {
        {"What is the ISO 3166-1 alpha-2 code of " + name + "?", a2, "alpha_2", name},
        {"What is the ISO 3166-1 alpha-3 code of " + name + "?", a3, "alpha_3", name},
        {"What is the ISO 3166-1 numeric code of " + name + "?", numeric, "numeric", ""},
        {"Which country has the ISO 3166-1 alpha-3 code " + a3 + "?", name, "name", ""},
    };
    if (!official.empty() && official != name)
      record.questions.push_back({"What is the official name of " + name + "?", official, "official_name", ""});
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> iso_3166_2_records(const std::string& path, const std::string& countries_path) {
  std::map<std::string, std::string> country_names;
  const json countries = iso_list(countries_path, "3166-1");
  for (size_t i = 0; i < countries.size(); ++i)
    country_names[field(countries[i], "alpha_2", countries_path, i)] = display_name(countries[i], countries_path, i);
  const json list = iso_list(path, "3166-2");
  std::map<std::string, std::string> subdivision_names;  // code -> name, for parents
  for (size_t i = 0; i < list.size(); ++i)
    subdivision_names[field(list[i], "code", path, i)] = field(list[i], "name", path, i);

  std::vector<QaRecord> records;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const std::string code = field(entry, "code", path, i), name = field(entry, "name", path, i),
                      type = ascii_lower(field(entry, "type", path, i)), parent = field(entry, "parent", path, i, true);
    const std::string country_code = code.substr(0, code.find('-'));
    const auto country = country_names.find(country_code);
    ENGINE_CHECK(country != country_names.end(), path, ": subdivision ", code, ": country ", country_code,
                 " is not in ", countries_path);
    QaRecord record{"iso_3166-2", code, "", {}};
    record.passage =
        name + " is " + with_article(type) + " of " + country->second + " with the ISO 3166-2 code " + code + ".";
    if (const auto it = subdivision_names.find(country_code + "-" + parent);
        !parent.empty() && it != subdivision_names.end())
      record.passage += " It is part of " + it->second + ".";
    const std::string in_country = name + " in " + country->second;
    record.questions = {
        {"What is the ISO 3166-2 code of " + in_country + "?", code, "code", ""},
        {"Which subdivision of " + country->second + " has the ISO 3166-2 code " + code + "?", name, "name", ""},
    };
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> iso_639_3_records(const std::string& path) {
  static const std::map<std::string, std::string> kTypes = {
      {"L", "living"}, {"E", "extinct"}, {"A", "ancient"}, {"H", "historical"}, {"C", "constructed"}};
  static const std::map<std::string, std::string> kScopes = {{"I", "individual language"}, {"M", "macrolanguage"}};
  std::vector<QaRecord> records;
  const json list = iso_list(path, "639-3");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& entry = list[i];
    const auto type = kTypes.find(field(entry, "type", path, i));
    const auto scope = kScopes.find(field(entry, "scope", path, i));
    if (type == kTypes.end() || scope == kScopes.end()) continue;  // special codes: "mis", "und", ...
    const std::string name = field(entry, "name", path, i), a3 = field(entry, "alpha_3", path, i),
                      a2 = field(entry, "alpha_2", path, i, true);
    QaRecord record{"iso_639-3", a3, "", {}};
    record.passage =
        name + " is " + with_article(type->second) + " " + scope->second + " with the ISO 639-3 code " + a3 + ".";
    if (!a2.empty()) record.passage += " Its ISO 639-1 code is " + a2 + ".";
    record.questions = {
        {"What is the ISO 639-3 code of " + name + "?", a3, "alpha_3", name},
        {"Which language has the ISO 639-3 code " + a3 + "?", name, "name", ""},
    };
    if (!a2.empty()) record.questions.push_back({"What is the ISO 639-1 code of " + name + "?", a2, "alpha_2", name});
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> iso_4217_records(const std::string& path) {
  std::vector<QaRecord> records;
  const json list = iso_list(path, "4217");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = field(list[i], "name", path, i), a3 = field(list[i], "alpha_3", path, i),
                      numeric = field(list[i], "numeric", path, i);
    QaRecord record{"iso_4217", a3, "", {}};
    record.passage =
        "The " + name + " is a currency with the ISO 4217 code " + a3 + " and the numeric code " + numeric + ".";
    record.questions = {
        {"What is the ISO 4217 code of the " + name + "?", a3, "alpha_3", name},
        {"What is the ISO 4217 numeric code of the " + name + "?", numeric, "numeric", ""},
        {"Which currency has the ISO 4217 code " + a3 + "?", name, "name", ""},
    };
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> iso_15924_records(const std::string& path) {
  std::vector<QaRecord> records;
  const json list = iso_list(path, "15924");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = field(list[i], "name", path, i), a4 = field(list[i], "alpha_4", path, i),
                      numeric = field(list[i], "numeric", path, i);
    QaRecord record{"iso_15924", a4, "", {}};
    record.passage =
        name + " is a writing system with the ISO 15924 code " + a4 + " and the numeric code " + numeric + ".";
    record.questions = {
        {"What is the ISO 15924 code of the script " + name + "?", a4, "alpha_4", name},
        {"What is the ISO 15924 numeric code of the script " + name + "?", numeric, "numeric", ""},
        {"Which script has the ISO 15924 code " + a4 + "?", name, "name", ""},
    };
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> zone1970_records(const std::string& path) {
  // iso3166.tab: "AD<TAB>Andorra" per line, '#' comments.
  const std::string names_path = (std::filesystem::path(path).parent_path() / "iso3166.tab").string();
  std::map<std::string, std::string> country_names;
  {
    std::istringstream in(read_text(names_path));
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
      if (line.empty() || line[0] == '#') continue;
      const size_t tab = line.find('\t');
      ENGINE_CHECK(tab != std::string::npos, names_path, ":", number, ": expected \"CODE<TAB>name\"");
      country_names[line.substr(0, tab)] = line.substr(tab + 1);
    }
  }
  std::vector<QaRecord> records;
  std::istringstream in(read_text(path));
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> columns;
    std::istringstream fields(line);
    for (std::string column; std::getline(fields, column, '\t');) columns.push_back(column);
    const std::string where = path + ":" + std::to_string(number);
    ENGINE_CHECK(columns.size() == 3 || columns.size() == 4, where, ": expected 3 or 4 tab-separated columns, got ",
                 columns.size());
    std::vector<std::string> countries;
    std::istringstream codes(columns[0]);
    for (std::string code; std::getline(codes, code, ',');) {
      const auto it = country_names.find(code);
      ENGINE_CHECK(it != country_names.end(), where, ": country code ", code, " is not in ", names_path);
      countries.push_back(it->second);
    }
    const std::string zone = columns[2], coordinates = format_coordinates(columns[1], where);
    const std::string comment = columns.size() == 4 ? columns[3] : "";
    QaRecord record{"zone1970", zone, "", {}};
    record.passage = "The time zone " + zone + " is used in " + join_names(countries) +
                     (comment.empty() ? "" : " (" + comment + ")") + ". Its principal location is at " + coordinates +
                     ".";
    record.questions = {
        {"Which time zone has its principal location at " + coordinates + "?", zone, "zone", ""},
        {"In which country is the principal location of the time zone " + zone + "?", countries[0], "country", ""},
    };
    if (!comment.empty())
      record.questions.push_back(
          {"Which time zone of " + countries[0] + " is described as \"" + comment + "\"?", zone, "zone", ""});
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> wordnet_records(const std::vector<std::string>& data_paths) {
  static const std::map<char, std::string> kPos = {
      {'n', "noun"}, {'v', "verb"}, {'a', "adjective"}, {'s', "adjective"}, {'r', "adverb"}};
  struct Sense {
    std::string key, headword, pos, definition;
  };
  std::vector<Sense> senses;
  for (const std::string& path : data_paths) {
    std::istringstream in(read_text(path));
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
      if (line.empty() || line[0] == ' ') continue;  // the licence header lines start with spaces
      const std::string where = path + ":" + std::to_string(number);
      // offset lex_filenum ss_type w_cnt(hex) word lex_id ... | gloss
      std::istringstream fields(line);
      std::string offset, lex_file, ss_type, count, word;
      fields >> offset >> lex_file >> ss_type >> count >> word;
      const size_t bar = line.find(" | ");
      const auto pos = ss_type.size() == 1 ? kPos.find(ss_type[0]) : kPos.end();
      ENGINE_CHECK(!word.empty() && bar != std::string::npos && pos != kPos.end(), where,
                   ": not a WordNet data line (offset ss_type w_cnt word ... | gloss)");
      // Adjective markers "(a)", "(p)", "(ip)" follow the word; underscores stand for spaces.
      if (const size_t paren = word.find('('); paren != std::string::npos) word.resize(paren);
      std::replace(word.begin(), word.end(), '_', ' ');
      std::string gloss = line.substr(bar + 3);
      while (!gloss.empty() && gloss.back() == ' ') gloss.pop_back();
      // The definition ends where the first quoted usage example starts.
      const size_t example = gloss.find("; \"");
      std::string definition = gloss.substr(0, gloss[0] == '"' ? 0 : example);
      while (!definition.empty() && (definition.back() == ' ' || definition.back() == ';')) definition.pop_back();
      if (definition.empty()) continue;
      senses.push_back({ss_type + offset, word, pos->second, definition});
    }
  }
  std::unordered_map<std::string, int> headword_count, definition_count;
  for (const Sense& sense : senses) {
    ++headword_count[ascii_lower(sense.headword)];
    ++definition_count[ascii_lower(sense.definition)];
  }
  std::vector<QaRecord> records;
  for (const Sense& sense : senses) {
    if (headword_count[ascii_lower(sense.headword)] > 1 || definition_count[ascii_lower(sense.definition)] > 1)
      continue;
    if (starts_a_word_in(ascii_lower(sense.definition), ascii_lower(sense.headword))) continue;
    QaRecord record{"wordnet", sense.key, sense.headword + " (" + sense.pos + "): " + sense.definition, {}};
    record.questions = {{"Which " + sense.pos + " means \"" + sense.definition + "\"?", sense.headword, "word", ""}};
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<QaRecord> debian_records(const std::string& iso_codes_dir, const std::string& zoneinfo_dir,
                                     const std::string& wordnet_dir) {
  const auto iso = [&](const char* name) { return (std::filesystem::path(iso_codes_dir) / name).string(); };
  std::vector<QaRecord> records;
  const auto append = [&](std::vector<QaRecord> more) {
    records.insert(records.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  };
  append(iso_3166_1_records(iso("iso_3166-1.json")));
  append(iso_3166_2_records(iso("iso_3166-2.json"), iso("iso_3166-1.json")));
  append(iso_639_3_records(iso("iso_639-3.json")));
  append(iso_4217_records(iso("iso_4217.json")));
  append(iso_15924_records(iso("iso_15924.json")));
  append(zone1970_records((std::filesystem::path(zoneinfo_dir) / "zone1970.tab").string()));
  std::vector<std::string> wordnet;
  for (const char* pos : {"noun", "verb", "adj", "adv"})
    wordnet.push_back((std::filesystem::path(wordnet_dir) / (std::string("data.") + pos)).string());
  append(wordnet_records(wordnet));
  return records;
}

}  // namespace data
