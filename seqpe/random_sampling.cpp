// Draws without replacement, shuffles and sampler-epoch orders from an engine::Generator
// (seqpe/random_sampling.h).
#include "seqpe/random_sampling.h"

#include <unordered_map>
#include <utility>

namespace seqpe {

std::vector<int64_t> sample_without_replacement(int64_t population, int64_t count, engine::Generator& gen) {
  ENGINE_CHECK(count >= 0 && count <= population, "sample_without_replacement: cannot draw ", count,
               " distinct items from a population of ", population);
  // swapped[i] holds the value at slot i of the virtual array when it is no longer i.
  std::unordered_map<int64_t, int64_t> swapped;
  auto value_at = [&swapped](int64_t slot) {
    auto it = swapped.find(slot);
    return it == swapped.end() ? slot : it->second;
  };
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + int64_t(gen.randint(uint64_t(population - i)));
    const int64_t picked = value_at(j);
    swapped[j] = value_at(i);
    out[size_t(i)] = picked;
  }
  return out;
}

void shuffle(std::vector<int64_t>& values, engine::Generator& gen) {
  for (size_t i = values.size(); i > 1; --i) {
    const size_t j = size_t(gen.randint(i));
    std::swap(values[i - 1], values[j]);
  }
}

std::vector<int64_t> epoch_order(int64_t pool_size, int64_t batches, int64_t batch_size, engine::Generator& gen) {
  ENGINE_CHECK(pool_size > 0 && batches > 0 && batch_size > 0, "epoch_order: pool_size (", pool_size,
               "), batches (", batches, ") and batch_size (", batch_size, ") must be positive");
  const int64_t needed = batches * batch_size;
  int64_t replicas = 1;
  int64_t remainder = 0;
  if (needed < pool_size) {
    remainder = (batch_size - pool_size % batch_size) % batch_size;
  } else {
    replicas = needed / pool_size;
    remainder = needed % pool_size;
  }
  std::vector<int64_t> order;
  order.reserve(size_t(replicas * pool_size + remainder));
  for (int64_t r = 0; r < replicas; ++r)
    for (int64_t i = 0; i < pool_size; ++i) order.push_back(i);
  for (int64_t i : sample_without_replacement(pool_size, remainder, gen)) order.push_back(i);
  shuffle(order, gen);
  return order;
}

}  // namespace seqpe
