// Element types a tensor can hold. Floating types carry values and gradients; integer types carry
// indices (token ids, labels, gather indices) and never require gradients.
//
// bf16 (engine/bfloat16.h) is a storage type: tensors of it are created, filled, copied, converted
// (Tensor::to(Dtype), differentiable), moved between devices, read and written in safetensors, and
// take part in gradient accumulation; the compute ops take f32 or f64 and refuse bf16 by name
// (ENGINE_DISPATCH_FLOAT and ENGINE_DISPATCH_ALL below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/bfloat16.h"

namespace engine {

enum class Dtype { f32, f64, i32, i64, bf16 };

inline size_t dtype_size(Dtype t) {
  switch (t) {
    case Dtype::bf16: return 2;
    case Dtype::f32: case Dtype::i32: return 4;
    case Dtype::f64: case Dtype::i64: return 8;
  }
  return 0;
}

inline const char* dtype_name(Dtype t) {
  switch (t) {
    case Dtype::f32: return "f32";
    case Dtype::f64: return "f64";
    case Dtype::i32: return "i32";
    case Dtype::i64: return "i64";
    case Dtype::bf16: return "bf16";
  }
  return "?";
}

inline bool is_floating(Dtype t) { return t == Dtype::f32 || t == Dtype::f64 || t == Dtype::bf16; }

// The message of a compute op handed a bf16 tensor: what it takes, and how to get there.
inline std::string bf16_refusal(const std::string& op) {
  return op + ": bf16 tensors are storage only here (this op computes in f32 or f64); convert with "
              ".to(Dtype::f32) first";
}

// Maps a C++ type to its Dtype at compile time: dtype_of<float>() == Dtype::f32.
template <typename T> constexpr Dtype dtype_of();
template <> constexpr Dtype dtype_of<float>() { return Dtype::f32; }
template <> constexpr Dtype dtype_of<double>() { return Dtype::f64; }
template <> constexpr Dtype dtype_of<int32_t>() { return Dtype::i32; }
template <> constexpr Dtype dtype_of<int64_t>() { return Dtype::i64; }
template <> constexpr Dtype dtype_of<bf16>() { return Dtype::bf16; }

}  // namespace engine

// The switch cases the dispatch macros share: each binds `scalar_t` and runs the body.
#define ENGINE_DTYPE_CASE(DTYPE_NAME, TYPE, ...) \
  case ::engine::Dtype::DTYPE_NAME: { using scalar_t = TYPE; return __VA_ARGS__(); }
#define ENGINE_DTYPE_CASES_FLOAT(...)       \
  ENGINE_DTYPE_CASE(f32, float, __VA_ARGS__) \
  ENGINE_DTYPE_CASE(f64, double, __VA_ARGS__)
#define ENGINE_DTYPE_CASES_COMPUTE(...)        \
  ENGINE_DTYPE_CASES_FLOAT(__VA_ARGS__)        \
  ENGINE_DTYPE_CASE(i32, int32_t, __VA_ARGS__) \
  ENGINE_DTYPE_CASE(i64, int64_t, __VA_ARGS__)

// Runs BODY with `scalar_t` bound to the C++ type of a floating Dtype; throws for other types.
// Usage: ENGINE_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] { kernel<scalar_t>(...); });
#define ENGINE_DISPATCH_FLOAT(DTYPE, OP_NAME, ...)                                            \
  [&] {                                                                                       \
    switch (DTYPE) {                                                                          \
      ENGINE_DTYPE_CASES_FLOAT(__VA_ARGS__)                                                   \
      case ::engine::Dtype::bf16: throw ::engine::Error(::engine::bf16_refusal(OP_NAME));      \
      default:                                                                                \
        throw ::engine::Error(std::string(OP_NAME) + ": expected a floating dtype (f32 or f64), got " + \
                              ::engine::dtype_name(DTYPE));                                   \
    }                                                                                         \
  }()

// As ENGINE_DISPATCH_FLOAT, with bf16 too (scalar_t = engine::bf16): for the primitives that move
// gradients (accumulation, the reduction of a broadcast), which read bf16 as f32 and round once.
#define ENGINE_DISPATCH_FLOAT_OR_BF16(DTYPE, OP_NAME, ...)                                    \
  [&] {                                                                                       \
    switch (DTYPE) {                                                                          \
      ENGINE_DTYPE_CASES_FLOAT(__VA_ARGS__)                                                   \
      ENGINE_DTYPE_CASE(bf16, ::engine::bf16, __VA_ARGS__)                                    \
      default:                                                                                \
        throw ::engine::Error(std::string(OP_NAME) + ": expected a floating dtype (f32, f64 or bf16), got " + \
                              ::engine::dtype_name(DTYPE));                                   \
    }                                                                                         \
  }()

// As ENGINE_DISPATCH_FLOAT, for index dtypes: binds `index_t` to int32_t or int64_t.
#define ENGINE_DISPATCH_INDEX(DTYPE, OP_NAME, ...)                                            \
  [&] {                                                                                       \
    switch (DTYPE) {                                                                          \
      case ::engine::Dtype::i32: { using index_t = int32_t; return __VA_ARGS__(); }           \
      case ::engine::Dtype::i64: { using index_t = int64_t; return __VA_ARGS__(); }           \
      default:                                                                                \
        throw ::engine::Error(std::string(OP_NAME) + ": expected an index dtype (i32 or i64), got " + \
                              ::engine::dtype_name(DTYPE));                                   \
    }                                                                                         \
  }()

// Any compute dtype: binds `scalar_t` to float, double, int32_t or int64_t; refuses bf16.
#define ENGINE_DISPATCH_ALL(DTYPE, OP_NAME, ...)                                              \
  [&] {                                                                                       \
    switch (DTYPE) {                                                                          \
      ENGINE_DTYPE_CASES_COMPUTE(__VA_ARGS__)                                                 \
      case ::engine::Dtype::bf16: throw ::engine::Error(::engine::bf16_refusal(OP_NAME));      \
    }                                                                                         \
    throw ::engine::Error(std::string(OP_NAME) + ": unknown dtype");                          \
  }()

// Every dtype, bf16 included (scalar_t = engine::bf16): for the primitives that only store, move and
// convert values (fill, copy, random fill, host access).
#define ENGINE_DISPATCH_STORAGE(DTYPE, OP_NAME, ...)                                          \
  [&] {                                                                                       \
    switch (DTYPE) {                                                                          \
      ENGINE_DTYPE_CASES_COMPUTE(__VA_ARGS__)                                                 \
      ENGINE_DTYPE_CASE(bf16, ::engine::bf16, __VA_ARGS__)                                    \
    }                                                                                         \
    throw ::engine::Error(std::string(OP_NAME) + ": unknown dtype");                          \
  }()
