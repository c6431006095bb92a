// Question-answering records from reference data Debian ships, for the offline QA set
// (data/qa_builder.h, docs/qa_data.md). A record is one entity (a country, a language, a word
// sense...) with one short passage about it and questions whose answers are spans of that passage.
//
// Sources and how passages are made:
//   iso-codes  /usr/share/iso-codes/json/iso_3166-1.json (countries), iso_3166-2.json
//              (subdivisions), iso_639-3.json (languages), iso_4217.json (currencies),
//              iso_15924.json (scripts): the facts are the records', the wording is a fixed English
//              template per source, and so are the questions (codes, names).
//   tzdata     /usr/share/zoneinfo/zone1970.tab with iso3166.tab beside it (country names): one
//              templated passage per time zone.
//   wordnet    /usr/share/wordnet/data.{noun,verb,adj,adv}: the passage is the sense's headword and
//              its definition verbatim ("dog (noun): <definition>"); the question quotes the
//              definition and asks for the word. Usage examples after the definition are left out.
//              Senses whose definition contains the headword at the start of a word ("bot" in
//              "botfly", "venomous lizard" in "venomous lizards"), headwords shared by several
//              senses (case-insensitive) and definitions shared by several senses are dropped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace data {

struct QaRecordQuestion {
  std::string question;
  std::string answer;  // occurs in the record's passage
  std::string kind;    // what is asked, e.g. "alpha_2", "name", "word"
  // The name the question mentions when the answer is a code of it: the no-context baseline
  // guesses codes from names (data/qa_builder.h). Empty otherwise.
  std::string entity;
};

struct QaRecord {
  std::string source;   // "iso_3166-1", "iso_3166-2", "iso_639-3", "iso_4217", "iso_15924",
                        // "zone1970", "wordnet"
  std::string key;      // unique within the source: the code, time zone or synset
  std::string passage;  // one line, no leading or trailing whitespace
  std::vector<QaRecordQuestion> questions;
};

// Readers, one per file format; errors name the file and the record or line at fault.
std::vector<QaRecord> iso_3166_1_records(const std::string& path);
// Subdivisions; `countries_path` (iso_3166-1.json) gives the country names.
std::vector<QaRecord> iso_3166_2_records(const std::string& path, const std::string& countries_path);
std::vector<QaRecord> iso_639_3_records(const std::string& path);
std::vector<QaRecord> iso_4217_records(const std::string& path);
std::vector<QaRecord> iso_15924_records(const std::string& path);
// zone1970.tab; country names from iso3166.tab in the same folder.
std::vector<QaRecord> zone1970_records(const std::string& path);
// WordNet data files (data.noun, data.verb, data.adj, data.adv: any subset), with the drops
// described above applied across all of them.
std::vector<QaRecord> wordnet_records(const std::vector<std::string>& data_paths);

// Every source under the Debian folders (iso-codes JSON folder, zoneinfo folder, wordnet folder).
std::vector<QaRecord> debian_records(const std::string& iso_codes_dir, const std::string& zoneinfo_dir,
                                     const std::string& wordnet_dir);

// Word characters for whole-word matching: ASCII letters and digits, and every non-ASCII byte (so
// a UTF-8 letter never ends a word).
bool is_word_byte(char c);

// `text` with ASCII letters lower-cased (other bytes unchanged).
std::string ascii_lower(std::string text);

// Whole-word search: `needle` at a position where neither neighbour is a word character (ASCII
// letter or digit, or any non-ASCII byte). Returns the byte offset or std::string::npos.
size_t find_whole_word(const std::string& haystack, const std::string& needle, size_t from = 0);

}  // namespace data
