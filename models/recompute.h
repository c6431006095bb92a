// Activation recompute, chosen per run (--recompute, as llm.c's -r or torch.utils.checkpoint):
// trade compute in the backward for activation memory, so that larger batches fit.
//
//   none   every activation the backward needs is kept (the default)
//   gelu   each transformer block's MLP keeps its pre-activation only; the backward recomputes
//          gelu(pre) (ops::mlp's recompute_gelu): one (B·T, 4C) tensor less per block, for one
//          elementwise pass
//   block  each transformer block keeps only its input; the backward reruns the block's forward with
//          a graph and back-propagates through it (engine/recompute.h), dropout replaying the same
//          masks: about one forward more per step, the activations of one block at a time
//
// Gradients are the same bits with every mode on the CPU (the same ops on the same inputs). The
// setting is process-wide (like ops/precision.h), read by every transformer block at its forward.
#pragma once

#include <string>

namespace models {

enum class Recompute { none, gelu, block };

Recompute activation_recompute();
void set_activation_recompute(Recompute recompute);

// "none", "gelu" or "block", as --recompute spells them; the error names `option`.
Recompute parse_recompute(const std::string& text, const std::string& option = "--recompute");
const char* recompute_name(Recompute recompute);

// Sets the mode for its lifetime, then restores the previous one.
class RecomputeScope {
 public:
  explicit RecomputeScope(Recompute recompute) : previous_(activation_recompute()) {
    set_activation_recompute(recompute);
  }
  ~RecomputeScope() { set_activation_recompute(previous_); }
  RecomputeScope(const RecomputeScope&) = delete;
  RecomputeScope& operator=(const RecomputeScope&) = delete;

 private:
  Recompute previous_;
};

}  // namespace models
