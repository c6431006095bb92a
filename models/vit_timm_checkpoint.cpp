// Converting between timm VisionTransformer weights and models::Vit (models/vit_timm_checkpoint.h):
// names, the patch embedding's shape, safetensors files.
#include "models/vit_timm_checkpoint.h"

#include <set>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/safetensors.h"

namespace models {

namespace {

using engine::Tensor;

const char* const kPatchWeight = "patch_embed.proj.weight";

// Our block-local module names and timm's, as ".name." infixes after "blocks.N".
const std::vector<std::pair<std::string, std::string>>& block_renames() {
  static const std::vector<std::pair<std::string, std::string>> renames = {
      {".ln_1.", ".norm1."},       {".ln_2.", ".norm2."},      {".attn.c_attn.", ".attn.qkv."},
      {".attn.c_proj.", ".attn.proj."}, {".mlp.c_fc.", ".mlp.fc1."}, {".mlp.c_proj.", ".mlp.fc2."}};
  return renames;
}

// timm's shape of our tensor `name`: the patch projection as a Conv2d kernel (C, Cin, p, p).
engine::Shape timm_shape(const std::string& name, const engine::Shape& ours, const VitConfig& config) {
  if (name != kPatchWeight) return ours;
  return engine::Shape{ours[0], config.in_channels, config.patch, config.patch};
}

}  // namespace

std::string timm_vit_name(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return name;
  const size_t block_end = name.find('.', 7);  // after "blocks.N"
  if (block_end == std::string::npos) return name;
  for (const auto& [ours, timm] : block_renames())
    if (name.compare(block_end, ours.size(), ours) == 0)
      return name.substr(0, block_end) + timm + name.substr(block_end + ours.size());
  return name;
}

void load_timm_vit_weights(Vit& model, const std::map<std::string, Tensor>& timm_tensors) {
  std::map<std::string, Tensor> state;
  std::set<std::string> used;
  for (const auto& [name, ours] : model.state_dict()) {
    const std::string timm_name = timm_vit_name(name);
    auto it = timm_tensors.find(timm_name);
    ENGINE_CHECK(it != timm_tensors.end(), "load_timm_vit_weights: tensor '", timm_name, "' (our '", name,
                 "', shape ", ours.shape_string(), ") is missing from the checkpoint");
    const engine::Shape expected = timm_shape(name, ours.shape(), model.config());
    ENGINE_CHECK(it->second.shape() == expected, "load_timm_vit_weights: tensor '", timm_name, "' has shape ",
                 it->second.shape_string(), " in the checkpoint, expected ", engine::shape_str(expected),
                 name == kPatchWeight ? " (Conv2d kernel (C, Cin, p, p) of this config)" : "");
    state.emplace(name, it->second.reshape(ours.shape()));
    used.insert(timm_name);
  }
  for (const auto& [name, tensor] : timm_tensors)
    ENGINE_CHECK(used.count(name), "load_timm_vit_weights: unexpected tensor '", name, "' with shape ",
                 tensor.shape_string(), " (not a parameter of this ViT configuration: check position_encoding, ",
                 "depth and heads; layer scale, qk-norm, fc_norm and register tokens are not supported)");
  model.load_state_dict(state);
}

std::map<std::string, Tensor> export_timm_vit_weights(const Vit& model) {
  engine::NoGradGuard no_grad;
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : model.state_dict())
    out.emplace(timm_vit_name(name), tensor.reshape(timm_shape(name, tensor.shape(), model.config())).clone());
  return out;
}

void load_timm_vit_safetensors(Vit& model, const std::string& path) {
  load_timm_vit_weights(model, engine::load_safetensors(path).tensors);
}

void save_timm_vit_safetensors(const Vit& model, const std::string& path) {
  engine::save_safetensors(path, export_timm_vit_weights(model), {{"format", "pt"}});
}

}  // namespace models
