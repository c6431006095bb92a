// Activation recompute (engine/recompute.h): the node that stands for a function's graph and runs
// the function again, with a graph, when the backward reaches it.
#include "engine/recompute.h"

#include <memory>
#include <utility>

#include "engine/autograd.h"

namespace engine {

namespace {

// A generator's (seed, offset), to replay its draws.
struct GeneratorState {
  uint64_t seed = 0, offset = 0;
};

std::vector<GeneratorState> states_of(const std::vector<Generator*>& generators) {
  std::vector<GeneratorState> states;
  for (const Generator* gen : generators) states.push_back({gen->seed(), gen->offset()});
  return states;
}

void restore(const std::vector<Generator*>& generators, const std::vector<GeneratorState>& states) {
  for (size_t i = 0; i < generators.size(); ++i) generators[i]->set_state(states[i].seed, states[i].offset);
}

// The outputs of the function that were made inside the window [first, end): those the graph
// continues from (outputs that are inputs passed through, or need no gradient, stay as they are).
std::vector<size_t> made_inside(const std::vector<Tensor>& outputs, uint64_t first, uint64_t end) {
  std::vector<size_t> indices;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = outputs[i];
    if (t.defined() && t.requires_grad() && !t.is_leaf() && t.grad_fn()->sequence_nr >= first &&
        t.grad_fn()->sequence_nr < end)
      indices.push_back(i);
  }
  return indices;
}

// Inputs: the edges by which the function's graph left its window (next_edges); outputs: the
// function's outputs made inside it, in order.
class RecomputeBackward final : public Node {
 public:
  RecomputeBackward(std::function<std::vector<Tensor>()> function, std::vector<Generator*> replayed,
                    std::vector<GeneratorState> states, std::vector<size_t> recorded_outputs)
      : function_(std::move(function)), replayed_(std::move(replayed)), states_(std::move(states)),
        recorded_outputs_(std::move(recorded_outputs)) {}
  std::string name() const override { return "RecomputeBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    ENGINE_CHECK(function_, "RecomputeBackward: the function was released (a second backward through it?)");
    // Rerun from the first forward's generator states, then give the generators back their present ones.
    const std::vector<GeneratorState> now = states_of(replayed_);
    restore(replayed_, states_);
    std::vector<Tensor> outputs;
    uint64_t first = 0, end = 0;
    {
      const EnableGradGuard grad;
      first = next_sequence_nr();
      outputs = function_();
      end = next_sequence_nr();
    }
    restore(replayed_, now);
    const std::vector<size_t> recorded = made_inside(outputs, first, end);
    ENGINE_CHECK(recorded == recorded_outputs_, "RecomputeBackward: the recomputed function's outputs that need a ",
                 "gradient differ from the first forward's: it must compute the same thing both times");
    std::vector<Tensor> roots;
    for (size_t i : recorded) roots.push_back(outputs[i]);
    return run_backward_within(roots, grads, first, end, next_edges);
  }
  void release_saved() override { function_ = nullptr; }

 private:
  std::function<std::vector<Tensor>()> function_;  // holds the captured inputs until the backward has run
  std::vector<Generator*> replayed_;
  std::vector<GeneratorState> states_;  // the generators' states before the first forward
  std::vector<size_t> recorded_outputs_;
};

}  // namespace

std::vector<Tensor> recompute_in_backward(const std::function<std::vector<Tensor>()>& function,
                                          const std::vector<Generator*>& replayed) {
  if (!grad_mode_enabled()) return function();
  const std::vector<GeneratorState> states = states_of(replayed);
  const uint64_t first = next_sequence_nr();
  std::vector<Tensor> outputs = function();
  const uint64_t end = next_sequence_nr();
  const std::vector<size_t> recorded = made_inside(outputs, first, end);
  if (recorded.empty()) return outputs;  // nothing to differentiate through

  std::vector<Tensor> roots;
  for (size_t i : recorded) roots.push_back(outputs[i]);
  std::vector<Edge> exits = edges_leaving(roots, first, end);
  // Outputs detached from the function's graph, which goes when the last of its tensors does.
  std::vector<Tensor*> recorded_outputs;
  for (size_t i : recorded) {
    outputs[i] = outputs[i].detach();
    recorded_outputs.push_back(&outputs[i]);
  }
  auto node = std::make_shared<RecomputeBackward>(function, replayed, states, recorded);
  record(node, {}, recorded_outputs);
  node->next_edges = std::move(exits);
  return outputs;
}

}  // namespace engine
