// Activation recompute (gradient checkpointing, torch.utils.checkpoint): a function whose
// intermediate activations are not kept for the backward but computed again inside it.
//
//   y = recompute_in_backward([&] { return std::vector<Tensor>{block.forward(x, gen)}; }, {&gen})[0];
//
// The forward runs as usual, graph and all, so it is the very computation it would be without
// recompute; the graph is then cut off and dropped, and one node takes its place, holding only what
// the function captured (its inputs). When the backward reaches that node, the function runs again
// with a graph, from the same states of `replayed` generators (dropout draws the same Philox masks),
// and a backward over the part of the graph the rerun recorded carries the gradients to everything
// the function read that needs one: captured inputs, parameters, tensors of other modules. The same
// ops on the same inputs give the same bits, so gradients equal those without recompute exactly.
//
// The function must compute the same thing both times: read the same tensors, draw only from the
// generators in `replayed`, and change no state it reads (a module that caches a tensor made on the
// first call is refused in the backward with an error saying so). It must capture by value what it
// reads (it runs again after its caller has returned). Peak memory: the captured inputs per call,
// plus one call's activations while it runs, forward or backward.
//
// Unlike torch.utils.checkpoint, the first forward runs with a graph (dropped as soon as it
// returns): some ops take another path without one (SeqPE's attn_scalar widens q and k under no
// grad), which would make the rerun's values differ, and the graph names what the function read
// that needs a gradient, so that nothing has to be passed explicitly.
#pragma once

#include <functional>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace engine {

// The outputs of `function`, with its activations recomputed in the backward. Without grad mode it
// is just function().
std::vector<Tensor> recompute_in_backward(const std::function<std::vector<Tensor>()>& function,
                                          const std::vector<Generator*>& replayed = {});

}  // namespace engine
