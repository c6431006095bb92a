// GPT-2's tokenizer files: vocab.json (a JSON object, token text -> id) and merges.txt
// ("#version: 0.2" then "left right" per line, in rank order). Token text is the token's bytes
// written with GPT-2's byte-to-unicode mapping (data/byte_unicode.h).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "data/bpe_tokenizer.h"
#include "data/byte_unicode.h"
#include "engine/error.h"
#include "engine/json_read.h"

namespace data {

namespace {

constexpr std::string_view kMergesHeader = "#version: 0.2";

std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, path.string(), ": cannot open the tokenizer's ", what, " file");
  std::ostringstream contents;
  contents << in.rdbuf();
  ENGINE_CHECK(!in.bad(), path.string(), ": error while reading");
  return contents.str();
}

// vocab.json -> the bytes of each token, by id. Ids must be exactly 0 .. (entries - 1).
std::vector<std::string> read_vocab(const std::filesystem::path& path,
                                    std::optional<TokenId>& end_of_text) {
  const nlohmann::json vocab = engine::parse_json(read_file(path, "vocab.json"), path.string());
  ENGINE_CHECK(vocab.is_object(), path.string(),
               ": expected a JSON object mapping token text to id, got a JSON ", vocab.type_name());
  const size_t count = vocab.size();
  std::vector<std::string> token_bytes(count);
  std::vector<bool> seen(count, false);
  for (const auto& [text, id_json] : vocab.items()) {
    ENGINE_CHECK(id_json.is_number_integer(), path.string(), ": token \"", text,
                 "\" has id ", id_json.dump(), ", expected an integer");
    const int64_t id = id_json.get<int64_t>();
    ENGINE_CHECK(id >= 0 && static_cast<size_t>(id) < count, path.string(), ": token \"", text,
                 "\" has id ", id, ", outside [0, ", count,
                 ") (the ids of a vocabulary of ", count, " tokens must be 0 to ", count - 1, ")");
    ENGINE_CHECK(!seen[id], path.string(), ": id ", id, " is given to both \"",
                 bytes_to_token_text(token_bytes[id]), "\" and \"", text, "\"");
    seen[id] = true;
    const std::optional<std::string> bytes = token_text_to_bytes(text);
    ENGINE_CHECK(bytes.has_value(), path.string(), ": token \"", text, "\" (id ", id,
                 ") is not byte-level text: it has a character outside GPT-2's byte mapping");
    token_bytes[id] = *bytes;
    if (text == kEndOfText) end_of_text = static_cast<TokenId>(id);
  }
  return token_bytes;
}

// merges.txt -> merges in rank order, checked against the vocabulary line by line.
std::vector<BpeMerge> read_merges(const std::filesystem::path& path,
                                  const std::filesystem::path& vocab_path,
                                  const std::vector<std::string>& token_bytes) {
  std::unordered_map<std::string, TokenId> id_of_text;
  id_of_text.reserve(token_bytes.size());
  for (size_t id = 0; id < token_bytes.size(); ++id)
    id_of_text.emplace(bytes_to_token_text(token_bytes[id]), static_cast<TokenId>(id));
  const auto id_of = [&](const std::string& text, size_t line) {
    const auto it = id_of_text.find(text);
    ENGINE_CHECK(it != id_of_text.end(), path.string(), ":", line, ": token \"", text,
                 "\" is not in the vocabulary ", vocab_path.string());
    return it->second;
  };

  std::vector<BpeMerge> merges;
  std::unordered_map<std::string, size_t> line_of_merge;
  std::istringstream in(read_file(path, "merges.txt"));
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1 && line.starts_with("#version")) {
      ENGINE_CHECK(line == kMergesHeader, path.string(), ":1: unsupported header \"", line,
                   "\", expected \"", kMergesHeader, "\"");
      continue;
    }
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    ENGINE_CHECK(space != std::string::npos && space > 0 && space + 1 < line.size() &&
                     line.find(' ', space + 1) == std::string::npos,
                 path.string(), ":", number,
                 ": expected two tokens separated by one space, got \"", line, "\"");
    const std::string left = line.substr(0, space);
    const std::string right = line.substr(space + 1);
    const BpeMerge merge{id_of(left, number), id_of(right, number)};
    ENGINE_CHECK(id_of_text.contains(left + right), path.string(), ":", number, ": merging \"",
                 left, "\" and \"", right, "\" gives \"", left + right,
                 "\", which is not in the vocabulary ", vocab_path.string());
    const auto [previous, inserted] = line_of_merge.emplace(line, number);
    ENGINE_CHECK(inserted, path.string(), ":", number, ": merge \"", line, "\" repeats line ",
                 previous->second);
    merges.push_back(merge);
  }
  return merges;
}

