// The autograd engine (engine/autograd.h): recording nodes, gradient accumulation into leaves, and
// the backward pass that runs nodes in reverse creation order.
#include "engine/autograd.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "engine/backend.h"

namespace engine {

namespace {

thread_local bool grad_mode = true;

// The part of the graph recorded in [first, end) that a windowed backward runs (no window: all).
// Leaf accumulators (sequence number max) are never inside one.
struct Window {
  uint64_t first = 0, end = std::numeric_limits<uint64_t>::max();
  bool contains(const Node* node) const { return node->sequence_nr >= first && node->sequence_nr < end; }
};
std::atomic<uint64_t> next_sequence_nr_counter{0};

// The state of the backward pass running on this thread that leaf_grad_destination reads: the node
// being applied, the pass's pending gradients and dependency counts, the destinations handed to the
// running node (input, the .grad handed out, and whether it was allocated for it), and the leaf
// accumulators whose gradient a node has already added in place in this pass (kept with the pass,
// so that a pass that throws leaves nothing behind for the next one).
struct BackwardPass {
  struct HandedOut {
    size_t input = 0;
    std::shared_ptr<TensorImpl> leaf;
    std::shared_ptr<TensorImpl> grad;
    bool fresh = false;
  };
  const Node* running = nullptr;
  const std::unordered_map<Node*, std::vector<Tensor>>* pending = nullptr;
  const std::unordered_map<Node*, int>* dependencies = nullptr;
  std::vector<HandedOut> handed_out;
  std::unordered_set<const Node*> accumulated_in_place;
};

thread_local BackwardPass* current_pass = nullptr;

// The node that receives a leaf's gradient and adds it to the leaf's .grad. The first gradient is
// copied (it may alias another tensor); later ones are added in place, so gradients accumulate
// across backward passes until the optimizer zeroes them. When the node of the leaf's only use has
// already added into .grad itself in this pass (leaf_grad_destination), only the hooks run.
class AccumulateGrad final : public Node {
 public:
  // Runs as soon as its gradient is complete, before any other ready node (as in PyTorch): its
  // creation order would otherwise put every leaf last, and gradient-ready hooks would all fire at
  // the end of the backward.
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {
    sequence_nr = std::numeric_limits<uint64_t>::max();
  }
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    std::shared_ptr<TensorImpl> leaf = leaf_.lock();
    if (!leaf) return {};
    Tensor param(leaf);
    const bool in_place = current_pass != nullptr && current_pass->accumulated_in_place.contains(this);
    if (!in_place && grads[0].defined()) accumulate(*leaf, param, grads[0]);
    // A hook may remove itself or others: iterate over a copy.
    const std::vector<std::pair<int64_t, GradReadyHook>> hooks = hooks_;
    for (const auto& [id, hook] : hooks) hook(param);
    return {};
  }

  int64_t add_hook(GradReadyHook hook) {
    hooks_.emplace_back(next_hook_id_, std::move(hook));
    return next_hook_id_++;
  }
  void remove_hook(int64_t id) {
    std::erase_if(hooks_, [id](const auto& entry) { return entry.first == id; });
  }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  static void accumulate(TensorImpl& leaf, const Tensor& param, const Tensor& grad) {
    ENGINE_CHECK(grad.shape() == param.shape(), "AccumulateGrad: gradient ", grad.describe(),
                 " does not match parameter ", param.describe());
    if (!leaf.grad) {
      Tensor stored = Tensor::empty(param.shape(), param.dtype(), param.device());
      backend_for(param.device().type).copy(stored, grad);
      leaf.grad = stored.impl_shared();
    } else {
      backend_for(param.device().type).add_into(Tensor(leaf.grad), grad);
    }
  }

