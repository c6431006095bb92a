// The distillation ("transfer") sampler (seqpe/transfer_sampler.h): admissible offsets, sampler-
// epochs, teacher and student cells.
#include "seqpe/transfer_sampler.h"

#include <array>

#include "seqpe/random_sampling.h"

namespace seqpe {

namespace {

// All admissible offsets of docs/method.md#distillation-sampler (see the header), after checking the configuration.
PositionList admissible_offsets(const TransferSamplerConfig& c) {
  ENGINE_CHECK(c.dims == 1 || c.dims == 2, "TransferSamplerConfig: dims must be 1 or 2, got ", c.dims);
  ENGINE_CHECK(int64_t(c.block_shape.size()) == c.dims, "TransferSamplerConfig: block_shape ",
               engine::shape_str(c.block_shape), " does not have dims = ", c.dims, " entries");
  for (int64_t extent : c.block_shape)
    ENGINE_CHECK(extent >= 1, "TransferSamplerConfig: block_shape ", engine::shape_str(c.block_shape),
                 " must be positive");
  ENGINE_CHECK(c.batch_size >= 1, "TransferSamplerConfig: batch_size must be positive, got ", c.batch_size);
  ENGINE_CHECK(c.num_indices >= 1 && c.num_indices <= engine::shape_numel(c.block_shape),
               "TransferSamplerConfig: num_indices ", c.num_indices, " must lie in [1, ",
               engine::shape_numel(c.block_shape), "] (the cells of block ", engine::shape_str(c.block_shape), ")");
  ENGINE_CHECK(c.batches_per_epoch >= 0, "TransferSamplerConfig: batches_per_epoch must be >= 0, got ",
               c.batches_per_epoch);
  const int64_t side = per_coordinate_extent(c.pe_max_position, c.dims);
  PositionList offsets(c.dims);
  if (c.dims == 1) {
    const int64_t length = c.block_shape[0];
    for (int64_t p = length / 4; p < side - length; ++p) offsets.push_back(p);
  } else {
    const int64_t rows = c.block_shape[0], cols = c.block_shape[1];
    for (int64_t i = 0; i < side - rows; ++i)
      for (int64_t j = 0; j < side - cols; ++j)
        if (i >= rows || j >= cols) offsets.push_back(i, j);
  }
  ENGINE_CHECK(!offsets.empty(), "TransferSamplerConfig: no offset moves block ", engine::shape_str(c.block_shape),
               " out of itself inside pe_max_position ", c.pe_max_position, "; raise pe_max_position");
  return offsets;
}

}  // namespace

TransferSamplerConfig TransferSamplerConfig::text_defaults() { return TransferSamplerConfig{}; }

TransferSamplerConfig TransferSamplerConfig::image_defaults() {
  TransferSamplerConfig c;
  c.dims = 2;
  c.pe_max_position = 10000;
  c.block_shape = {14, 14};
  c.batch_size = 32;
  c.num_indices = 64;
  return c;
}

TransferSampler::TransferSampler(const TransferSamplerConfig& config, uint64_t seed)
    : config_(config),
      offsets_(admissible_offsets(config)),
      block_cells_(engine::shape_numel(config.block_shape)),
      batches_per_epoch_(config.batches_per_epoch > 0 ? config.batches_per_epoch
                                                      : (offsets_.size() + config.batch_size - 1) / config.batch_size),
      gen_(seed) {}

TransferBatch TransferSampler::next() {
  const int64_t batch = config_.batch_size;
  const int64_t count = config_.num_indices;
  if (epoch_ == 0 || batch_in_epoch_ == batches_per_epoch_) {
    epoch_order_ = epoch_order(offsets_.size(), batches_per_epoch_, batch, gen_);
    batch_in_epoch_ = 0;
    ++epoch_;
  }
  const int64_t first = batch_in_epoch_ * batch;
  ++batch_in_epoch_;

  TransferBatch out{PositionList(config_.dims), {}, PositionList(config_.dims)};
  out.offsets.reserve(batch);
  out.students.reserve(batch * count);
  std::vector<int64_t> teacher_indices;
  teacher_indices.reserve(size_t(batch * count));
  std::array<int64_t, 2> student{};
  for (int64_t b = 0; b < batch; ++b) {
    const std::span<const int64_t> offset = offsets_[epoch_order_[size_t(first + b)]];
    out.offsets.push_back(offset);
    for (int64_t cell : sample_without_replacement(block_cells_, count, gen_)) {
      teacher_indices.push_back(cell);
      block_cell(offset, config_.block_shape, cell, student.data());
      out.students.push_back(std::span<const int64_t>(student.data(), size_t(config_.dims)));
    }
  }
  out.teacher_indices = engine::Tensor::from_indices(teacher_indices, {batch, count});
  return out;
}

}  // namespace seqpe
