// Converting between Hugging Face GPT-2 weights and models::Gpt (models/gpt2_checkpoint.h): Conv1D
// transposes, ignored buffers.
#include "models/gpt2_checkpoint.h"

#include <set>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace models {

namespace {

using engine::Tensor;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// HF entries that carry no parameter of ours: the tied head and the causal-mask buffers.
bool is_ignored_hf_entry(const std::string& name) {
  return name == "lm_head.weight" || ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
}

// (out, in) <-> (in, out) for Conv1D weights; other tensors keep their layout.
Tensor hf_layout(const std::string& name, const Tensor& t) {
  return is_gpt2_conv1d_weight(name) ? t.transpose(0, 1).contiguous() : t;
}

engine::Shape hf_shape(const std::string& name, const engine::Shape& ours) {
  if (!is_gpt2_conv1d_weight(name)) return ours;
  return engine::Shape{ours[1], ours[0]};
}

}  // namespace

bool is_gpt2_conv1d_weight(const std::string& name) {
  return ends_with(name, ".attn.c_attn.weight") || ends_with(name, ".attn.c_proj.weight") ||
         ends_with(name, ".mlp.c_fc.weight") || ends_with(name, ".mlp.c_proj.weight");
}

void load_gpt2_weights(Gpt& model, const std::map<std::string, Tensor>& hf_tensors) {
  // Strip the GPT2LMHeadModel prefix so both file flavours use the bare names.
  std::map<std::string, Tensor> hf;
  for (const auto& [name, tensor] : hf_tensors) {
    const std::string bare = starts_with(name, "transformer.") ? name.substr(12) : name;
    ENGINE_CHECK(hf.emplace(bare, tensor).second, "load_gpt2_weights: tensor '", bare,
                 "' appears both with and without the 'transformer.' prefix");
  }
  std::map<std::string, Tensor> state;
  std::set<std::string> used;
  for (const auto& [name, ours] : model.state_dict()) {
    auto it = hf.find(name);
    ENGINE_CHECK(it != hf.end(), "load_gpt2_weights: tensor '", name, "' is missing from the checkpoint");
    const engine::Shape expected = hf_shape(name, ours.shape());
    ENGINE_CHECK(it->second.shape() == expected, "load_gpt2_weights: tensor '", name, "' has shape ",
                 it->second.shape_string(), " in the checkpoint, expected ", engine::shape_str(expected),
                 is_gpt2_conv1d_weight(name) ? " (Hugging Face Conv1D layout: (in, out))" : "");
    state.emplace(name, hf_layout(name, it->second));
    used.insert(name);
  }
  for (const auto& [name, tensor] : hf) {
    if (used.count(name)) continue;
    if (name == "lm_head.weight") {
      const Tensor& wte = state.at("wte.weight");
      ENGINE_CHECK(tensor.shape() == wte.shape(), "load_gpt2_weights: tensor 'lm_head.weight' has shape ",
                   tensor.shape_string(), ", expected the tied wte shape ", wte.shape_string());
      continue;
    }
    ENGINE_CHECK(is_ignored_hf_entry(name), "load_gpt2_weights: unexpected tensor '", name, "' with shape ",
                 tensor.shape_string(), " (not a parameter of this GPT configuration)");
  }
  model.load_state_dict(state);
}

std::map<std::string, Tensor> export_gpt2_weights(const Gpt& model) {
  engine::NoGradGuard no_grad;
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : model.state_dict()) {
    out.emplace(name, is_gpt2_conv1d_weight(name) ? tensor.transpose(0, 1).contiguous() : tensor.clone());
  }
  return out;
}

void load_gpt2_safetensors(Gpt& model, const std::string& path) {
  load_gpt2_weights(model, engine::load_safetensors(path).tensors);
}

void save_gpt2_safetensors(const Gpt& model, const std::string& path) {
  engine::save_safetensors(path, export_gpt2_weights(model), {{"format", "pt"}});
}

}  // namespace models
