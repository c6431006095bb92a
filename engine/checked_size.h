// Size arithmetic that cannot wrap: element counts, byte counts and file offsets. Every shape
// product (shape_numel), tensor allocation (Tensor::empty, the allocators) and file parser
// (safetensors, IDX, token files, images) computes its sizes with these, so a size from a config, a
// command line or a file header that would overflow is an error naming what was being sized instead
// of a wrapped small number that a later write runs past.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "engine/error.h"

namespace engine {

// The largest size any count or byte total may reach: sizes are int64 in shapes and offsets.
inline constexpr uint64_t kMaxSize = uint64_t(std::numeric_limits<int64_t>::max());

namespace detail {
[[noreturn]] inline void size_overflow(std::string_view what, uint64_t a, char op, uint64_t b) {
  throw Error(concat(what, ": size ", a, " ", op, " ", b, " overflows (more than 2^63 - 1): the size is corrupt or ",
                     "far too large"));
}
}  // namespace detail

// Sets *product = a * b and says whether it exceeds kMaxSize; for callers that build their own
// message (naming a shape, say) only when it does.
inline bool size_product_overflows(uint64_t a, uint64_t b, uint64_t* product) {
  return __builtin_mul_overflow(a, b, product) || *product > kMaxSize;
}

// a * b for two sizes (each >= 0); throws naming `what` when the product exceeds kMaxSize.
inline uint64_t checked_mul(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t product = 0;
  if (size_product_overflows(a, b, &product)) detail::size_overflow(what, a, '*', b);
  return product;
}

// a + b for two sizes; throws naming `what` when the sum exceeds kMaxSize.
inline uint64_t checked_add(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum) || sum > kMaxSize) detail::size_overflow(what, a, '+', b);
  return sum;
}

// An int64 size checked to be >= 0 (a negative one is corrupt), as uint64.
inline uint64_t checked_size(int64_t size, std::string_view what) {
  ENGINE_CHECK(size >= 0, what, ": size ", size, " is negative");
  return uint64_t(size);
}

// Bytes of `count` elements of `element_bytes` each.
inline size_t checked_bytes(int64_t count, size_t element_bytes, std::string_view what) {
  return size_t(checked_mul(checked_size(count, what), element_bytes, what));
}

}  // namespace engine
