// Position lists, squared distances and blocks of positions (seqpe/position.h).
#include "seqpe/position.h"

#include <array>

namespace seqpe {

// Positions of more dimensions than this are not used by SeqPE; the bound lets coordinates of one
// position live on the stack.
constexpr int64_t kMaxDims = 8;

PositionList::PositionList(int64_t dims) : dims_(dims) {
  ENGINE_CHECK(dims >= 1 && dims <= kMaxDims, "PositionList: dims must be in [1, ", kMaxDims, "], got ", dims);
}

void PositionList::push_back(std::span<const int64_t> position) {
  ENGINE_CHECK(int64_t(position.size()) == dims_, "PositionList::push_back: a position of ", position.size(),
               " coordinates given to a list of ", dims_, "-D positions");
  coords_.insert(coords_.end(), position.begin(), position.end());
}

void PositionList::push_back(int64_t coordinate) {
  ENGINE_CHECK(dims_ == 1, "PositionList::push_back: one coordinate given to a list of ", dims_, "-D positions");
  coords_.push_back(coordinate);
}

void PositionList::push_back(int64_t row, int64_t col) {
  ENGINE_CHECK(dims_ == 2, "PositionList::push_back: two coordinates given to a list of ", dims_, "-D positions");
  coords_.push_back(row);
  coords_.push_back(col);
}

engine::Tensor PositionList::to_tensor() const {
  return engine::Tensor::from_indices(coords_, {size(), dims_});
}

int64_t squared_distance(std::span<const int64_t> a, std::span<const int64_t> b) {
  ENGINE_CHECK(a.size() == b.size(), "squared_distance: positions of ", a.size(), " and ", b.size(), " coordinates");
  int64_t sum = 0;
  for (size_t k = 0; k < a.size(); ++k) sum += (a[k] - b[k]) * (a[k] - b[k]);
  return sum;
}

void block_cell(std::span<const int64_t> start, const engine::Shape& block_shape, int64_t index, int64_t* coords) {
  for (int64_t k = int64_t(block_shape.size()) - 1; k >= 0; --k) {
    coords[k] = start[size_t(k)] + index % block_shape[size_t(k)];
    index /= block_shape[size_t(k)];
  }
}

void append_block(PositionList& list, std::span<const int64_t> start, const engine::Shape& block_shape) {
  ENGINE_CHECK(int64_t(start.size()) == list.dims() && int64_t(block_shape.size()) == list.dims(),
               "append_block: start of ", start.size(), " and block of ", block_shape.size(),
               " dimensions for a list of ", list.dims(), "-D positions");
  const int64_t cells = engine::shape_numel(block_shape);
  std::array<int64_t, kMaxDims> coords{};
  for (int64_t i = 0; i < cells; ++i) {
    block_cell(start, block_shape, i, coords.data());
    list.push_back(std::span<const int64_t>(coords.data(), start.size()));
  }
}

int64_t per_coordinate_extent(int64_t pe_max_position, int64_t dims) {
  ENGINE_CHECK(dims >= 1 && dims <= kMaxDims, "per_coordinate_extent: dims must be in [1, ", kMaxDims, "], got ", dims);
  ENGINE_CHECK(pe_max_position >= 1, "per_coordinate_extent: pe_max_position must be positive, got ", pe_max_position);
  // Smallest side with side^dims >= pe_max_position; the loop runs at most pe_max_position^(1/dims) times.
  int64_t side = 1;
  auto power = [dims](int64_t s) {
    int64_t p = 1;
    for (int64_t k = 0; k < dims; ++k) p *= s;
    return p;
  };
  while (power(side) < pe_max_position) ++side;
  ENGINE_CHECK(power(side) == pe_max_position, "pe_max_position ", pe_max_position, " is not S^", dims,
               " for an integer S, so it cannot be read as a ", dims, "-D grid (10000, for example, is read as 100 x 100)");
  return side;
}

PositionRange::PositionRange(int64_t dims, int64_t pe_max_position)
    : dims_(dims), side_(per_coordinate_extent(pe_max_position, dims)), count_(pe_max_position) {}

void PositionRange::coordinates(int64_t index, int64_t* coords) const {
  for (int64_t k = dims_ - 1; k >= 0; --k) {
    coords[k] = index % side_;
    index /= side_;
  }
}

void PositionRange::append(PositionList& list, int64_t index) const {
  std::array<int64_t, kMaxDims> coords{};
  coordinates(index, coords.data());
  list.push_back(std::span<const int64_t>(coords.data(), size_t(dims_)));
}

int64_t PositionRange::squared_distance(int64_t index_a, int64_t index_b) const {
  std::array<int64_t, kMaxDims> a{}, b{};
  coordinates(index_a, a.data());
  coordinates(index_b, b.data());
  return seqpe::squared_distance(std::span<const int64_t>(a.data(), size_t(dims_)),
                                 std::span<const int64_t>(b.data(), size_t(dims_)));
}

}  // namespace seqpe
