// ModuleList: child modules in order, named by their index, as torch.nn.ModuleList. Registered in a
// parent under a name ("h"), it puts child i's tensors at "h.<i>.<name>" ("h.0.attn.c_attn.weight")
// in the parent's named_parameters(), state dicts and checkpoints, and train(), eval() and to_()
// reach every child.
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
class ModuleList : public Module {
  static_assert(std::is_base_of_v<Module, M>, "ModuleList holds modules");

 public:
  // Appends `child` as entry size() and returns it, so that a constructor can keep a typed pointer.
  template <typename Child>
  std::shared_ptr<Child> append(std::shared_ptr<Child> child) {
    static_assert(std::is_base_of_v<M, Child>, "ModuleList::append: the child must be of the list's module type");
    ENGINE_CHECK(child != nullptr, "ModuleList::append: entry ", entries_.size(), " is null");
    register_module(std::to_string(entries_.size()), child);
    entries_.push_back(child);
    return child;
  }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Entry i; the error names the index and the length.
  M& at(size_t i) const {
    ENGINE_CHECK(i < entries_.size(), "ModuleList: index ", i, " is out of range for ", entries_.size(), " entries");
    return *entries_[i];
  }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::vector<std::shared_ptr<M>> entries_;
};

}  // namespace engine
