// Positions as SeqPE sees them: integer coordinates, one per dimension (1 for text, 2 for images).
//
// Legend: N = number of positions, n = dims (coordinates per position), S = side (per-coordinate
// extent of the training range).
//
// docs/method.md#position-tokens reads the single number PE_MAX_POSITION as the size of the training range: positions
// 0..PE_MAX_POSITION-1 in 1-D, and a square grid of side sqrt(PE_MAX_POSITION) in 2-D (10000 -> a
// 100 x 100 grid). PositionRange holds that reading once; the samplers index the range with a single
// row-major integer ("linear index"), which makes uniform draws, de-duplication and distances cheap,
// and turn the indices into coordinates only when they hand positions out as a PositionList.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tensor.h"

namespace seqpe {

// N positions of n integer coordinates each, stored row-major: coords[i * n + k] is coordinate k
// (row first, then column) of position i.
class PositionList {
 public:
  explicit PositionList(int64_t dims = 1);

  int64_t dims() const { return dims_; }
  int64_t size() const { return int64_t(coords_.size()) / dims_; }
  bool empty() const { return coords_.empty(); }
  void reserve(int64_t count) { coords_.reserve(size_t(count * dims_)); }

  void push_back(std::span<const int64_t> position);
  // Shorthands for 1-D and 2-D lists.
  void push_back(int64_t coordinate);
  void push_back(int64_t row, int64_t col);

  // The coordinates of position i, (n).
  std::span<const int64_t> operator[](int64_t i) const {
    return {coords_.data() + i * dims_, size_t(dims_)};
  }
  // All coordinates, (N * n) row-major.
  const std::vector<int64_t>& coords() const { return coords_; }
  // An i64 tensor of shape (N, n).
  engine::Tensor to_tensor() const;

  bool operator==(const PositionList& other) const = default;

 private:
  int64_t dims_;
  std::vector<int64_t> coords_;
};

// Squared Euclidean distance between two positions of the same dimensionality (docs/method.md#contrastive-sampler labels).
int64_t squared_distance(std::span<const int64_t> a, std::span<const int64_t> b);

// Block: a rectangle of positions, e.g. the main task's training block of L tokens ({L}) or of
// 14 x 14 patches ({14, 14}), placed with its first cell at `start`.
// Writes start + (the row-major index-th cell of a block of this shape) into `coords`.
void block_cell(std::span<const int64_t> start, const engine::Shape& block_shape, int64_t index, int64_t* coords);
// Appends every cell of the block to `list`, row-major (w fastest, as ViT flattens its patches).
void append_block(PositionList& list, std::span<const int64_t> start, const engine::Shape& block_shape);

// The per-coordinate extent S of an n-D range read from PE_MAX_POSITION (docs/method.md#grid-positions): the value itself
// for 1-D, its exact square root for 2-D (exact n-th root in general). Throws when the root is not
// an integer, since a silently floored grid would not match the tokenizer's digit count.
int64_t per_coordinate_extent(int64_t pe_max_position, int64_t dims);

// The training range of positions: [0, S)^n in row-major order, with S = per_coordinate_extent.
class PositionRange {
 public:
  PositionRange(int64_t dims, int64_t pe_max_position);

  int64_t dims() const { return dims_; }
  int64_t side() const { return side_; }
  // Number of positions in the range, S^n.
  int64_t count() const { return count_; }

  // Writes the n coordinates of the position with this row-major index into `coords`.
  void coordinates(int64_t index, int64_t* coords) const;
  // Appends the position with this row-major index to `list`.
  void append(PositionList& list, int64_t index) const;
  int64_t squared_distance(int64_t index_a, int64_t index_b) const;

 private:
  int64_t dims_;
  int64_t side_;
  int64_t count_;
};

}  // namespace seqpe
