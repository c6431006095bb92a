// Checks at the start of a distributed job that every rank runs the same job: the same run config
// and the same model (parameter names, shapes, dtypes). Ranks launched with different options
// (a --set on one host only, a stale config file) otherwise corrupt memory in the first collective
// whose sizes differ, hang in it, or train an inconsistent model without a word.
//
//   check_ranks_agree(comm, config_fields(run_config));
//   check_ranks_agree(comm, parameter_fields(model.named_parameters()));
//
// Protocol (all collectives of fixed size until the ranks are known to differ): every rank
// all-gathers a 64-bit hash of its fields; when the hashes differ, rank 0 broadcasts its fields and
// each rank compares them with its own. Every rank then throws: a differing rank names the first
// field that differs with both values, the others name the ranks that differ and the first of them's
// first differing field.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine/dist/communicator.h"

namespace engine::dist {

// One compared item: a name ("/lr", "parameter h.0.attn.c_attn.weight") and its value as text.
struct AgreementField {
  std::string name;
  std::string value;
  bool operator==(const AgreementField&) const = default;
};

// The leaves of a JSON run config, named by JSON pointer ("/seqpe/encoder/layers"), in key order.
std::vector<AgreementField> config_fields(const nlohmann::json& config);

// Each parameter's shape and dtype ("[128, 384] f32"), named "parameter <name>", in the given order.
std::vector<AgreementField> parameter_fields(const std::vector<std::pair<std::string, Tensor>>& named_parameters);

// Throws engine::Error on every rank unless all ranks hold the same `fields` (in the same order).
// `what` names them in the error ("run config", "model"). Must be called by all ranks.
void check_ranks_agree(Communicator& comm, const std::vector<AgreementField>& fields, const std::string& what);

}  // namespace engine::dist
