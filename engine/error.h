// Errors thrown to users. Messages name the op, tensor, file or field at fault and, where it helps,
// what to do about it. ENGINE_CHECK throws its message as it is, so the message itself must say
// what failed; ENGINE_ASSERT, for broken internal invariants (a bug in the engine), adds the
// source file and line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace engine {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace engine

// Throws engine::Error with the streamed message parts when COND is false.
// Usage: ENGINE_CHECK(a.dim() == 2, "matmul: a must be 2-D, got shape ", a.shape_string());
#define ENGINE_CHECK(COND, ...)                                                                  \
  do {                                                                                           \
    if (!(COND)) throw ::engine::Error(::engine::detail::concat(__VA_ARGS__));                   \
  } while (0)

// For broken internal invariants (a bug in the engine, not in user input): names file and line.
#define ENGINE_ASSERT(COND)                                                                      \
  do {                                                                                           \
    if (!(COND))                                                                                 \
      throw ::engine::Error(::engine::detail::concat("internal error at ", __FILE__, ":", __LINE__, \
                                                     ": ", #COND));                              \
  } while (0)
