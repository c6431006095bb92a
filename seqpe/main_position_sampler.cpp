// The main-task position sampler with random shift (seqpe/main_position_sampler.h).
#include "seqpe/main_position_sampler.h"

#include <algorithm>
#include <vector>

#include "seqpe/random_sampling.h"

namespace seqpe {

namespace {

void check_config(const MainPositionSamplerConfig& c) {
  ENGINE_CHECK(c.dims == 1 || c.dims == 2, "MainPositionSamplerConfig: dims must be 1 or 2, got ", c.dims);
  ENGINE_CHECK(int64_t(c.block_shape.size()) == c.dims, "MainPositionSamplerConfig: block_shape ",
               engine::shape_str(c.block_shape), " does not have dims = ", c.dims, " entries");
  const int64_t side = per_coordinate_extent(c.pe_max_position, c.dims);
  for (int64_t extent : c.block_shape)
    ENGINE_CHECK(extent >= 1 && extent <= side, "MainPositionSamplerConfig: block_shape ",
                 engine::shape_str(c.block_shape), " does not fit in the range of pe_max_position ",
                 c.pe_max_position, " (", side, " per coordinate)");
  ENGINE_CHECK(c.shift_rate >= 0.0 && c.shift_rate <= 1.0, "MainPositionSamplerConfig: shift_rate must lie in [0, 1], got ",
               c.shift_rate);
  ENGINE_CHECK(c.blocks_per_shifted_step >= 1, "MainPositionSamplerConfig: blocks_per_shifted_step must be positive, got ",
               c.blocks_per_shifted_step);
  ENGINE_CHECK(c.restart_offset_range >= 1, "MainPositionSamplerConfig: restart_offset_range must be positive, got ",
               c.restart_offset_range);
}

}  // namespace

MainPositionSamplerConfig MainPositionSamplerConfig::text_defaults() { return MainPositionSamplerConfig{}; }

MainPositionSamplerConfig MainPositionSamplerConfig::image_defaults() {
  MainPositionSamplerConfig c;
  c.dims = 2;
  c.pe_max_position = 10000;
  c.block_shape = {14, 14};
  c.blocks_per_shifted_step = 32;
  return c;
}

MainPositionSampler::MainPositionSampler(const MainPositionSamplerConfig& config, uint64_t seed)
    : config_((check_config(config), config)),
      gen_(seed),
      default_{PositionList(config.dims), PositionList(config.dims), false},
      shift_starts_(config.dims) {
  const std::vector<int64_t> origin(size_t(config.dims), 0);
  append_block(default_.positions, origin, config.block_shape);
  default_.block_starts.push_back(origin);

  if (config.use_random_shift) {
    // Starts form a grid of (S - extent + 1) per coordinate; shuffle it once and keep a prefix.
    const int64_t side = per_coordinate_extent(config.pe_max_position, config.dims);
    engine::Shape start_grid;
    for (int64_t extent : config.block_shape) start_grid.push_back(side - extent + 1);
    const int64_t total = engine::shape_numel(start_grid);
    const int64_t kept = config.shift_downsample > 0 ? std::min(config.shift_downsample, total) : total;
    ENGINE_CHECK(kept >= config.blocks_per_shifted_step, "MainPositionSamplerConfig: ", kept,
                 " shift starts cannot serve blocks_per_shifted_step = ", config.blocks_per_shifted_step);
    const std::vector<int64_t> zero(size_t(config.dims), 0);
    std::vector<int64_t> start(size_t(config.dims));
    for (int64_t index : sample_without_replacement(total, kept, gen_)) {
      block_cell(zero, start_grid, index, start.data());
      shift_starts_.push_back(start);
    }
  }
  pointer_ = int64_t(gen_.randint(uint64_t(config.restart_offset_range)));
}

MainPositions MainPositionSampler::next() {
  const int64_t count = shift_starts_.size();
  if (pointer_ >= count) pointer_ = int64_t(gen_.randint(uint64_t(config_.restart_offset_range)));
  const bool shifted = config_.use_random_shift && gen_.uniform() < config_.shift_rate;
  if (!shifted) return default_;

  const int64_t blocks = config_.blocks_per_shifted_step;
  const int64_t first = std::min(count - blocks, pointer_);
  pointer_ += blocks;
  MainPositions out{PositionList(config_.dims), PositionList(config_.dims), true};
  out.positions.reserve(blocks * engine::shape_numel(config_.block_shape));
  for (int64_t b = first; b < first + blocks; ++b) {
    append_block(out.positions, shift_starts_[b], config_.block_shape);
    out.block_starts.push_back(shift_starts_[b]);
  }
  return out;
}

}  // namespace seqpe
