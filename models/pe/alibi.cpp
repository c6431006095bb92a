// ALiBi's slopes for any head count and its attention options (models/pe/alibi.h).
#include "models/pe/alibi.h"

#include <cmath>

#include "ops/elementwise.h"

namespace models::pe {

namespace {
std::vector<double> power_of_two_slopes(int64_t n) {
  const double start = std::pow(2.0, -8.0 / double(n));
  std::vector<double> slopes;
  for (int64_t i = 0; i < n; ++i) slopes.push_back(std::pow(start, double(i + 1)));
  return slopes;
}
}  // namespace

std::vector<double> alibi_slopes(int64_t heads) {
  ENGINE_CHECK(heads > 0, "alibi_slopes: head count must be positive, got ", heads);
  int64_t power = 1;
  while (power * 2 <= heads) power *= 2;
  std::vector<double> slopes = power_of_two_slopes(power);
  const std::vector<double> doubled = power_of_two_slopes(2 * power);
  for (size_t i = 0; int64_t(slopes.size()) < heads; i += 2) slopes.push_back(doubled[i]);
  return slopes;
}

Alibi::Alibi(int64_t heads, bool scaled_by_attention_scale, engine::Dtype dtype)
    : slopes_(Tensor::from_vector(alibi_slopes(heads), {heads}, dtype)), scaled_(scaled_by_attention_scale) {}

void Alibi::attention_options(int, ops::AttentionOptions& options) {
  // The slopes are built on the host and copied once to each device the model runs on.
  if (slopes_.device() != positions_.device) slopes_ = slopes_.to(positions_.device);
  // The op adds slope·(j − i); the authors' slope·j differs by a per-row constant, which softmax ignores.
  options.alibi_slopes = scaled_ ? ops::mul_scalar(slopes_, options.scale) : slopes_;
}

}  // namespace models::pe