  std::weak_ptr<TensorImpl> leaf_;
  std::vector<std::pair<int64_t, GradReadyHook>> hooks_;
  int64_t next_hook_id_ = 0;
};


// Makes `pass` this thread's current backward pass for its lifetime (a backward run inside a node's
// apply() gets its own and restores the outer one).
class CurrentPassScope {
 public:
  explicit CurrentPassScope(BackwardPass& pass) : previous_(current_pass) { current_pass = &pass; }
  ~CurrentPassScope() { current_pass = previous_; }
  CurrentPassScope(const CurrentPassScope&) = delete;
  CurrentPassScope& operator=(const CurrentPassScope&) = delete;

 private:
  BackwardPass* previous_;
};

// Runs `node` as the pass's running node and returns its input gradients, with those it accumulated
// in place into a leaf's .grad taken out (undefined), their accumulators told so. A node that took
// a destination must return it; if apply() throws, a .grad allocated for it is dropped again (it
// holds garbage).
std::vector<Tensor> apply_node(BackwardPass& pass, Node& node, std::vector<Tensor>& grads) {
  pass.running = &node;
  pass.handed_out.clear();
  std::vector<Tensor> input_grads;
  try {
    input_grads = node.apply(grads);
    pass.running = nullptr;
    for (const BackwardPass::HandedOut& given : pass.handed_out)
      ENGINE_CHECK(given.input < input_grads.size() && input_grads[given.input].impl_ptr() == given.grad.get(),
                   node.name(), ": took the gradient of leaf input ", given.input,
                   " to accumulate in place (leaf_grad_destination) but did not return it");
  } catch (...) {
    for (const BackwardPass::HandedOut& given : pass.handed_out)
      if (given.fresh) given.leaf->grad.reset();
    pass.running = nullptr;
    throw;
  }
  for (const BackwardPass::HandedOut& given : pass.handed_out) {
    input_grads[given.input] = Tensor();
    pass.accumulated_in_place.insert(node.next_edges[given.input].node.get());
  }
  return input_grads;
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  TensorImpl* impl = leaf.impl_ptr();
  if (!impl->grad_accumulator) impl->grad_accumulator = std::make_shared<AccumulateGrad>(leaf.impl_shared());
  return impl->grad_accumulator;
}

AccumulateGrad& leaf_accumulator(const char* what, const Tensor& leaf) {
  ENGINE_CHECK(leaf.defined() && leaf.is_leaf() && leaf.requires_grad(), what,
               ": expected a leaf tensor that requires grad, got ", leaf.defined() ? leaf.describe() : "undefined");
  return static_cast<AccumulateGrad&>(*grad_accumulator(leaf));
}

// Adds `grad` into a pending gradient slot: the first one is kept as is, later ones are summed
// into a fresh tensor (never in place: the first may alias a tensor someone else holds).
void accumulate_pending(Tensor& slot, const Tensor& grad) {
  if (!slot.defined()) {
    slot = grad;
    return;
  }
  ENGINE_CHECK(slot.shape() == grad.shape(), "backward: gradient shapes disagree: ", slot.describe(), " vs ",
               grad.describe());
  Tensor sum = Tensor::empty(slot.shape(), slot.dtype(), slot.device());
  Backend& backend = backend_for(slot.device().type);
  backend.copy(sum, slot);
  backend.add_into(sum, grad);
  slot = sum;
}

}  // namespace

Node::Node() : sequence_nr(next_sequence_nr_counter++) {}

GradDestination leaf_grad_destination(const Node& node, size_t input) {
  BackwardPass* pass = current_pass;
  if (pass == nullptr || pass->running != &node || input >= node.next_edges.size()) return {};
  Node* const target = node.next_edges[input].node.get();
  auto* accumulator = dynamic_cast<AccumulateGrad*>(target);
  if (accumulator == nullptr) return {};  // no gradient wanted, or a non-leaf
  // The leaf's only use in this pass: no other edge still to run, nothing pending.
  const auto remaining = pass->dependencies->find(target);
  if (remaining == pass->dependencies->end() || remaining->second != 1) return {};
  const auto pending = pass->pending->find(target);
  if (pending != pass->pending->end() && !pending->second.empty() && pending->second[0].defined()) return {};
  std::shared_ptr<TensorImpl> leaf = accumulator->leaf();
  if (!leaf) return {};
  const Tensor param(leaf);
  if (leaf->grad) {
    const Tensor grad(leaf->grad);
    if (grad.shape() != param.shape() || grad.dtype() != param.dtype() || grad.device() != param.device() ||
        !grad.is_contiguous())
      return {};  // a .grad set by hand: the engine's add checks and handles it
    pass->handed_out.push_back({input, leaf, leaf->grad, false});
    return {grad, true};
  }
  const Tensor grad = Tensor::empty(param.shape(), param.dtype(), param.device());
  leaf->grad = grad.impl_shared();
  pass->handed_out.push_back({input, leaf, leaf->grad, true});
  return {grad, false};
}

