// Host draws of a Generator (engine/rng.h): uniform, bounded integers and normals from its Philox
// stream.
#include "engine/rng.h"

namespace engine {

double Generator::uniform() {
  const uint64_t block = reserve(1);
  return philox_to_unit(philox4x32_10(block, seed_).v[0]);
}

uint64_t Generator::randint(uint64_t bound) {
  ENGINE_CHECK(bound > 0, "Generator::randint: bound must be positive");
  const PhiloxBlock block = philox4x32_10(reserve(1), seed_);
  // 64 random bits; the modulo bias is below 2^-32 for any bound < 2^32.
  const uint64_t bits = (uint64_t(block.v[0]) << 32) | block.v[1];
  return bits % bound;
}

double Generator::normal() {
  const uint64_t block = reserve(1);
  return philox_normal(seed_, block, 0);
}

}  // namespace engine
