// Rank agreement checks (rank_agreement.h).
#include "engine/dist/rank_agreement.h"

#include <cstring>

#include "engine/error.h"
#include "engine/shape.h"

namespace engine::dist {

namespace {

// FNV-1a, 64-bit: the same on every rank and every build (std::hash promises neither).
uint64_t fnv1a(uint64_t hash, const std::string& text) {
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

// Fields as one string, each name and value prefixed with its length so that no two lists of
// fields serialise alike.
std::string serialise(const std::vector<AgreementField>& fields) {
  std::string text;
  for (const AgreementField& f : fields)
    text.append(std::to_string(f.name.size())).append(1, ':').append(f.name)
        .append(std::to_string(f.value.size())).append(1, ':').append(f.value);
  return text;
}

// The inverse of serialise(); the text comes from rank 0 of the same program.
std::vector<AgreementField> deserialise(const std::string& text) {
  std::vector<AgreementField> fields;
  size_t at = 0;
  const auto next = [&] {
    const size_t colon = text.find(':', at);
    ENGINE_ASSERT(colon != std::string::npos);
    const size_t length = std::stoull(text.substr(at, colon - at));
    ENGINE_ASSERT(colon + 1 + length <= text.size());
    at = colon + 1 + length;
    return text.substr(colon + 1, length);
  };
  while (at < text.size()) {
    AgreementField f;
    f.name = next();
    f.value = next();
    fields.push_back(std::move(f));
  }
  return fields;
}

// Rank `root`'s `text` on every rank: its length, then its bytes packed 8 to an i64.
std::string broadcast_text(Communicator& comm, const std::string& text, int root) {
  Tensor length = Tensor::from_indices({int64_t(text.size())}, {1});
  comm.broadcast(length, root);
  const int64_t bytes = length.to_vector<int64_t>()[0];
  Tensor packed = Tensor::zeros({(bytes + 7) / 8}, Dtype::i64);
  if (comm.rank() == root) std::memcpy(packed.raw_data(), text.data(), text.size());
  comm.broadcast(packed, root);
  return std::string(static_cast<const char*>(packed.raw_data()), size_t(bytes));
}

// The first difference between rank 0's fields and those of `who` ("this rank", "rank 2"), as a
// sentence.
std::string first_difference(const std::vector<AgreementField>& root, const std::vector<AgreementField>& mine,
                             const std::string& who) {
  ENGINE_ASSERT(root != mine);  // their hashes differ, and serialise() is one-to-one
  for (size_t i = 0; i < root.size() && i < mine.size(); ++i) {
    if (root[i].name != mine[i].name)
      return engine::detail::concat("rank 0 has '", root[i].name, "' where ", who, " has '", mine[i].name, "'");
    if (root[i].value != mine[i].value)
      return engine::detail::concat("'", root[i].name, "' is ", root[i].value, " on rank 0 but ", mine[i].value, " on ",
                                    who);
  }
  if (root.size() > mine.size()) return engine::detail::concat(who, " lacks '", root[mine.size()].name, "' of rank 0");
  return engine::detail::concat("rank 0 lacks '", mine[root.size()].name, "' of ", who);
}

}  // namespace

std::vector<AgreementField> config_fields(const nlohmann::json& config) {
  std::vector<AgreementField> fields;
  const nlohmann::json flat = config.flatten();  // {"/a/b": leaf, ...}, keys sorted
  for (const auto& [pointer, value] : flat.items())
    fields.push_back({pointer, value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  return fields;
}

std::vector<AgreementField> parameter_fields(const std::vector<std::pair<std::string, Tensor>>& named_parameters) {
  std::vector<AgreementField> fields;
  for (const auto& [name, tensor] : named_parameters)
    fields.push_back({"parameter " + name, shape_str(tensor.shape()) + " " + dtype_name(tensor.dtype())});
  return fields;
}

void check_ranks_agree(Communicator& comm, const std::vector<AgreementField>& fields, const std::string& what) {
  const int world = comm.world_size();
  if (world == 1) return;
  const std::string text = serialise(fields);
  // Hashes of every rank; the top bit dropped so that it fits an i64 without a sign question.
  const int64_t mine = int64_t(fnv1a(0xcbf29ce484222325ull, text) >> 1);
  Tensor hash = Tensor::from_indices({mine}, {1});
  Tensor hashes = Tensor::zeros({world}, Dtype::i64);
  comm.all_gather(hash, hashes);
  const std::vector<int64_t> all = hashes.to_vector<int64_t>();
  std::string differing;
  int first = 0;  // the first rank that differs from rank 0
  for (int r = 1; r < world; ++r)
    if (all[size_t(r)] != all[0]) {
      differing.append(differing.empty() ? "" : ", ").append(std::to_string(r));
      if (first == 0) first = r;
    }
  if (differing.empty()) return;

  const std::vector<AgreementField> root = deserialise(broadcast_text(comm, text, 0));
  // Every rank names a field (whichever rank's message the launcher shows first): the first
  // differing rank's first difference travels to the others.
  const std::string first_rank = "rank " + std::to_string(first);
  const std::string named =
      broadcast_text(comm, comm.rank() == first ? first_difference(root, fields, first_rank) : std::string(), first);
  if (all[size_t(comm.rank())] != all[0])
    throw Error(engine::detail::concat("ranks disagree on the ", what, ": ",
                                       first_difference(root, fields, "this rank"), " (rank ", comm.rank(), " of ",
                                       world, "): start every rank with the same options and files"));
  throw Error(engine::detail::concat("ranks disagree on the ", what, ": rank(s) ", differing, " differ from rank 0 (",
                                     named, "): start every rank with the same options and files"));
}

}  // namespace engine::dist
