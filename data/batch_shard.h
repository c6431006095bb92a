// Which rows of every global batch a loader returns when several data-parallel ranks share it:
// shard `index` of `count` takes rows [index * B/count, (index + 1) * B/count) of each batch of B
// rows, so the ranks' shards are disjoint and together are the batch one process would read
// (global batch = per-rank batch x world size). Every rank walks the same shuffled order.
#pragma once

#include <cstdint>

#include "engine/error.h"

namespace data {

struct BatchShard {
  int64_t index = 0;
  int64_t count = 1;

  // Rows per shard of a global batch of `batch` rows; `what` names the loader in errors.
  int64_t rows(int64_t batch, const char* what) const {
    ENGINE_CHECK(count >= 1 && index >= 0 && index < count, what, ": shard ", index, " of ", count, " is invalid");
    ENGINE_CHECK(batch % count == 0, what, ": the global batch of ", batch, " does not split into ", count,
                 " equal shards (one per rank); choose a batch divisible by the world size");
    return batch / count;
  }
};

}  // namespace data
