// Positions of the main task (language modelling, classification) with "random shift", docs/method.md#random-shift.
//
// Legend: P = blocks of a step, L = cells of the training block (512 tokens or 14 x 14 patches),
// n = dims.
//
// Most steps feed SeqPE the training block itself: positions 0..L-1, or the grid (0..13) x (0..13).
// With probability shift_rate a step instead uses P shifted copies of the block, [s, s+L) or
// (i..i+13) x (j..j+13), and the batch is tiled over them (sequence b uses block b mod P, docs/method.md#blocks-and-the-batch),
// so the main loss also trains PEs of positions outside the training block.
//
// The shifted blocks come from a fixed list drawn once at construction: every start
// (s in [0, PE_MAX_POSITION - L], or (i, j) in [0, S - h] x [0, S - w]) shuffled, and only the
// first shift_downsample kept (320 for the LM and ViT, 160 for QA). A shifted step takes P
// consecutive entries of that list from a cycling pointer; when the pointer runs off the end it
// restarts at a random offset in [0, restart_offset_range).
#pragma once

#include <cstdint>

#include "engine/rng.h"
#include "engine/shape.h"
#include "seqpe/position.h"

namespace seqpe {

struct MainPositionSamplerConfig {
  int64_t dims = 1;
  int64_t pe_max_position = 20000;
  engine::Shape block_shape = {512};  // {L} or {h, w}
  bool use_random_shift = true;
  double shift_rate = 0.1;                // probability that a step is shifted
  int64_t shift_downsample = 320;         // starts kept from the shuffled list; <= 0 keeps all
  int64_t blocks_per_shifted_step = 16;   // P
  int64_t restart_offset_range = 32;      // the pointer restarts in [0, this)

  // GPT-2 LM: L 512, rate 0.1, 320 starts, P 16 (QA: block_shape {1024}, shift_downsample 160).
  static MainPositionSamplerConfig text_defaults();
  // ViT-S/16: 2-D 100 x 100 grid, 14 x 14 block, rate 0.1, 320 starts, P 32.
  static MainPositionSamplerConfig image_defaults();
};

struct MainPositions {
  PositionList positions;     // (P * L) block-major: the L cells of block 0 first
  PositionList block_starts;  // (P) the first cell of each block; the origin on unshifted steps
  bool shifted = false;
  int64_t num_blocks() const { return block_starts.size(); }
};

class MainPositionSampler {
 public:
  MainPositionSampler(const MainPositionSamplerConfig& config, uint64_t seed);

  // The positions of the next step.
  MainPositions next();
  // The unshifted training block (P = 1), e.g. for evaluation at the training length.
  const MainPositions& default_positions() const { return default_; }

  const MainPositionSamplerConfig& config() const { return config_; }
  // The fixed list of candidate starts, in the order the pointer walks it.
  const PositionList& shift_starts() const { return shift_starts_; }

 private:
  MainPositionSamplerConfig config_;
  engine::Generator gen_;
  MainPositions default_;
  PositionList shift_starts_;
  int64_t pointer_ = 0;
};

}  // namespace seqpe
