// Does SeqPE's attn_scalar position term reach the attention? A diagnostic of a GPT with SeqPE.
//
// attn_scalar scores are s_ij = (q_i·k_j + α·pq_i·pk_j) / sqrt(d). Softmax over the keys j ignores
// any per-row constant, so what the position term can change is its variation along j: a term that
// is nearly the same for every key does nothing, however large its mean. For each layer and head
// this measures, on one evaluation forward,
//   position spread  mean over query rows i ≥ 1 of the std over keys j ≤ i of α·pq_i·pk_j / sqrt(d)
//   content spread   the same for q_i·k_j / sqrt(d), averaged over the sequences of the batch too
//   position mean    mean over rows of |mean over j ≤ i of α·pq_i·pk_j / sqrt(d)| (what softmax drops)
// all in logit units (the causal mask's j ≤ i). The position term is the same for every sequence.
// A position spread far below the content spread (say 1e-4 against 1) means the position signal
// is dead: the model is NoPE in practice.
//
//   B = batch, T = time, H = heads, d = head dim
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "models/gpt.h"
#include "seqpe/seqpe_position_encoding.h"

namespace seqpe {

struct HeadSignal {
  double position_spread = 0;
  double content_spread = 0;
  double position_mean = 0;
};

struct PositionSignal {
  std::vector<std::vector<HeadSignal>> layers;  // [layer][head]

  // Means over every layer and head, for a one-line summary.
  HeadSignal mean() const;
};

// Runs `model` (whose PE is `pe`, attn_scalar) in evaluation mode without gradients on tokens
// (B, T) at positions 0..T-1 and measures the spreads above; the model's mode is restored.
PositionSignal measure_position_signal(models::Gpt& model, SeqPe& pe, const engine::Tensor& tokens);

// {"position_spread": [[per head] per layer], "content_spread": [[...]], "position_mean": [[...]],
//  "mean": {"position_spread": x, "content_spread": y, "position_mean": z}}.
nlohmann::json position_signal_to_json(const PositionSignal& signal);

// The JSON above for a SeqPE attn_scalar model; null for any other apply method (no such term).
nlohmann::json position_signal_metrics(models::Gpt& model, SeqPe& pe, const engine::Tensor& tokens);

}  // namespace seqpe