// Every token of more than one byte, <|endoftext|> aside, must be made by exactly one merge, as in
// GPT-2's files and those train_bpe writes (each merge adds one token). A merges.txt cut short, or
// empty, leaves tokens that no merge makes: encoding would silently never produce them.
void check_merges_make_every_token(const std::filesystem::path& merges_path, const std::filesystem::path& vocab_path,
                                   const BpeTokenizer& tokenizer) {
  const std::vector<BpeMerge>& merges = tokenizer.merges();
  std::unordered_map<std::string, size_t> made;  // token bytes -> merges that make them
  made.reserve(merges.size());
  for (const BpeMerge& merge : merges) ++made[tokenizer.token_bytes(merge.left) + tokenizer.token_bytes(merge.right)];
  size_t unmade = 0;
  std::optional<TokenId> first;
  for (TokenId id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.token_bytes(id).size() < 2 || tokenizer.end_of_text() == id) continue;
    if (made.contains(tokenizer.token_bytes(id))) continue;
    ++unmade;
    if (!first) first = id;
  }
  ENGINE_CHECK(unmade == 0, merges_path.string(), ": ", unmade, " of the tokens of ", vocab_path.string(),
               " are made by no merge (the first: \"", first ? bytes_to_token_text(tokenizer.token_bytes(*first)) : "",
               "\", id ", first.value_or(0), "; the file has ", merges.size(),
               " merges): it is truncated, or belongs to another vocabulary");
  for (const auto& [bytes, count] : made)
    ENGINE_CHECK(count == 1, merges_path.string(), ": ", count, " merges make the token \"", bytes_to_token_text(bytes),
                 "\": the file is damaged, or belongs to another vocabulary");
}

void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ENGINE_CHECK(out, path.string(), ": cannot open for writing");
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  ENGINE_CHECK(out, path.string(), ": error while writing");
}

}  // namespace

BpeTokenizer BpeTokenizer::load(const std::filesystem::path& vocab_json,
                                const std::filesystem::path& merges_txt) {
  std::optional<TokenId> end_of_text;
  std::vector<std::string> token_bytes = read_vocab(vocab_json, end_of_text);
  std::vector<BpeMerge> merges = read_merges(merges_txt, vocab_json, token_bytes);
  std::optional<BpeTokenizer> tokenizer;
  try {
    tokenizer.emplace(std::move(token_bytes), std::move(merges), end_of_text);
  } catch (const engine::Error& e) {
    throw engine::Error(vocab_json.string() + ": " + e.what());
  }
  check_merges_make_every_token(merges_txt, vocab_json, *tokenizer);
  return std::move(*tokenizer);
}

void BpeTokenizer::save(const std::filesystem::path& vocab_json,
                        const std::filesystem::path& merges_txt) const {
  std::string vocab = "{\n";
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    // <|endoftext|> is printable ASCII, which the byte mapping leaves as it is.
    const std::string text = bytes_to_token_text(token_bytes_[id]);
    vocab += "  " + nlohmann::json(text).dump() + ": " + std::to_string(id);
    vocab += id + 1 < token_bytes_.size() ? ",\n" : "\n";
  }
  vocab += "}\n";
  write_file(vocab_json, vocab);

  std::string merges = std::string(kMergesHeader) + "\n";
  for (const BpeMerge& merge : merges_) {
    merges += bytes_to_token_text(token_bytes_[merge.left]) + " " +
              bytes_to_token_text(token_bytes_[merge.right]) + "\n";
  }
  write_file(merges_txt, merges);
}

}  // namespace data
