// Random number generation: a Generator is a (seed, offset) pair over Philox streams (philox.h).
// Each draw reserves a range of counter blocks, so its numbers are fixed by the generator's state
// before the draw, whatever device computes them. Saving (seed, offset) in a checkpoint is enough to
// resume the exact same random sequence.
#pragma once

#include <cstdint>

#include "engine/philox.h"
#include "engine/tensor.h"

namespace engine {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves `blocks` counter blocks and returns the first one.
  uint64_t reserve(uint64_t blocks) {
    uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

  // Scalar draws for host-side samplers (data order, position samplers): each consumes one block.
  double uniform();                  // (0, 1)
  uint64_t randint(uint64_t bound);  // [0, bound)
  double normal();

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// Fills `dst` in place from the generator, reserving the blocks the draw needs. Not recorded by
// autograd: used for initialisation and for dropout masks.
void fill_random_(const Tensor& dst, Generator& gen, const RandomSpec& spec);

}  // namespace engine
