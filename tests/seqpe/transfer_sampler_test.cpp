// Tests of the distillation sampler (seqpe/transfer_sampler.h): offsets per setting, epochs,
// determinism, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "seqpe/transfer_sampler.h"

using seqpe::TransferSampler;
using seqpe::TransferSamplerConfig;
using V = std::vector<int64_t>;

namespace {

// Shapes, distinct in-block teacher cells, and students = teacher cells shifted by the offset.
void check_batch(const TransferSamplerConfig& c, const seqpe::TransferBatch& batch) {
  const int64_t n = c.num_indices;
  REQUIRE(batch.offsets.size() == c.batch_size);
  REQUIRE(batch.teacher_indices.shape() == engine::Shape{c.batch_size, n});
  REQUIRE(batch.teacher_indices.dtype() == engine::Dtype::i64);
  REQUIRE(batch.students.size() == c.batch_size * n);
  const V teacher = batch.teacher_indices.to_vector<int64_t>();
  const int64_t cells = engine::shape_numel(c.block_shape);
  const int64_t cols = c.dims == 2 ? c.block_shape[1] : 1;
  for (int64_t b = 0; b < c.batch_size; ++b) {
    const auto offset = batch.offsets[b];
    std::set<int64_t> distinct;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t cell = teacher[size_t(b * n + t)];
      REQUIRE((cell >= 0 && cell < cells));
      distinct.insert(cell);
      const auto student = batch.students[b * n + t];
      if (c.dims == 1) {
        CHECK(student[0] == offset[0] + cell);
      } else {
        CHECK(student[0] == offset[0] + cell / cols);
        CHECK(student[1] == offset[1] + cell % cols);
      }
    }
    CHECK(int64_t(distinct.size()) == n);  // drawn without replacement
  }
}

}  // namespace

TEST_CASE("text transfer sampler: offsets in [L/4, MAX - L), one epoch covers each once") {
  const TransferSamplerConfig c = TransferSamplerConfig::text_defaults();
  TransferSampler sampler(c, 17);
  CHECK(sampler.offsets().size() == 19488 - 128);
  CHECK(sampler.offsets()[0][0] == 128);
  CHECK(sampler.offsets()[sampler.offsets().size() - 1][0] == 19487);
  CHECK(sampler.batches_per_epoch() == 1210);  // 19360 / 16
  std::vector<int> seen(20000, 0);
  for (int step = 0; step < 1210; ++step) {
    const seqpe::TransferBatch batch = sampler.next();
    check_batch(c, batch);
    for (int64_t b = 0; b < batch.offsets.size(); ++b) {
      const int64_t p = batch.offsets[b][0];
      REQUIRE((p >= 128 && p < 19488));
      ++seen[size_t(p)];
    }
  }
  CHECK(std::count(seen.begin(), seen.end(), 1) == 19360);
  CHECK(sampler.epoch() == 1);
}

TEST_CASE("image transfer sampler: 2-D offsets leave the 14 x 14 block in some coordinate") {
  const TransferSamplerConfig c = TransferSamplerConfig::image_defaults();
  TransferSampler sampler(c, 3);
  CHECK(sampler.offsets().size() == 86 * 86 - 14 * 14);
  for (int64_t i = 0; i < sampler.offsets().size(); ++i) {
    const auto offset = sampler.offsets()[i];
    CHECK((offset[0] >= 0 && offset[0] < 86 && offset[1] >= 0 && offset[1] < 86));
    CHECK((offset[0] >= 14 || offset[1] >= 14));
  }
  for (int step = 0; step < 50; ++step) {
    const seqpe::TransferBatch batch = sampler.next();
    check_batch(c, batch);
    for (int64_t s = 0; s < batch.students.size(); ++s) CHECK((batch.students[s][0] < 100 && batch.students[s][1] < 100));
  }
}

TEST_CASE("transfer sampler: determinism under a seed, configuration errors") {
  for (const TransferSamplerConfig& c : {TransferSamplerConfig::text_defaults(), TransferSamplerConfig::image_defaults()}) {
    TransferSampler a(c, 1), b(c, 1), other(c, 2);
    bool differs = false;
    for (int step = 0; step < 3; ++step) {
      const seqpe::TransferBatch x = a.next(), y = b.next(), z = other.next();
      CHECK(x.offsets == y.offsets);
      CHECK(x.students == y.students);
      CHECK(x.teacher_indices.to_vector<int64_t>() == y.teacher_indices.to_vector<int64_t>());
      differs = differs || !(x.offsets == z.offsets) || !(x.students == z.students);
    }
    CHECK(differs);
  }
  TransferSamplerConfig c = TransferSamplerConfig::text_defaults();
  c.num_indices = 513;
  CHECK_THROWS_WITH_AS(TransferSampler(c, 0), doctest::Contains("num_indices 513 must lie in [1, 512]"), engine::Error);
  c = TransferSamplerConfig::image_defaults();
  c.block_shape = {14};
  CHECK_THROWS_WITH_AS(TransferSampler(c, 0), doctest::Contains("block_shape [14]"), engine::Error);
}