bool grad_mode_enabled() { return grad_mode; }

int64_t add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook) {
  ENGINE_CHECK(hook, "add_grad_ready_hook: the hook is empty");
  return leaf_accumulator("add_grad_ready_hook", leaf).add_hook(std::move(hook));
}

void remove_grad_ready_hook(const Tensor& leaf, int64_t id) {
  leaf_accumulator("remove_grad_ready_hook", leaf).remove_hook(id);
}

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }
EnableGradGuard::EnableGradGuard() : previous_(grad_mode) { grad_mode = true; }
EnableGradGuard::~EnableGradGuard() { grad_mode = previous_; }

uint64_t next_sequence_nr() { return next_sequence_nr_counter.load(); }

std::vector<Edge> edges_leaving(const std::vector<Tensor>& roots, uint64_t first, uint64_t end) {
  const Window window{first, end};
  std::vector<Edge> exits;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> visited;
  auto add_exit = [&](const Edge& edge) {
    for (const Edge& known : exits)
      if (known.node == edge.node && known.input_nr == edge.input_nr) return;
    exits.push_back(edge);
  };
  for (const Tensor& root : roots) {
    if (!root.requires_grad()) continue;
    const Edge edge = root.is_leaf() ? Edge{grad_accumulator(root), 0} : Edge{root.grad_fn(), root.output_nr()};
    if (!window.contains(edge.node.get())) {
      add_exit(edge);
    } else if (!visited[edge.node.get()]) {
      visited[edge.node.get()] = true;
      stack.push_back(edge.node.get());
    }
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (const Edge& next : node->next_edges) {
        if (!next.node) continue;
        if (!window.contains(next.node.get())) {
          add_exit(next);
        } else if (!visited[next.node.get()]) {
          visited[next.node.get()] = true;
          stack.push_back(next.node.get());
        }
      }
    }
  }
  return exits;
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::shared_ptr<Node>& node, const std::vector<const Tensor*>& inputs,
            const std::vector<Tensor*>& outputs) {
  node->next_edges.clear();
  for (const Tensor* input : inputs) {
    if (!input->defined() || !input->requires_grad()) {
      node->next_edges.push_back(Edge{});
    } else if (input->is_leaf()) {
      node->next_edges.push_back(Edge{grad_accumulator(*input), 0});
    } else {
      node->next_edges.push_back(Edge{input->grad_fn(), input->output_nr()});
    }
  }
  node->output_meta.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* out = outputs[i]->impl_ptr();
    out->requires_grad = true;
    out->grad_fn = node;
    out->output_nr = int(i);
    node->output_meta.push_back(OutputMeta{outputs[i]->shape(), outputs[i]->dtype(), outputs[i]->device()});
  }
}

namespace {

// Where a windowed backward sends the gradients that leave its window: one slot per exit edge.
struct Exits {
  const std::vector<Edge>& edges;
  std::vector<Tensor> grads;

