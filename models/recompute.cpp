// The activation-recompute setting (models/recompute.h).
#include "models/recompute.h"

#include <atomic>

#include "engine/error.h"

namespace models {

namespace {

std::atomic<Recompute> current{Recompute::none};

}  // namespace

Recompute activation_recompute() { return current.load(std::memory_order_relaxed); }

void set_activation_recompute(Recompute recompute) { current.store(recompute, std::memory_order_relaxed); }

Recompute parse_recompute(const std::string& text, const std::string& option) {
  if (text == "none") return Recompute::none;
  if (text == "gelu") return Recompute::gelu;
  if (text == "block") return Recompute::block;
  throw engine::Error(engine::detail::concat(option, " ", text, ": expected none, gelu or block"));
}

const char* recompute_name(Recompute recompute) {
  switch (recompute) {
    case Recompute::gelu:
      return "gelu";
    case Recompute::block:
      return "block";
    case Recompute::none:
      break;
  }
  return "none";
}

}  // namespace models
