// Random draws shared by the SeqPE samplers, all taken from an engine::Generator so that a sampler's
// output is fixed by its seed.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/rng.h"

namespace seqpe {

// `count` distinct integers from [0, population), in uniformly random order (Python's
// random.sample(range(population), count)). A partial Fisher-Yates shuffle over a virtual identity
// array: O(count) time and memory whatever the population.
std::vector<int64_t> sample_without_replacement(int64_t population, int64_t count, engine::Generator& gen);

// Shuffles `values` uniformly in place (Fisher-Yates).
void shuffle(std::vector<int64_t>& values, engine::Generator& gen);

// The order of one sampler-epoch over a pool of `pool_size` items (docs/method.md#contrastive-sampler, docs/method.md#distillation-sampler): every item once,
// repeated whole as many times as `batches * batch_size` allows, topped up with distinct random
// items to exactly batches * batch_size, then shuffled. When the pool is larger than one
// epoch's needs, the pool is padded up to a multiple of batch_size instead and only the first
// `batches` batches are used: a fresh permutation each epoch.
std::vector<int64_t> epoch_order(int64_t pool_size, int64_t batches, int64_t batch_size, engine::Generator& gen);

}  // namespace seqpe
