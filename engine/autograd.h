// Define-by-run reverse-mode autograd.
//
// Each differentiable op that runs while grad mode is on records one Node: a hand-written backward
// that maps the gradients of the op's outputs to the gradients of its inputs, plus whatever the
// backward needs (saved tensors). Nodes are coarse (a fused layernorm or attention is one node).
// backward() orders the reachable nodes, runs each once in reverse creation order, accumulates
// input gradients, and drops each node's saved tensors right after it has run.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

// Where the gradient of one input goes: input `input_nr` of `node` (null when the input needs none).
struct Edge {
  std::shared_ptr<Node> node;
  int input_nr = 0;
};

// Enough to materialise a zero gradient for an output nobody used.
struct OutputMeta {
  Shape shape;
  Dtype dtype;
  Device device;
};

class Node {
 public:
  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grad_outputs[i] is the gradient of output i (never undefined: unused outputs get zeros).
  // Returns one gradient per input, in the order the inputs were given to record(); an undefined
  // tensor for an input that gets no gradient (an index, or one not requiring grad).
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grad_outputs) = 0;
  // Drops saved tensors once the backward has run (called by the engine).
  virtual void release_saved() {}

  std::vector<Edge> next_edges;          // one per input
  std::vector<OutputMeta> output_meta;   // one per output
  uint64_t sequence_nr;                  // creation order; later nodes run first (leaf accumulators: max)
};

// True when grad mode is on and any of the tensors requires grad: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Connects a freshly built node: edges to the inputs' producers (or their leaf accumulators), and
// each output's grad_fn/output_nr/requires_grad. Inputs that do not require grad get null edges.
void record(const std::shared_ptr<Node>& node, const std::vector<const Tensor*>& inputs,
            const std::vector<Tensor*>& outputs);

// Runs the backward pass from `roots` with the given seed gradients (same shapes).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds);

// The sequence number the next node will get: nodes recorded between two reads of it form a window
// [first, end) of the graph (activation recompute, engine/recompute.h).
uint64_t next_sequence_nr();

// The edges by which the part of the graph recorded in the window [first, end) and reachable from
// `roots` (through their grad_fn) leaves it: to nodes recorded before or after, or to leaf
// accumulators. Each edge once, in a fixed order (depth first from the roots, in edge order).
std::vector<Edge> edges_leaving(const std::vector<Tensor>& roots, uint64_t first, uint64_t end);

// A backward pass over the window [first, end) only: from `roots` with `seeds`, as run_backward, but
// the gradient that would flow along an edge out of the window is summed into the slot of that edge
// in `exits` (as edges_leaving lists them) and returned, one per exit (undefined when none came).
// A gradient leaving along an edge not in `exits` is an error.
std::vector<Tensor> run_backward_within(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                                        uint64_t first, uint64_t end, const std::vector<Edge>& exits);

// Gradient-ready hooks (for data parallelism: start communicating a gradient while the rest of the
// backward runs). `hook(leaf)` runs inside run_backward right after this pass's gradient of `leaf`
// has been added into leaf.grad(): once per backward pass that reaches the leaf, after all of the
// leaf's uses have contributed (a leaf used several times, like tied embeddings, has one
// accumulator that runs when the last use's gradient has arrived), so leaf.grad() is final for the
// pass (still undefined when no gradient has ever reached it). A leaf the pass does not reach gets
// no call. Returns an id for remove_grad_ready_hook.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
int64_t add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook);
void remove_grad_ready_hook(const Tensor& leaf, int64_t id);

// In-place accumulation of a leaf's gradient by the backward node that computes it (llm.c's and
// PyTorch's fused paths: the weight-gradient GEMM adds into .grad with beta = 1, instead of writing
// a fresh tensor that the engine then adds). Called from a node's apply() for its input `input`:
// when the destination is defined, the node writes its gradient into `grad` (accumulate false: the
// first backward since zero_grad, .grad did not exist and the engine has just allocated it) or adds
// it (accumulate true: later backwards, e.g. micro-batch accumulation), and returns that same
// tensor as the input's gradient; the engine checks that it did, adds nothing more, and runs the
// leaf's gradient-ready hooks as usual. The engine stays the owner of the semantics: it hands out a
// destination only when this edge is the leaf's only use in the pass, so no other gradient of it
// is pending or still to come. Otherwise (outside a backward, an input that needs no gradient,
// a non-leaf, a leaf used more than once such as tied embeddings, or a .grad of another shape, dtype,
// device or layout) the destination is undefined, and the node returns a fresh gradient that the
// engine adds as before.
struct GradDestination {
  Tensor grad;              // the leaf's .grad (the input's shape, contiguous), or undefined
  bool accumulate = false;  // add into grad (beta = 1); false: overwrite it (beta = 0)
};
GradDestination leaf_grad_destination(const Node& node, size_t input);

// Gradient recording is on by default and per thread.
bool grad_mode_enabled();

// Disables recording in a scope (evaluation, optimizer steps, initialisation).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Enables recording in a scope, whatever the mode outside (a forward rerun inside a backward).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace engine
