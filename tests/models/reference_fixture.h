// Helpers for the tests that compare a model with a reference dump written by an independent
// implementation (tests/fixtures/make_*_fixture*.py): the dump's weights, and the error measure.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "engine/tensor.h"

// The fixture's weights, without the reference data stored beside them (inputs, outputs, grad.*).
inline std::map<std::string, engine::Tensor> fixture_weights(const std::map<std::string, engine::Tensor>& fixture) {
  const std::set<std::string> data = {"input_ids", "targets", "images", "labels", "logits", "loss", "adamw_losses"};
  std::map<std::string, engine::Tensor> weights;
  for (const auto& [name, tensor] : fixture)
    if (!data.count(name) && name.rfind("grad.", 0) != 0) weights.emplace(name, tensor);
  return weights;
}

// ‖out − ref‖ / ‖ref‖ over f32 tensors, accumulated in double.
inline double relative_error(const engine::Tensor& out, const engine::Tensor& ref) {
  REQUIRE(out.shape() == ref.shape());
  const auto a = out.contiguous().to_vector<float>(), b = ref.contiguous().to_vector<float>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    norm += double(b[i]) * double(b[i]);
  }
  REQUIRE(norm > 0);
  return std::sqrt(diff / norm);
}
