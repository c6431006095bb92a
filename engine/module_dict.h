// ModuleDict: child modules under names of the caller's choosing, in insertion order, as
// torch.nn.ModuleDict. Registered in a parent under a name ("mlp"), it puts child "c_fc"'s tensors
// at "mlp.c_fc.<name>" in the parent's named_parameters(), state dicts and checkpoints, and train(),
// eval() and to_() reach every child.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/module.h"

namespace engine {

template <typename M = Module>
class ModuleDict : public Module {
  static_assert(std::is_base_of_v<Module, M>, "ModuleDict holds modules");

 public:
  // Adds `child` under `name` and returns it, so that a constructor can keep a typed pointer. A
  // name is one path component: not empty, no '.', not taken.
  template <typename Child>
  std::shared_ptr<Child> insert(const std::string& name, std::shared_ptr<Child> child) {
    static_assert(std::is_base_of_v<M, Child>, "ModuleDict::insert: the child must be of the dict's module type");
    ENGINE_CHECK(!name.empty() && name.find('.') == std::string::npos, "ModuleDict::insert: name '", name,
                 "' must be non-empty and contain no '.'");
    ENGINE_CHECK(!contains(name), "ModuleDict::insert: name '", name, "' is already taken");
    ENGINE_CHECK(child != nullptr, "ModuleDict::insert: child '", name, "' is null");
    register_module(name, child);
    entries_.emplace_back(name, child);
    return child;
  }

  size_t size() const { return entries_.size(); }
  bool contains(const std::string& name) const {
    for (const auto& entry : entries_)
      if (entry.first == name) return true;
    return false;
  }
  // The child under `name`; the error names it and the names there are.
  M& at(const std::string& name) const {
    for (const auto& [entry_name, child] : entries_)
      if (entry_name == name) return *child;
    std::string names;
    for (const auto& entry : entries_) names += (names.empty() ? "" : ", ") + entry.first;
    throw Error("ModuleDict: no child named '" + name + "' (it holds: " + names + ")");
  }
  // (name, child) pairs in insertion order.
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::vector<std::pair<std::string, std::shared_ptr<M>>> entries_;
};

}  // namespace engine