  void add(const Edge& edge, const Tensor& grad) {
    for (size_t i = 0; i < edges.size(); ++i)
      if (edges[i].node == edge.node && edges[i].input_nr == edge.input_nr) {
        accumulate_pending(grads[i], grad);
        return;
      }
    throw Error(detail::concat("backward: a gradient leaves the recomputed part of the graph towards ", edge.node->name(),
                 ", which the first forward did not reach: the recomputed function used a tensor that needs a ",
                 "gradient and that it did not use the first time (a module caching a tensor across calls?)"));
  }
};

// The backward pass of run_backward; with a window, only over the nodes inside it, the gradients
// that leave it going to `exits`.
void backward_pass(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds, const Window* window,
                   Exits* exits) {
  NoGradGuard no_grad;  // backward computations are not themselves recorded

  // Pending gradients per node (one slot per output), and how many edges still point at each node.
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  std::unordered_map<Node*, int> dependencies;
  BackwardPass pass{.running = nullptr, .pending = &pending, .dependencies = &dependencies, .handed_out = {},
                    .accumulated_in_place = {}};
  const CurrentPassScope pass_scope(pass);
  auto slots_of = [&](Node* node) -> std::vector<Tensor>& {
    auto& slots = pending[node];
    if (slots.empty()) slots.resize(std::max<size_t>(1, node->output_meta.size()));
    return slots;
  };

  std::vector<std::shared_ptr<Node>> stack;
  std::unordered_map<Node*, bool> visited;
  for (size_t r = 0; r < roots.size(); ++r) {
    std::shared_ptr<Node> node = roots[r].is_leaf() ? grad_accumulator(roots[r]) : roots[r].grad_fn();
    const int output_nr = roots[r].is_leaf() ? 0 : roots[r].output_nr();
    if (window && !window->contains(node.get())) {  // a root made outside the window: its seed leaves at once
      exits->add(Edge{node, output_nr}, seeds[r]);
      continue;
    }
    accumulate_pending(slots_of(node.get())[size_t(output_nr)], seeds[r]);
    if (!visited[node.get()]) {
      visited[node.get()] = true;
      stack.push_back(node);
    }
  }
  // Count incoming edges over the reachable graph.
  std::vector<std::shared_ptr<Node>> ready_roots = stack;
  while (!stack.empty()) {
    std::shared_ptr<Node> node = stack.back();
    stack.pop_back();
    for (const Edge& edge : node->next_edges) {
      if (!edge.node || (window && !window->contains(edge.node.get()))) continue;
      dependencies[edge.node.get()]++;
      if (!visited[edge.node.get()]) {
        visited[edge.node.get()] = true;
        stack.push_back(edge.node);
      }
    }
  }

  // Run nodes whose gradients are complete, latest-created first: a deterministic order that
  // frees activations in the reverse of the order the forward made them.
  auto later_first = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence_nr < b->sequence_nr;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(later_first)> ready(
      later_first);
  for (auto& node : ready_roots)
    if (dependencies[node.get()] == 0) ready.push(node);

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(slots_of(node.get()));
    pending.erase(node.get());
    for (size_t i = 0; i < node->output_meta.size(); ++i) {
      if (!grads[i].defined()) {
        const OutputMeta& meta = node->output_meta[i];
        grads[i] = Tensor::zeros(meta.shape, meta.dtype, meta.device);
      }
    }
    std::vector<Tensor> input_grads = apply_node(pass, *node, grads);
    node->release_saved();
    grads.clear();
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& edge = node->next_edges[i];
      if (!edge.node) continue;
      if (window && !window->contains(edge.node.get())) {
        if (i < input_grads.size() && input_grads[i].defined()) exits->add(edge, input_grads[i]);
        continue;
      }
      if (i < input_grads.size() && input_grads[i].defined())
        accumulate_pending(slots_of(edge.node.get())[size_t(edge.input_nr)], input_grads[i]);
      if (--dependencies[edge.node.get()] == 0) ready.push(edge.node);
    }
  }
}

}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds) {
  backward_pass(roots, seeds, nullptr, nullptr);
}

std::vector<Tensor> run_backward_within(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                                        uint64_t first, uint64_t end, const std::vector<Edge>& exits) {
  const Window window{first, end};
  Exits leaving{exits, std::vector<Tensor>(exits.size())};
  backward_pass(roots, seeds, &window, &leaving);
  return leaving.grads;
}

}  // namespace engine
